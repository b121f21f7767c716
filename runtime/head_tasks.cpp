#include "runtime/head_tasks.hpp"

#include <capnp/message.h>

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
  }
  fail_calls(failed);
}

void ClusterTasks::node_joined(std::uint64_t node_id, const NodeInfo& info,
                               transport::ConnectionPtr conn) {
  auto node = std::make_unique<RemoteNode>();
  node->owner = this;
  node->id = node_id;
  node->name = info.name;
  node->conn = std::move(conn);
  RemoteNode* raw = node.get();
  {
    std::lock_guard lock(mu_);
    nodes_[node_id] = std::move(node);
  }
  // May dispatch waiting tasks to it at once (through send_run, which takes mu_).
  raw->state = &scheduler_.add_node(info.name, info.labels, info.resources, raw);
}

void ClusterTasks::node_left(std::uint64_t node_id) {
  NodeState* state = nullptr;
  std::vector<std::uint64_t> running;
  std::vector<std::pair<std::uint64_t, std::string>> failed;
  std::string name;
  {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end()) return;
    state = it->second->state;
    name = it->second->name;
    for (auto& [id, actor] : actors_) {
      if (actor->node_id != node_id) continue;
      actor->holds_resources = false;  // the node's resources are gone with it
      end_actor(*actor, actor->display + " died: its node '" + name + "' died", false, failed);
    }
    for (auto& [id, task] : tasks_) {
      if (task->node_id != node_id) continue;
      if (task->actor.is_nil()) {
        running.push_back(id);
      } else {
        auto a = actors_.find(task->actor);
        failed.emplace_back(id, a != actors_.end() ? a->second->death : "its node died");
      }
    }
  }
  if (state != nullptr) scheduler_.remove_node(*state);
  fail_calls(failed);
  for (auto id : running) retry_or_fail(id, "node '" + name + "' died while running the task");
}

void ClusterTasks::driver_left(const transport::ConnectionPtr& driver) {
  std::vector<std::pair<std::uint64_t, std::string>> failed;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, actor] : actors_)
      if (actor->owner == driver)
        end_actor(*actor, actor->display + " ended: its driver disconnected", true, failed);
    for (auto& [id, task] : tasks_)
      if (task->driver == driver && task->actor.is_nil())
        task->abandoned = true;  // not retried; dropped when placed if it is still queued
  }
  fail_calls(failed);
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

void ClusterTasks::submit(const transport::ConnectionPtr& driver, wire::TaskSpec::Reader spec) {
  auto task = std::make_unique<RemoteTask>();
  task->driver = driver;
  task->driver_task_id = spec.getTaskId();
  task->module_hash = spec.getModuleHash();
  task->module_name = spec.getModuleName();
  task->function = spec.getFunction();
  for (auto a : spec.getArgs()) task->args.push_back(string_of(a));
  task->max_retries = spec.getMaxRetries();
  task->record.custom_name =
      spec.getName().size() > 0 ? std::string(spec.getName()) : task->function;
  std::string error;
  {
    std::lock_guard lock(mu_);
    if (!modules_.contains(task->module_hash)) error = "the job's module was not uploaded";
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

void ClusterTasks::send_run(RemoteNode& node, TaskRecord* record) {
  while (record != nullptr) {
    capnp::MallocMessageBuilder msg;
    std::unique_ptr<RemoteTask> dropped;
    {
      std::lock_guard lock(mu_);
      auto it = tasks_.find(record->id.sequence);
      if (it == tasks_.end()) return;
      RemoteTask& t = *it->second;
      if (t.abandoned) {
        dropped = std::move(it->second);
        tasks_.erase(it);
      } else {
        t.node_id = node.id;
        t.last_node = node.name;
        ++t.attempts;
        auto spec = msg.initRoot<wire::Envelope>().getBody().initRunTask();
        spec.setTaskId(record->id.sequence);
        spec.setModuleHash(t.module_hash);
        spec.setModuleName(t.module_name);
        spec.setFunction(t.function);
        spec.setName(t.record.custom_name);
        auto args = spec.initArgs(static_cast<unsigned>(t.args.size()));
        for (unsigned i = 0; i < t.args.size(); ++i) args.set(i, data_of(t.args[i]));
      }
    }
    if (!dropped) {
      node.conn->send(msg);
      return;
    }
    // Its driver is gone: give the slot to the next task instead.
    record = scheduler_.release(*record->node, record->cls->demand, record->cls);
  }
}

void ClusterTasks::finished(std::uint64_t node_id, wire::TaskFinished::Reader done) {
  std::uint64_t id = done.getTaskId();
  NodeState* state = nullptr;
  SchedulingClass* cls = nullptr;
  bool actor_call = false;
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(id);
    if (it == tasks_.end() || it->second->node_id != node_id) return;  // stale or not its task
    it->second->node_id = 0;
    actor_call = !it->second->actor.is_nil();
    cls = it->second->record.cls;
    if (auto n = nodes_.find(node_id); n != nodes_.end()) state = n->second->state;
  }
  if (state != nullptr && !actor_call) {
    // Hand the freed slot on; a task of the same class comes back already charged.
    if (TaskRecord* next = scheduler_.release(*state, cls->demand, cls)) {
      RemoteNode* node;
      {
        std::lock_guard lock(mu_);
        node = nodes_.at(node_id).get();  // nodes are never erased, only removed from scheduling
      }
      send_run(*node, next);
    }
  }
  auto outcome = done.getOutcome();
  if (outcome.isValue()) {
    std::string value = string_of(outcome.getValue());
    reply(id, &value, "", "");
  } else if (done.getSystemFailure() && !actor_call) {
    retry_or_fail(id, outcome.getFailure().getMessage());
  } else {
    reply(id, nullptr, outcome.getFailure().getRemoteType(), outcome.getFailure().getMessage());
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

void ClusterTasks::expire() {
  scheduler_.expire(std::chrono::steady_clock::now());
}

void ClusterTasks::reply(std::uint64_t task_id, const std::string* value,
                         const std::string& remote_type, const std::string& message) {
  std::unique_ptr<RemoteTask> task;
  {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(task_id);
    if (it == tasks_.end()) return;
    task = std::move(it->second);
    tasks_.erase(it);
  }
  send_task_outcome(*task->driver, task->driver_task_id, task->last_node, value, remote_type,
                    message);
}

}  // namespace atl::runtime
