#include "runtime/node_tasks.hpp"

#include <capnp/message.h>

#include <asio/post.hpp>

#include "atoll/errors.hpp"

namespace atl::runtime {

namespace {
constexpr std::chrono::hours kTaskTimeout{24};
}

void send_task_finished(const transport::ConnectionPtr& head, const std::string& node_name,
                        std::uint64_t task_id, const WorkerOutcome& outcome, bool system_failure,
                        std::uint64_t run_micros) {
  capnp::MallocMessageBuilder msg;
  auto done = msg.initRoot<wire::Envelope>().getBody().initTaskFinished();
  done.setTaskId(task_id);
  done.setNode(node_name);
  done.setSystemFailure(system_failure);
  done.setRunMicros(run_micros);
  if (outcome.ok) {
    done.getOutcome().setValue(capnp::Data::Reader(
        reinterpret_cast<const kj::byte*>(outcome.value.data()), outcome.value.size()));
  } else {
    auto f = done.getOutcome().initFailure();
    f.setRemoteType(outcome.remote_type.substr(0, transport::kMaxNameBytes));
    f.setMessage(outcome.message.substr(0, transport::kMaxMessageTextBytes));
  }
  head->send(msg);
}

NodeTaskRunner::NodeTaskRunner(std::string node_name, NodeModules& modules,
                               std::string worker_executable, std::size_t slots)
    : node_name_(std::move(node_name)),
      modules_(modules),
      worker_executable_(std::move(worker_executable)),
      pool_(std::max<std::size_t>(1, slots)) {}

NodeTaskRunner::~NodeTaskRunner() {
  pool_.join();
  std::lock_guard lock(mu_);
  idle_workers_.clear();  // closes their sockets: the workers exit
}

void NodeTaskRunner::run(const transport::ConnectionPtr& head, wire::TaskSpec::Reader spec) {
  Job job;
  job.task_id = spec.getTaskId();
  job.lease = spec.getLease();
  job.module_hash = spec.getModuleHash();
  job.module_name = spec.getModuleName();
  job.function = spec.getFunction();
  for (auto a : spec.getArgs())
    job.args.emplace_back(reinterpret_cast<const char*>(a.begin()), a.size());
  std::string hash = job.module_hash;
  modules_.with_module(head, hash,
                       [this, head, job = std::move(job)](const std::filesystem::path* path,
                                                          const std::string& error) mutable {
                         if (path == nullptr) {
                           fail(head, job.task_id, "atl::Error", error, false);
                           return;
                         }
                         job.module_path = *path;
                         enqueue(head, std::move(job));
                       });
}

void NodeTaskRunner::enqueue(const transport::ConnectionPtr& head, Job job) {
  bool fresh;
  std::uint64_t lease;
  {
    std::lock_guard lock(mu_);
    if (job.lease == 0) job.lease = (1ull << 63) | ++unleased_;
    lease = job.lease;
    auto [it, inserted] = leases_.try_emplace(lease);
    it->second.push_back(std::move(job));
    fresh = inserted;
  }
  if (fresh) asio::post(pool_, [this, head, lease] { serve(head, lease); });
}

void NodeTaskRunner::serve(const transport::ConnectionPtr& head, std::uint64_t lease) {
  std::unique_ptr<WorkerProcess> worker;
  std::string worker_module;
  for (;;) {
    Job job;
    {
      std::lock_guard lock(mu_);
      auto it = leases_.find(lease);
      if (it->second.empty()) {
        leases_.erase(it);
        break;
      }
      job = std::move(it->second.front());
      it->second.pop_front();
    }
    if (worker && worker_module != job.module_hash) {
      return_worker(worker_module, std::move(worker));  // a lease may carry several jobs' tasks
    }
    if (!worker) {
      worker = idle_worker(job.module_hash);
      worker_module = job.module_hash;
    }
    execute(head, job, worker);
  }
  if (worker) return_worker(worker_module, std::move(worker));
}

std::unique_ptr<WorkerProcess> NodeTaskRunner::idle_worker(const std::string& module_hash) {
  std::lock_guard lock(mu_);
  auto& idle = idle_workers_[module_hash];
  if (idle.empty()) return nullptr;
  auto worker = std::move(idle.back());
  idle.pop_back();
  return worker;
}

void NodeTaskRunner::return_worker(const std::string& module_hash,
                                   std::unique_ptr<WorkerProcess> worker) {
  std::lock_guard lock(mu_);
  idle_workers_[module_hash].push_back(std::move(worker));
}

void NodeTaskRunner::execute(const transport::ConnectionPtr& head, const Job& job,
                             std::unique_ptr<WorkerProcess>& worker) {
  try {
    // A new worker checks the module's hash itself before loading it.
    if (!worker)
      worker = WorkerProcess::spawn(
          {worker_executable_, job.module_path.string(), job.module_hash, job.module_name},
          std::chrono::seconds(30));
    auto started = std::chrono::steady_clock::now();
    WorkerOutcome out = worker->execute(job.function, job.args, kTaskTimeout);
    auto ran = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    send_task_finished(head, node_name_, job.task_id, out, false,
                       static_cast<std::uint64_t>(ran.count()));
  } catch (const Error& e) {
    worker.reset();
    // The worker died (or could not start): the head decides whether to retry elsewhere.
    bool died =
        e.category() == ErrorCategory::disconnected || e.category() == ErrorCategory::timed_out;
    fail(head, job.task_id, "atl::WorkerDied", "on node '" + node_name_ + "': " + e.what(), died);
  }
}

void NodeTaskRunner::fail(const transport::ConnectionPtr& head, std::uint64_t task_id,
                          const std::string& remote_type, const std::string& message,
                          bool system_failure) {
  WorkerOutcome out;
  out.remote_type = remote_type;
  out.message = message;
  send_task_finished(head, node_name_, task_id, out, system_failure);
}

}  // namespace atl::runtime
