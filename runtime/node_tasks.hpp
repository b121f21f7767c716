// The node agent's side of cluster tasks: fetch the job's module from the head when this node
// lacks it (verified by hash), and run each task in a worker process from a per-module pool, on a
// thread pool sized to the node's CPUs (the head never sends more). A worker that dies is reported
// as a system failure naming this node and the signal, so the head can retry the task elsewhere.
//
// Thread-safety: `run`, `module_arrived` and `fetch_failed` are called from the agent's io thread;
// tasks execute on the pool's threads.
#pragma once

#include <asio/thread_pool.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/module_store.hpp"
#include "runtime/worker_process.hpp"
#include "transport/connection.hpp"

namespace atl::runtime {

class NodeTaskRunner {
 public:
  NodeTaskRunner(std::string node_name, std::filesystem::path module_dir,
                 std::string worker_executable, std::size_t slots);
  ~NodeTaskRunner();

  void run(const transport::ConnectionPtr& head, wire::TaskSpec::Reader spec);
  void module_arrived(const transport::ConnectionPtr& head, wire::ModuleBlob::Reader blob);
  // The head answered a fetch with an error: the tasks waiting for that module fail.
  bool fetch_failed(const transport::ConnectionPtr& head, std::uint64_t request_id,
                    const std::string& message);

 private:
  struct Job {
    std::uint64_t task_id = 0;
    std::string module_hash, module_name, function;
    std::vector<std::string> args;
  };

  void start(const transport::ConnectionPtr& head, Job job);
  void execute(const transport::ConnectionPtr& head, const Job& job);
  void finish(const transport::ConnectionPtr& head, std::uint64_t task_id, const std::string* value,
              const std::string& remote_type, const std::string& message, bool system_failure);

  const std::string node_name_;
  ModuleStore store_;
  const std::string worker_executable_;
  asio::thread_pool pool_;
  std::mutex mu_;
  std::map<std::string, std::vector<Job>> waiting_for_module_;
  std::map<std::uint64_t, std::string> fetches_;  // request id -> module hash
  std::uint64_t next_request_ = 1;
  std::map<std::string, std::vector<std::unique_ptr<WorkerProcess>>> idle_workers_;
  // Modules verified once here (each worker verifies again before loading): hash -> path.
  std::map<std::string, std::filesystem::path> verified_;
};

}  // namespace atl::runtime
