#include "runtime/node_tasks.hpp"

#include <capnp/message.h>

#include <asio/post.hpp>
#include <optional>

#include "atoll/errors.hpp"

namespace atl::runtime {

namespace {
constexpr std::chrono::hours kTaskTimeout{24};
}

NodeTaskRunner::NodeTaskRunner(std::string node_name, std::filesystem::path module_dir,
                               std::string worker_executable, std::size_t slots)
    : node_name_(std::move(node_name)),
      store_(std::move(module_dir)),
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
  job.module_hash = spec.getModuleHash();
  job.module_name = spec.getModuleName();
  job.function = spec.getFunction();
  for (auto a : spec.getArgs())
    job.args.emplace_back(reinterpret_cast<const char*>(a.begin()), a.size());
  bool have;
  {
    std::lock_guard lock(mu_);
    have = verified_.contains(job.module_hash);
  }
  if (!have) {
    try {
      if (auto path = store_.verified_path(job.module_hash)) {
        std::lock_guard lock(mu_);
        verified_[job.module_hash] = *path;
        have = true;
      }
    } catch (const std::exception&) {
      have = false;  // a corrupt copy was removed: fetch it again
    }
  }
  if (have) {
    start(head, std::move(job));
    return;
  }
  std::uint64_t request = 0;
  std::string hash = job.module_hash;
  {
    std::lock_guard lock(mu_);
    auto& waiting = waiting_for_module_[hash];
    if (waiting.empty()) {
      request = next_request_++;
      fetches_[request] = hash;
    }
    waiting.push_back(std::move(job));
  }
  if (request == 0) return;  // a fetch for this module is already under way
  capnp::MallocMessageBuilder msg;
  auto env = msg.initRoot<wire::Envelope>();
  env.setRequestId(request);
  env.getBody().initFetchModule().setHash(hash);
  head->send(msg);
}

void NodeTaskRunner::module_arrived(const transport::ConnectionPtr& head,
                                    wire::ModuleBlob::Reader blob) {
  std::string hash = blob.getHash();
  std::vector<Job> jobs;
  std::string error;
  std::optional<std::filesystem::path> path;
  try {
    store_.put_expecting(hash,
                         std::as_bytes(std::span(blob.getBytes().begin(), blob.getBytes().size())));
    path = store_.verified_path(hash);
  } catch (const std::exception& e) {
    error = e.what();
  }
  {
    std::lock_guard lock(mu_);
    if (path) verified_[hash] = *path;
    jobs = std::move(waiting_for_module_[hash]);
    waiting_for_module_.erase(hash);
  }
  for (auto& job : jobs) {
    if (error.empty())
      start(head, std::move(job));
    else
      finish(head, job.task_id, nullptr, "atl::Error", error, false);
  }
}

bool NodeTaskRunner::fetch_failed(const transport::ConnectionPtr& head, std::uint64_t request_id,
                                  const std::string& message) {
  std::vector<Job> jobs;
  {
    std::lock_guard lock(mu_);
    auto it = fetches_.find(request_id);
    if (it == fetches_.end()) return false;
    jobs = std::move(waiting_for_module_[it->second]);
    waiting_for_module_.erase(it->second);
    fetches_.erase(it);
  }
  for (auto& job : jobs) finish(head, job.task_id, nullptr, "atl::Error", message, false);
  return true;
}

void NodeTaskRunner::start(const transport::ConnectionPtr& head, Job job) {
  asio::post(pool_, [this, head, job = std::move(job)] { execute(head, job); });
}

void NodeTaskRunner::execute(const transport::ConnectionPtr& head, const Job& job) {
  std::unique_ptr<WorkerProcess> worker;
  std::filesystem::path path;
  {
    std::lock_guard lock(mu_);
    auto& idle = idle_workers_[job.module_hash];
    if (!idle.empty()) {
      worker = std::move(idle.back());
      idle.pop_back();
    }
    path = verified_[job.module_hash];
  }
  try {
    // A new worker checks the module's hash itself before loading it.
    if (!worker)
      worker = WorkerProcess::spawn(
          {worker_executable_, path.string(), job.module_hash, job.module_name},
          std::chrono::seconds(30));
    WorkerOutcome out = worker->execute(job.function, job.args, kTaskTimeout);
    {
      std::lock_guard lock(mu_);
      idle_workers_[job.module_hash].push_back(std::move(worker));
    }
    if (out.ok)
      finish(head, job.task_id, &out.value, "", "", false);
    else
      finish(head, job.task_id, nullptr, out.remote_type, out.message, false);
  } catch (const Error& e) {
    // The worker died (or could not start): the head decides whether to retry elsewhere.
    bool died =
        e.category() == ErrorCategory::disconnected || e.category() == ErrorCategory::timed_out;
    finish(head, job.task_id, nullptr, "atl::WorkerDied",
           "on node '" + node_name_ + "': " + e.what(), died);
  }
}

void NodeTaskRunner::finish(const transport::ConnectionPtr& head, std::uint64_t task_id,
                            const std::string* value, const std::string& remote_type,
                            const std::string& message, bool system_failure) {
  capnp::MallocMessageBuilder msg;
  auto done = msg.initRoot<wire::Envelope>().getBody().initTaskFinished();
  done.setTaskId(task_id);
  done.setNode(node_name_);
  done.setSystemFailure(system_failure);
  if (value != nullptr) {
    done.getOutcome().setValue(
        capnp::Data::Reader(reinterpret_cast<const kj::byte*>(value->data()), value->size()));
  } else {
    auto f = done.getOutcome().initFailure();
    f.setRemoteType(remote_type.substr(0, 256));
    f.setMessage(message.substr(0, 60000));
  }
  head->send(msg);
}

}  // namespace atl::runtime
