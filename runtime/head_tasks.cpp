#include "runtime/head_tasks.hpp"

#include <capnp/message.h>

#include <algorithm>

#include "atoll/errors.hpp"
#include "runtime/cluster_messages.hpp"

namespace atl::runtime {

ClusterTasks::ClusterTasks(const Clock& clock, std::chrono::milliseconds infeasible_timeout)
    : scheduler_(clock, infeasible_timeout,
                 [this](TaskRecord* t, ErrorPtr error) { placement_failed(t, error->message); }) {}

void ClusterTasks::placement_failed(TaskRecord* record, const std::string& message) {
  if (!record->places_actor) {
    reply(record->id.sequence, nullptr, "atl::InfeasibleError", message);
    return;
  }
  std::vector<std::pair<std::uint64_t, std::string>> failed;
  {
    std::lock_guard lock(mu_);
    auto it = actors_.find(ActorId{record->id.owner, record->id.sequence});
    if (it == actors_.end()) return;
    it->second->queued = false;
    end_actor(*it->second, it->second->display + " could not be placed: " + message, false, failed);
    forget_dead_locked();
  }
  fail_calls(failed);
}

void ClusterTasks::node_joined(std::uint64_t node_id, const NodeInfo& info,
                               transport::ConnectionPtr conn) {
  auto node = std::make_unique<RemoteNode>();
  node->owner = this;
  node->id = node_id;
  node->name = info.name;
  node->data_address = info.data_address;
  node->data_name = info.data_name;
  node->conn = std::move(conn);
  RemoteNode* raw = node.get();
  {
    std::lock_guard lock(mu_);
    nodes_[node_id] = std::move(node);
  }
  // May dispatch waiting tasks to it at once (through send_run, which takes mu_).
  raw->state = &scheduler_.add_node(info.name, info.labels, info.resources, raw);
}

void ClusterTasks::fill_available(std::vector<NodeView>& nodes) const {
  for (auto& view : nodes) {
    if (view.liveness == Liveness::dead) continue;
    const NodeState* state = nullptr;
    {
      std::lock_guard lock(mu_);
      if (auto it = nodes_.find(view.id); it != nodes_.end()) state = it->second->state;
    }
    // The scheduler keeps a node's state after the node leaves (marked not alive).
    if (state != nullptr) view.available = scheduler_.available(*state);
  }
}

void ClusterTasks::node_left(std::uint64_t node_id) {
  NodeState* state = nullptr;
  std::vector<std::uint64_t> running;
  std::vector<std::pair<std::uint64_t, std::string>> failed;
  std::vector<FailedPush> lost_pushes;
  std::vector<TaskRecord*> restarts;  // placements of actors that start again elsewhere
  std::string name;
  {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end()) return;
    state = it->second->state;
    name = it->second->name;
    lost_pushes = objects_left_with_node_locked(node_id);
    for (auto& [id, actor] : actors_) {
      if (actor->node_id != node_id) continue;
      actor->holds_resources = false;  // the node's resources are gone with it
      if (actor->state == RemoteActor::State::placed && restart_locked(*actor))
        restarts.push_back(&actor->placement);
      else
        end_actor(*actor, actor->display + " ended: its node '" + name + "' left the cluster",
                  false, failed);
    }
    std::erase_if(leases_, [&](const auto& l) { return l.second.node_id == node_id; });
    for (auto& [id, task] : tasks_) {
      if (task->node_id != node_id) continue;
      if (task->actor.is_nil()) {
        running.push_back(id);
      } else {
        auto a = actors_.find(task->actor);
        if (a == actors_.end())
          failed.emplace_back(id, "its node left");
        else if (a->second->state == RemoteActor::State::dead)
          failed.emplace_back(id, a->second->death);
        else  // restarting: this call ran on the instance that went with the node
          failed.emplace_back(id, a->second->display + " lost this call: its node '" + name +
                                      "' left the cluster (the actor restarts)");
      }
    }
    forget_dead_locked();
  }
  if (state != nullptr) scheduler_.remove_node(*state);
  for (TaskRecord* placement : restarts)
    if (!scheduler_.submit(placement)) placement_failed(placement, "the head is stopping");
  send_push_failures(lost_pushes, "its node '" + name + "' left the cluster");
  fail_calls(failed);
  for (auto id : running) retry_or_fail(id, "node '" + name + "' died while running the task");
}

