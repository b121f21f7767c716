// The node agent's side of cluster tasks: each task runs in a worker process from a per-module
// pool, on a thread pool sized to the node's CPUs (the head never sends more), once the node has
// the job's module (NodeModules fetches and verifies it). A worker that dies is reported as a
// system failure naming this node and the signal, so the head can retry the task elsewhere.
//
// Thread-safety: `run` is called from the agent's io thread; tasks execute on the pool's threads.
#pragma once

#include <asio/thread_pool.hpp>
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
  };

  void execute(const transport::ConnectionPtr& head, const Job& job);
  void fail(const transport::ConnectionPtr& head, std::uint64_t task_id,
            const std::string& remote_type, const std::string& message, bool system_failure);

  const std::string node_name_;
  NodeModules& modules_;
  const std::string worker_executable_;
  asio::thread_pool pool_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<WorkerProcess>>> idle_workers_;
};

// A TaskFinished for `task_id` as this node reports it (the value, or a failure).
void send_task_finished(const transport::ConnectionPtr& head, const std::string& node_name,
                        std::uint64_t task_id, const WorkerOutcome& outcome, bool system_failure);

}  // namespace atl::runtime
