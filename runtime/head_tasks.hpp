// The head's side of cluster tasks: job modules by hash, and tasks from drivers placed onto node
// agents by the same Scheduler the embedded runtime uses (one RemoteNode endpoint per registered
// node). A task whose worker or node dies is placed again up to its max_retries; the result goes
// back to the driver that submitted it.
//
// Thread-safety: all methods are thread-safe. The scheduler is never called with mu_ held, since
// it calls back into RemoteNode::run_task.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "atoll/errors.hpp"
#include "runtime/membership.hpp"
#include "runtime/scheduler.hpp"
#include "transport/connection.hpp"

namespace atl::runtime {

class ClusterTasks {
 public:
  ClusterTasks(const Clock& clock, std::chrono::milliseconds infeasible_timeout);

  void node_joined(std::uint64_t node_id, const NodeInfo& info, transport::ConnectionPtr conn);
  // The node died or left: its running tasks are retried elsewhere or fail.
  void node_left(std::uint64_t node_id);

  void store_module(const std::string& hash, std::string bytes);
  std::optional<std::string> module(const std::string& hash) const;

  // A driver's task; invalid ones are answered at once with a failure.
  void submit(const transport::ConnectionPtr& driver, wire::TaskSpec::Reader spec);
  void finished(std::uint64_t node_id, wire::TaskFinished::Reader done);
  // Fails tasks that waited longer than the infeasible timeout.
  void expire();

 private:
  struct RemoteTask {
    TaskRecord record;  // what the scheduler sees
    transport::ConnectionPtr driver;
    std::uint64_t driver_task_id = 0;
    std::string module_hash, module_name, function;
    std::vector<std::string> args;
    unsigned max_retries = 0;
    unsigned attempts = 0;
    std::uint64_t node_id = 0;  // where it runs now (0: queued)
    std::string last_node;
  };

  struct RemoteNode final : NodeEndpoint {
    ClusterTasks* owner = nullptr;
    std::uint64_t id = 0;
    std::string name;
    transport::ConnectionPtr conn;
    NodeState* state = nullptr;
    void run_task(TaskRecord* task) override { owner->send_run(*this, task); }
    // The head schedules no actor placements yet (drivers refuse actors in cluster mode).
    void place_actor(TaskRecord*) override {
      throw Error(ErrorCategory::unimplemented, "actors are not placed on cluster nodes yet");
    }
  };

  void send_run(RemoteNode& node, TaskRecord* record);
  void retry_or_fail(std::uint64_t task_id, const std::string& why);
  // Sends the outcome to the driver and forgets the task.
  void reply(std::uint64_t task_id, const std::string* value, const std::string& remote_type,
             const std::string& message);

  Scheduler scheduler_;
  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, std::unique_ptr<RemoteTask>> tasks_;
  std::unordered_map<std::uint64_t, std::unique_ptr<RemoteNode>> nodes_;
  std::map<std::string, std::string> modules_;
  std::uint64_t next_task_ = 1;
};

}  // namespace atl::runtime