void ClusterTasks::driver_left(const transport::ConnectionPtr& driver) {
  std::vector<std::pair<std::uint64_t, std::string>> failed;
  std::vector<FailedPush> lost_pushes;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, actor] : actors_)
      if (actor->owner == driver)
        end_actor(*actor, actor->display + " ended: its driver disconnected", true, failed);
    lost_pushes = objects_left_with_driver_locked(driver);
    std::erase_if(owners_, [&](const auto& o) { return o.second == driver.get(); });
    submitted_.erase(driver.get());
    forget_dead_locked();
    for (auto& [id, task] : tasks_)
      if (task->driver == driver && task->actor.is_nil())
        task->abandoned = true;  // not retried; dropped when placed if it is still queued
  }
  fail_calls(failed);
  send_push_failures(lost_pushes, "its driver, which held it, left");
}

void ClusterTasks::store_module(const std::string& hash, std::string bytes) {
  std::lock_guard lock(mu_);
  modules_[hash] = std::move(bytes);
}

std::optional<std::string> ClusterTasks::module(const std::string& hash) const {
  std::lock_guard lock(mu_);
  auto it = modules_.find(hash);
  if (it == modules_.end()) return std::nullopt;
  return it->second;
}

bool ClusterTasks::first_submission_locked(const transport::ConnectionPtr& driver,
                                           std::uint64_t id) {
  auto it = submitted_.try_emplace(driver.get(), kRememberedSubmissions).first;
  if (it->second.insert(id)) return true;
  ++duplicates_;
  return false;
}

std::uint64_t ClusterTasks::duplicates_ignored() const {
  std::lock_guard lock(mu_);
  return duplicates_;
}

std::string ClusterTasks::missing_code_locked(const std::string& module_hash,
                                              const std::string& code) const {
  if (!module_hash.empty() && !modules_.contains(module_hash))
    return "the job's module was not uploaded";
  if (!code.empty() && !modules_.contains(code)) return "its Python code was not uploaded";
  if (module_hash.empty() && code.empty())
    return "no code to run: neither a module nor Python code";
  return {};
}

void ClusterTasks::submit(const transport::ConnectionPtr& driver, wire::TaskSpec::Reader spec) {
  {
    std::lock_guard lock(mu_);
    if (!first_submission_locked(driver, spec.getTaskId())) return;
  }
  auto task = std::make_unique<RemoteTask>();
  task->driver = driver;
  task->driver_task_id = spec.getTaskId();
  task->module_hash = spec.getModuleHash();
  task->module_name = spec.getModuleName();
  task->function = spec.getFunction();
  task->code = spec.getCode();
  for (auto a : spec.getArgs()) task->args.push_back(string_of(a));
  if (spec.hasResult()) task->result = object_key(spec.getResult());
  task->arg_refs = read_arg_refs(spec.getArgRefs());
  task->actor_args = read_actor_args(spec.getActorArgs());
  task->max_retries = spec.getMaxRetries();
  task->retry_exceptions = spec.getRetryExceptions();
  task->record.custom_name =
      spec.getName().size() > 0 ? std::string(spec.getName()) : task->function;
  std::string error;
  {
    std::lock_guard lock(mu_);
    error = missing_code_locked(task->module_hash, task->code);
    if (error.empty()) error = accept_objects_locked(driver, task->result, task->arg_refs);
  }
  TaskOptions options;
  read_resources(spec.getResources(), options);
  options.label_selector = read_selectors(spec.getLabelSelector());
  options.preferred_labels = read_selectors(spec.getPreferredLabels());
  try {
    if (error.empty()) task->record.cls = scheduler_.class_for(options);
  } catch (const std::exception& e) {
    error = e.what();
  }
  RemoteTask* raw = task.get();
  std::uint64_t id;
  {
    std::lock_guard lock(mu_);
    id = next_task_++;
    task->record.id = TaskId{0, id};
    tasks_[id] = std::move(task);
  }
  if (!error.empty()) {
    reply(id, nullptr, "atl::Error", error);
    return;
  }
  if (!scheduler_.submit(&raw->record)) reply(id, nullptr, "atl::Error", "the head is stopping");
}

