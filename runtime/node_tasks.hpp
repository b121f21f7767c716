// The node agent's side of cluster tasks: each task runs in a worker process from a per-module
// pool, on a thread pool sized to the node's CPUs, once the node has the job's module
// (NodeModules fetches and verifies it). Tasks of one lease (one charge of resources at the head)
// run one after another on one worker; the head never has more leases here than the node has
// resources, and may send a lease's next tasks ahead. Those are written to the worker before the
// current task's outcome is read (up to kPipelineDepth tasks and kPipelineBytes of arguments), so
// the worker goes from one task to the next without waiting for a round trip. A worker that dies
// is reported as a system failure naming this node and the signal, so the head can retry the task
// elsewhere; the tasks queued behind it had not started (a task worker runs one at a time) and go
// to a fresh worker.
//
// Thread-safety: `run` is called from the agent's io thread; tasks execute on the pool's threads.
#pragma once

#include <asio/thread_pool.hpp>
#include <deque>
#include <filesystem>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/node_modules.hpp"
#include "runtime/object_transfer.hpp"
#include "runtime/worker_process.hpp"
#include "transport/connection.hpp"

namespace atl::runtime {

// A call's object arguments as the head sent them: those to fetch (values), and `passed`, the
// ObjectRef parameters the worker borrows.
std::vector<ObjectArg> read_object_args(capnp::List<wire::ArgRef>::Reader refs,
                                        std::vector<ObjectArg>& passed);
// Gets each argument's value, from this node's own objects or fetched from its holder (asking
// the head through `head`), and calls `arrived` once per argument with the value or the error
// (at once, or later on the data plane's thread).
void fetch_object_args(ObjectTransfer& objects, const transport::ConnectionPtr& head,
                       const std::vector<ObjectArg>& refs,
                       const std::function<void(std::uint32_t, Buffer, ErrorPtr)>& arrived);
// The failure a call gets when one of its object arguments could not be had.
WorkerOutcome object_arg_failure(const ErrorInfo& error, const std::string& node_name,
                                 const std::string& what);

class NodeTaskRunner {
 public:
  // `objects` holds this node's large results and fetches other nodes' objects for arguments.
  NodeTaskRunner(std::string node_name, NodeModules& modules, ObjectTransfer& objects,
                 WorkerLaunch launch, std::size_t slots);
  ~NodeTaskRunner();

  void run(const transport::ConnectionPtr& head, wire::TaskSpec::Reader spec);

 private:
  struct Job {
    std::uint64_t task_id = 0;
    std::string module_hash, module_name, function;
    std::filesystem::path module_path;
    CodeRef code;              // a Python function (its worker is a Python one)
    std::vector<Buffer> args;  // large ones in the node's shared memory, lent to the worker
    std::uint64_t lease = 0;
    ObjectId result;              // nil: the head did not name it (the value always travels inline)
    std::vector<ObjectArg> refs;  // fetched into args[index] before it runs
    PassedArgs passed;            // ObjectRef and ActorHandle parameters, for the worker
  };

  // Tasks written to a lease's worker whose outcomes are not read yet, oldest first.
  struct InFlight {
    std::deque<Job> jobs;
    std::size_t sent = 0;   // jobs[0, sent) are with the worker
    std::size_t bytes = 0;  // argument bytes of `jobs` written to the socket
    std::chrono::steady_clock::time_point last_outcome;
  };

  // Puts the values of the job's object arguments into its args (fetching those held elsewhere),
  // then enqueues it; fails the task when one cannot be had.
  void resolve_then_enqueue(const transport::ConnectionPtr& head, Job job);
  void enqueue(const transport::ConnectionPtr& head, Job job);
  // Reports a finished task: a large value stays here (the head learns its size).
  void report(const transport::ConnectionPtr& head, const Job& job, WorkerOutcome& out,
              std::uint64_t run_micros);
  // Runs the lease's tasks in order until its queue is empty.
  void serve(const transport::ConnectionPtr& head, std::uint64_t lease);
  // Moves the lease's next tasks into `flight` while the pipeline has room. False (and the lease
  // is gone) when nothing is queued or in flight.
  bool top_up(std::uint64_t lease, InFlight& flight);
  // Writes flight's unsent tasks to `worker`, starting one when null. False when the worker could
  // not start (the first task has been failed) or died while being written to.
  bool send_pending(const transport::ConnectionPtr& head, InFlight& flight,
                    std::unique_ptr<WorkerProcess>& worker, std::string& worker_module);
  // Reads the oldest task's outcome and reports it; on the worker's death, fails that task and
  // puts the rest back to be sent again.
  void finish_oldest(const transport::ConnectionPtr& head, InFlight& flight,
                     std::unique_ptr<WorkerProcess>& worker);
  // Jobs with the same key share workers: the module's hash and the language, and for Python the
  // driver (its result ids' owner): Python code keeps process-wide state (modules, globals), which
  // one driver's tasks must not see or change for another's.
  static std::string worker_key(const Job& job);
  std::unique_ptr<WorkerProcess> idle_worker(const std::string& key);
  void return_worker(const std::string& key, std::unique_ptr<WorkerProcess> worker);
  void fail(const transport::ConnectionPtr& head, std::uint64_t task_id,
            const std::string& remote_type, const std::string& message, bool system_failure);

  static constexpr std::size_t kPipelineDepth = 8;
  // Bounded well below a socketpair's buffer, so writing ahead never blocks on a worker that is
  // itself blocked writing an outcome.
  static constexpr std::size_t kPipelineBytes = 64 * 1024;

  const std::string node_name_;
  NodeModules& modules_;
  ObjectTransfer& objects_;
  const WorkerLaunch launch_;
  asio::thread_pool pool_;
  std::mutex mu_;
  // Idle workers by key, least recently used first; at most max_idle_ (the oldest go, so the
  // workers of drivers that left do not pile up).
  std::list<std::pair<std::string, std::unique_ptr<WorkerProcess>>> idle_workers_;
  const std::size_t max_idle_;
  std::map<std::uint64_t, std::deque<Job>> leases_;  // present while a pool thread serves it
  std::uint64_t unleased_ = 0;                       // tasks sent without a lease run alone
};

// A TaskFinished for `task_id` as this node reports it (the value, or a failure; `stored_size`
// set: the value is held on this node).
void send_task_finished(const transport::ConnectionPtr& head, const std::string& node_name,
                        std::uint64_t task_id, const WorkerOutcome& outcome, bool system_failure,
                        std::uint64_t run_micros = 0,
                        std::optional<std::uint64_t> stored_size = std::nullopt);

}  // namespace atl::runtime
