// The head's actor directory: creation, placement, call forwarding, ends and lookup by name.
#include <capnp/message.h>

#include "runtime/cluster_messages.hpp"
#include "runtime/head_tasks.hpp"

namespace atl::runtime {

namespace {
// Dead actors are remembered (to answer late calls with why they died) up to this many.
constexpr std::size_t kMaxDeadActors = 10000;
}  // namespace

std::string ClusterTasks::create_actor(const transport::ConnectionPtr& driver,
                                       wire::ActorSpec::Reader spec) {
  auto actor = std::make_unique<RemoteActor>();
  actor->id = actor_key(spec.getActor());
  actor->owner = driver;
  actor->name = spec.getName();
  actor->class_name = spec.getClassName();
  actor->display = actor->name.empty() ? "actor " + actor->class_name + " " + actor->id.to_string()
                                       : "actor '" + actor->name + "'";
  actor->module_hash = spec.getModuleHash();
  actor->module_name = spec.getModuleName();
  actor->code = spec.getCode();
  for (auto a : spec.getArgs()) actor->args.push_back(string_of(a));
  actor->arg_refs = read_arg_refs(spec.getArgRefs());
  actor->actor_args = read_actor_args(spec.getActorArgs());
  actor->max_concurrency = spec.getMaxConcurrency();
  actor->restarts_left = spec.getMaxRestarts();
  ActorOptions options;
  read_resources(spec.getResources(), options);
  options.label_selector = read_selectors(spec.getLabelSelector());
  options.preferred_labels = read_selectors(spec.getPreferredLabels());
  for (auto r : spec.getResources()) actor->resources.emplace_back(r.getName(), r.getAmount());
  try {
    actor->placement.cls = scheduler_.class_for(options);
  } catch (const std::exception& e) {
    return e.what();
  }
  actor->placement.id = TaskId{actor->id.owner, actor->id.sequence};
  actor->placement.places_actor = true;
  actor->placement.custom_name = actor->display;
  TaskRecord* placement = &actor->placement;
  {
    std::lock_guard lock(mu_);
    if (auto missing = missing_code_locked(actor->module_hash, actor->code); !missing.empty())
      return missing;
    // An owner id belongs to the first driver that used it: no other can create actors in its
    // name (and so take over the ids the owner will use next).
    auto [owner, fresh] = owners_.try_emplace(actor->id.owner, driver.get());
    if (!fresh && owner->second != driver.get()) return "actor id owned by another driver";
    if (auto it = actors_.find(actor->id); it != actors_.end()) {
      if (it->second->class_name != actor->class_name) return "actor id already in use";
      return "";  // the same request again: created already
    }
    if (auto refused = accept_objects_locked(driver, ObjectId{}, actor->arg_refs); !refused.empty())
      return refused;
    if (!actor->name.empty() && named_actors_.contains(actor->name))
      return "an actor named '" + actor->name + "' already exists";
    if (!actor->name.empty()) named_actors_[actor->name] = actor->id;
    actors_[actor->id] = std::move(actor);
  }
  if (!scheduler_.submit(placement)) placement_failed(placement, "the head is stopping");
  return "";
}

void ClusterTasks::send_start(RemoteNode& node, TaskRecord* placement) {
  bool give_back = false;
  {
    std::lock_guard lock(mu_);
    auto it = actors_.find(ActorId{placement->id.owner, placement->id.sequence});
    if (it == actors_.end()) return;  // never: a queued actor is not forgotten
    RemoteActor& a = *it->second;
    a.queued = false;
    if (a.state == RemoteActor::State::dead) {
      give_back = true;  // killed while it waited for resources
    } else {
      a.state = RemoteActor::State::placed;
      a.node_id = node.id;
      a.node = placement->node;
      a.holds_resources = true;
      transport::ControlMessage msg;
      auto spec = msg.initRoot<wire::Envelope>().getBody().initStartActor();
      set_actor_key(spec.initActor(), a.id);
      spec.setModuleHash(a.module_hash);
      spec.setModuleName(a.module_name);
      spec.setClassName(a.class_name);
      spec.setCode(a.code);
      spec.setName(a.name);
      spec.setMaxConcurrency(a.max_concurrency);
      auto args = spec.initArgs(static_cast<unsigned>(a.args.size()));
      for (unsigned i = 0; i < a.args.size(); ++i) args.set(i, data_of(a.args[i]));
      write_arg_refs_locked(spec.initArgRefs(static_cast<unsigned>(a.arg_refs.size())), a.arg_refs);
      write_actor_args(spec.initActorArgs(static_cast<unsigned>(a.actor_args.size())),
                       a.actor_args);
      node.conn->send(msg);
      if (a.restarts_left == 0) a.args.clear();  // sent once: a node that dies takes it along
      for (auto call_id : a.buffered)
        if (auto t = tasks_.find(call_id); t != tasks_.end())
          forward_call_locked(a, *t->second, call_id);
      a.buffered.clear();
      if (a.release_when_placed) send_stop_locked(a, false);
    }
  }
  if (give_back) scheduler_.release(*placement->node, placement->cls->demand, nullptr);
}

void ClusterTasks::forward_call_locked(const RemoteActor& actor, RemoteTask& call,
                                       std::uint64_t call_id) {
  auto node = nodes_.find(actor.node_id);
  if (node == nodes_.end()) return;
  call.node_id = actor.node_id;
  call.last_node = node->second->name;
  transport::ControlMessage msg;
  auto c = msg.initRoot<wire::Envelope>().getBody().initActorCall();
  set_actor_key(c.initActor(), actor.id);
  c.setTaskId(call_id);
  c.setMethod(call.function);
  auto args = c.initArgs(static_cast<unsigned>(call.args.size()));
  for (unsigned i = 0; i < call.args.size(); ++i) args.set(i, data_of(call.args[i]));
  if (!call.result.is_nil()) set_object_key(c.initResult(), call.result);
  write_arg_refs_locked(c.initArgRefs(static_cast<unsigned>(call.arg_refs.size())), call.arg_refs);
  write_actor_args(c.initActorArgs(static_cast<unsigned>(call.actor_args.size())), call.actor_args);
  node->second->conn->send(msg);
  call.args.clear();
}

void ClusterTasks::send_stop_locked(const RemoteActor& actor, bool kill) {
  auto node = nodes_.find(actor.node_id);
  if (node == nodes_.end()) return;
  transport::ControlMessage msg;
  auto stop = msg.initRoot<wire::Envelope>().getBody().initStopActor();
  set_actor_key(stop.initActor(), actor.id);
  stop.setKill(kill);
  node->second->conn->send(msg);
}

void ClusterTasks::actor_call(const transport::ConnectionPtr& driver,
                              wire::ActorCall::Reader call) {
  {
    std::lock_guard lock(mu_);
    if (!first_submission_locked(driver, call.getTaskId())) return;
  }
  auto task = std::make_unique<RemoteTask>();
  task->driver = driver;
  task->driver_task_id = call.getTaskId();
  task->function = call.getMethod();
  task->actor = actor_key(call.getActor());
  for (auto a : call.getArgs()) task->args.push_back(string_of(a));
  if (call.hasResult()) task->result = object_key(call.getResult());
  task->arg_refs = read_arg_refs(call.getArgRefs());
  task->actor_args = read_actor_args(call.getActorArgs());
  std::string type = "atl::ActorDiedError", why;
  {
    std::lock_guard lock(mu_);
    why = accept_objects_locked(driver, task->result, task->arg_refs);
    auto it = actors_.find(task->actor);
    if (!why.empty()) {
      type = "atl::Error";
    } else if (it == actors_.end()) {
      why = "actor " + task->actor.to_string() + " does not exist (it ended long ago, or was " +
            "never created)";
    } else if (it->second->state == RemoteActor::State::dead) {
      why = it->second->death;
    } else {
      std::uint64_t id = next_task_++;
      RemoteTask& t = *task;
      tasks_[id] = std::move(task);
      if (it->second->state == RemoteActor::State::pending)
        it->second->buffered.push_back(id);
      else
        forward_call_locked(*it->second, t, id);
      return;
    }
  }
  send_task_outcome(*driver, call.getTaskId(), "", nullptr, type, why);
}

void ClusterTasks::stop_actor(const transport::ConnectionPtr& driver,
                              wire::StopActor::Reader stop) {
  std::vector<std::pair<std::uint64_t, std::string>> failed;
  {
    std::lock_guard lock(mu_);
    auto it = actors_.find(actor_key(stop.getActor()));
    if (it == actors_.end() || it->second->state == RemoteActor::State::dead) return;
    RemoteActor& a = *it->second;
    if (stop.getKill()) {
      end_actor(a, a.display + " was killed", true, failed);
      forget_dead_locked();
    } else if (a.owner == driver && a.name.empty()) {
      // Its owner dropped the last handle: it ends after the calls already sent.
      a.released = true;
      if (a.state == RemoteActor::State::pending)
        a.release_when_placed = true;
      else
        send_stop_locked(a, false);
    }
  }
  fail_calls(failed);
}

void ClusterTasks::actor_exited(std::uint64_t node_id, wire::ActorExited::Reader exited) {
  NodeState* node = nullptr;
  SchedulingClass* cls = nullptr;
  TaskRecord* restart = nullptr;
  std::vector<std::pair<std::uint64_t, std::string>> failed;
  {
    std::lock_guard lock(mu_);
    auto it = actors_.find(actor_key(exited.getActor()));
    if (it == actors_.end() || it->second->node_id != node_id) return;
    RemoteActor& a = *it->second;
    if (a.holds_resources) {
      node = a.node;
      cls = a.placement.cls;
      a.holds_resources = false;
    }
    if (exited.getCrashed() && a.state == RemoteActor::State::placed && restart_locked(a)) {
      restart = &a.placement;
    } else {
      end_actor(a, exited.getReason(), false, failed);
      forget_dead_locked();
    }
  }
  fail_calls(failed);
  if (node != nullptr) scheduler_.release(*node, cls->demand, nullptr);
  if (restart != nullptr && !scheduler_.submit(restart))
    placement_failed(restart, "the head is stopping");
}

bool ClusterTasks::restart_locked(RemoteActor& actor) {
  if (actor.restarts_left == 0 || actor.released) return false;
  if (actor.restarts_left > 0) --actor.restarts_left;
  actor.state = RemoteActor::State::pending;
  actor.queued = true;
  actor.node_id = 0;
  actor.node = nullptr;
  actor.placement.node = nullptr;
  return true;
}

std::optional<ClusterTasks::FoundActor> ClusterTasks::lookup_actor(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = named_actors_.find(name);
  if (it == named_actors_.end()) return std::nullopt;
  return FoundActor{it->second, actors_.at(it->second)->class_name};
}

void ClusterTasks::end_actor(RemoteActor& actor, const std::string& why, bool kill_on_node,
                             std::vector<std::pair<std::uint64_t, std::string>>& failed) {
  if (actor.state == RemoteActor::State::dead) return;
  if (kill_on_node && actor.state == RemoteActor::State::placed) send_stop_locked(actor, true);
  actor.state = RemoteActor::State::dead;
  actor.death = why;
  if (!actor.name.empty()) named_actors_.erase(actor.name);
  for (auto id : actor.buffered) failed.emplace_back(id, why);
  actor.buffered.clear();
  actor.args.clear();
  dead_actors_.push_back(actor.id);
}

void ClusterTasks::fail_calls(const std::vector<std::pair<std::uint64_t, std::string>>& failed) {
  for (const auto& [id, why] : failed) reply(id, nullptr, "atl::ActorDiedError", why);
}

void ClusterTasks::forget_dead_locked() {
  // One the scheduler or a node still holds goes to the back, to be looked at again later.
  for (std::size_t looked = 0, n = dead_actors_.size();
       dead_actors_.size() > kMaxDeadActors && looked < n; ++looked) {
    ActorId id = dead_actors_.front();
    dead_actors_.pop_front();
    auto it = actors_.find(id);
    if (it != actors_.end() && (it->second->queued || it->second->holds_resources))
      dead_actors_.push_back(id);
    else if (it != actors_.end())
      actors_.erase(it);
  }
}

}  // namespace atl::runtime