std::size_t ClusterTasks::pipeline_depth_locked(SchedulingClass* cls) const {
  // A task shorter than a few round trips to the head leaves its worker idle for longer than it
  // runs unless the next ones are already there, so a lease carries about kLeaseQueuedMicros of
  // queued work. Long tasks go one at a time, so a queue is never pinned behind one node while
  // another frees up.
  auto it = run_micros_.find(cls);
  if (it == run_micros_.end()) return 1;
  double depth = kLeaseQueuedMicros / std::max(it->second, 1.0);
  return static_cast<std::size_t>(std::clamp(depth, 1.0, double(kMaxLeaseDepth)));
}

void ClusterTasks::send_run(RemoteNode& node, TaskRecord* record) {
  // `record` holds its class's resources on the node: they become a lease for it and, for short
  // tasks, for queued tasks of its class sent behind it.
  while (record != nullptr) {
    std::size_t depth;
    {
      std::lock_guard lock(mu_);
      depth = pipeline_depth_locked(record->cls);
    }
    std::vector<TaskRecord*> more;
    if (depth > 1) more = scheduler_.take_queued(*record->cls, *record->node, depth - 1);
    std::unique_ptr<RemoteTask> dropped;
    std::uint64_t lease = 0;
    {
      std::lock_guard lock(mu_);
      auto it = tasks_.find(record->id.sequence);
      RemoteTask* task = it == tasks_.end() ? nullptr : it->second.get();
      if (task != nullptr && task->abandoned) {
        dropped = std::move(it->second);
        tasks_.erase(it);
        task = nullptr;
      }
      if (task != nullptr || !more.empty()) {
        lease = next_lease_++;
        leases_[lease] = Lease{node.id, record->cls, record->node, 0};
        if (task != nullptr) send_on_lease_locked(node, *task, lease);
      }
    }
    if (lease != 0) {
      send_on_lease(node, lease, more);  // gives the resources back if nothing is left on it
      return;
    }
    // Its driver is gone: give the slot to the next task instead.
    record = scheduler_.release(*record->node, record->cls->demand, record->cls);
  }
}

void ClusterTasks::send_on_lease(RemoteNode& node, std::uint64_t lease,
                                 const std::vector<TaskRecord*>& more) {
  Lease drained;
  {
    std::lock_guard lock(mu_);
    for (TaskRecord* record : more) {
      auto it = tasks_.find(record->id.sequence);
      if (it == tasks_.end()) continue;
      if (it->second->abandoned) {
        tasks_.erase(it);  // taken from the queue uncharged: nothing to give back
        continue;
      }
      send_on_lease_locked(node, *it->second, lease);
    }
    auto l = leases_.find(lease);
    if (l == leases_.end() || l->second.in_flight > 0) return;
    drained = l->second;  // every task on it was dropped
    leases_.erase(l);
  }
  if (TaskRecord* next = scheduler_.release(*drained.node, drained.cls->demand, drained.cls))
    send_run(node, next);
}

void ClusterTasks::send_on_lease_locked(RemoteNode& node, RemoteTask& t, std::uint64_t lease) {
  t.node_id = node.id;
  t.last_node = node.name;
  t.lease = lease;
  ++t.attempts;
  ++leases_[lease].in_flight;
  transport::ControlMessage msg;
  auto spec = msg.initRoot<wire::Envelope>().getBody().initRunTask();
  spec.setTaskId(t.record.id.sequence);
  spec.setLease(lease);
  spec.setModuleHash(t.module_hash);
  spec.setModuleName(t.module_name);
  spec.setFunction(t.function);
  spec.setCode(t.code);
  spec.setName(t.record.custom_name);
  auto args = spec.initArgs(static_cast<unsigned>(t.args.size()));
  for (unsigned i = 0; i < t.args.size(); ++i) args.set(i, data_of(t.args[i]));
  if (!t.result.is_nil()) set_object_key(spec.initResult(), t.result);
  write_arg_refs_locked(spec.initArgRefs(static_cast<unsigned>(t.arg_refs.size())), t.arg_refs);
  write_actor_args(spec.initActorArgs(static_cast<unsigned>(t.actor_args.size())), t.actor_args);
  node.conn->send(msg);
}

