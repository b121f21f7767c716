// The node agent's side of cluster tasks: each task runs in a worker process from a per-module
// pool, on a thread pool sized to the node's CPUs, once the node has the job's module
// (NodeModules fetches and verifies it). Tasks of one lease (one charge of resources at the head)
// run one after another on one worker; the head never has more leases here than the node has
// resources, and may send a lease's next tasks ahead so the worker does not wait for it. A worker
// that dies is reported as a system failure naming this node and the signal, so the head can retry
// the task elsewhere.
//
// Thread-safety: `run` is called from the agent's io thread; tasks execute on the pool's threads.
#pragma once

#include <asio/thread_pool.hpp>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/node_modules.hpp"
#include "runtime/worker_process.hpp"
#include "transport/connection.hpp"

namespace atl::runtime {

class NodeTaskRunner {
 public:
  NodeTaskRunner(std::string node_name, NodeModules& modules, std::string worker_executable,
                 std::size_t slots);
  ~NodeTaskRunner();

  void run(const transport::ConnectionPtr& head, wire::TaskSpec::Reader spec);

 private:
  struct Job {
    std::uint64_t task_id = 0;
    std::string module_hash, module_name, function;
    std::filesystem::path module_path;
    std::vector<std::string> args;
    std::uint64_t lease = 0;
  };

  void enqueue(const transport::ConnectionPtr& head, Job job);
  // Runs the lease's tasks in order until its queue is empty.
  void serve(const transport::ConnectionPtr& head, std::uint64_t lease);
  // Runs one task on `worker` (started when null; reset when it dies).
  void execute(const transport::ConnectionPtr& head, const Job& job,
               std::unique_ptr<WorkerProcess>& worker);
  std::unique_ptr<WorkerProcess> idle_worker(const std::string& module_hash);
  void return_worker(const std::string& module_hash, std::unique_ptr<WorkerProcess> worker);
  void fail(const transport::ConnectionPtr& head, std::uint64_t task_id,
            const std::string& remote_type, const std::string& message, bool system_failure);

  const std::string node_name_;
  NodeModules& modules_;
  const std::string worker_executable_;
  asio::thread_pool pool_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<WorkerProcess>>> idle_workers_;
  std::map<std::uint64_t, std::deque<Job>> leases_;  // present while a pool thread serves it
  std::uint64_t unleased_ = 0;                       // tasks sent without a lease run alone
};

// A TaskFinished for `task_id` as this node reports it (the value, or a failure).
void send_task_finished(const transport::ConnectionPtr& head, const std::string& node_name,
                        std::uint64_t task_id, const WorkerOutcome& outcome, bool system_failure,
                        std::uint64_t run_micros = 0);

}  // namespace atl::runtime