void ClusterTasks::finished(std::uint64_t node_id, wire::TaskFinished::Reader done) {
  std::uint64_t id = done.getTaskId();
  bool actor_call = false;
  std::uint64_t lease_id = 0;
  Lease lease;
  std::size_t want = 0;
  RemoteNode* node = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(id);
    if (it == tasks_.end() || it->second->node_id != node_id) return;  // stale or not its task
    RemoteTask& task = *it->second;
    task.node_id = 0;
    actor_call = !task.actor.is_nil();
    if (auto l = leases_.find(task.lease); !actor_call && l != leases_.end()) {
      lease_id = task.lease;
      --l->second.in_flight;
      lease = l->second;
      auto [avg, fresh] = run_micros_.try_emplace(lease.cls, double(done.getRunMicros()));
      if (!fresh) avg->second = 0.8 * avg->second + 0.2 * double(done.getRunMicros());
      std::size_t depth = pipeline_depth_locked(lease.cls);
      want = depth > lease.in_flight ? depth - lease.in_flight : 0;
      if (auto n = nodes_.find(node_id); n != nodes_.end()) node = n->second.get();
    }
  }
  if (lease_id != 0 && node != nullptr) {
    // Keep the lease's pipeline full from the class's queue; once it runs dry, give the
    // resources back (the scheduler may hand them straight to another task of the class).
    std::vector<TaskRecord*> more;
    if (want > 0) more = scheduler_.take_queued(*lease.cls, *lease.node, want);
    if (!more.empty()) {
      send_on_lease(*node, lease_id, more);
    } else if (lease.in_flight == 0) {
      {
        std::lock_guard lock(mu_);
        leases_.erase(lease_id);
      }
      if (TaskRecord* next = scheduler_.release(*lease.node, lease.cls->demand, lease.cls))
        send_run(*node, next);
    }
  }
  auto outcome = done.getOutcome();
  if (outcome.isStored()) {
    transport::ConnectionPtr orphaned;  // its driver left: nobody will read or free it
    ObjectId result;
    {
      std::lock_guard lock(mu_);
      if (auto it = tasks_.find(id); it != tasks_.end() && !it->second->result.is_nil()) {
        result = it->second->result;
        if (auto n = nodes_.find(node_id); n != nodes_.end()) {
          if (it->second->abandoned || it->second->driver->closed())
            orphaned = n->second->conn;
          else
            holders_[result] = Holder{node_id, outcome.getStored(), n->second->conn,
                                      n->second->data_address, n->second->data_name};
        }
      }
    }
    if (orphaned) send_free_objects(*orphaned, std::span(&result, 1));
    reply_stored(id, outcome.getStored());
  } else if (outcome.isValue()) {
    std::string value = string_of(outcome.getValue());
    reply(id, &value, "", "");
  } else if (done.getSystemFailure() && !actor_call) {
    retry_or_fail(id, outcome.getFailure().getMessage());
  } else if (!actor_call && retry_exception(id, outcome.getFailure().getRemoteType())) {
    return;  // queued again
  } else {
    auto f = outcome.getFailure();
    reply(id, nullptr, f.getRemoteType(), f.getMessage(), f.getTraceback(),
          string_of(f.getDetails()));
  }
}

void ClusterTasks::retry_or_fail(std::uint64_t task_id, const std::string& why) {
  RemoteTask* task = nullptr;
  bool retry;
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return;
    task = it->second.get();
    task->node_id = 0;
    retry = task->attempts <= task->max_retries && !task->abandoned;
  }
  if (retry && scheduler_.submit(&task->record)) return;
  reply(task_id, nullptr, "atl::WorkerDied", why);
}

bool ClusterTasks::retry_exception(std::uint64_t task_id, const std::string& remote_type) {
  // The task's own exceptions only: the runtime's refusals (atl::...) would fail again.
  if (remote_type.starts_with("atl::")) return false;
  RemoteTask* task = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return false;
    task = it->second.get();
    if (!task->retry_exceptions || task->attempts > task->max_retries || task->abandoned)
      return false;
    task->node_id = 0;
  }
  return scheduler_.submit(&task->record);
}

void ClusterTasks::expire() {
  scheduler_.expire(std::chrono::steady_clock::now());
  if (relay_) relay_->expire();
}

void ClusterTasks::reply(std::uint64_t task_id, const std::string* value,
                         const std::string& remote_type, const std::string& message,
                         const std::string& traceback, const std::string& details) {
  std::unique_ptr<RemoteTask> task;
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return;
    task = std::move(it->second);
    tasks_.erase(it);
  }
  send_task_outcome(*task->driver, task->driver_task_id, task->last_node, value, remote_type,
                    message, traceback, details);
}

}  // namespace atl::runtime
