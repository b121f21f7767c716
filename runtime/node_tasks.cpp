#include "runtime/node_tasks.hpp"

#include <capnp/message.h>

#include <cstdio>

#include <asio/post.hpp>

#include "atoll/errors.hpp"
#include "runtime/cluster_messages.hpp"
#include "runtime/shared_memory.hpp"

namespace atl::runtime {

void send_task_finished(const transport::ConnectionPtr& head, const std::string& node_name,
                        std::uint64_t task_id, const WorkerOutcome& outcome, bool system_failure,
                        std::uint64_t run_micros, std::optional<std::uint64_t> stored_size) {
  transport::ControlMessage msg;
  auto done = msg.initRoot<wire::Envelope>().getBody().initTaskFinished();
  done.setTaskId(task_id);
  done.setNode(node_name);
  done.setSystemFailure(system_failure);
  done.setRunMicros(run_micros);
  if (stored_size) {
    done.getOutcome().setStored(*stored_size);
  } else if (outcome.ok) {
    done.getOutcome().setValue(capnp::Data::Reader(
        reinterpret_cast<const kj::byte*>(outcome.value.data()), outcome.value.size()));
  } else {
    auto f = done.getOutcome().initFailure();
    f.setRemoteType(outcome.remote_type.substr(0, transport::kMaxNameBytes));
    f.setMessage(outcome.message.substr(0, transport::kMaxMessageTextBytes));
    f.setTraceback(outcome.traceback.substr(0, transport::kMaxMessageTextBytes));
    if (outcome.details.size() <= transport::kMaxFailureDetailsBytes)
      f.setDetails(data_of(outcome.details));
  }
  head->send(msg);
}

NodeTaskRunner::NodeTaskRunner(std::string node_name, NodeModules& modules, ObjectTransfer& objects,
                               WorkerLaunch launch, std::size_t slots)
    : node_name_(std::move(node_name)),
      modules_(modules),
      objects_(objects),
      launch_(std::move(launch)),
      pool_(std::max<std::size_t>(1, slots)),
      max_idle_(2 * std::max<std::size_t>(1, slots)) {}

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
  job.code.hash = spec.getCode();
  for (auto a : spec.getArgs()) job.args.push_back(Buffer::copy_of(a.begin(), a.size()));
  if (spec.hasResult()) job.result = object_key(spec.getResult());
  job.refs = read_object_args(spec.getArgRefs(), job.passed.objects);
  job.passed.actors = read_actor_args(spec.getActorArgs());
  std::string module = job.module_hash, code = job.code.hash;
  modules_.with_job(head, module, code,
                    [this, head, job = std::move(job)](const NodeModules::JobFiles& files,
                                                       const std::string& error) mutable {
                      if (!error.empty()) {
                        fail(head, job.task_id, "atl::Error", error, false);
                        return;
                      }
                      job.module_path = files.module;
                      job.code.path = files.code.string();
                      resolve_then_enqueue(head, std::move(job));
                    });
}

void NodeTaskRunner::resolve_then_enqueue(const transport::ConnectionPtr& head, Job job) {
  if (job.refs.empty()) {
    enqueue(head, std::move(job));
    return;
  }
  struct Resolving {
    std::mutex mu;
    Job job;
    std::size_t left = 0;
    ErrorPtr error;
  };
  auto state = std::make_shared<Resolving>();
  state->left = job.refs.size();
  auto refs = job.refs;
  state->job = std::move(job);
  fetch_object_args(objects_, head, refs,
                    [this, head, state](std::uint32_t index, Buffer value, ErrorPtr error) {
                      std::unique_lock lock(state->mu);
                      if (error) {
                        if (!state->error) state->error = std::move(error);
                      } else {
                        // The fetched block itself: a worker of this node maps it, no copy.
                        state->job.args[index] = std::move(value);
                      }
                      if (--state->left > 0) return;
                      lock.unlock();
                      if (state->error) {
                        auto out = object_arg_failure(*state->error, node_name_, "the task");
                        send_task_finished(head, node_name_, state->job.task_id, out, false);
                        return;
                      }
                      enqueue(head, std::move(state->job));
                    });
}

std::vector<ObjectArg> read_object_args(capnp::List<wire::ArgRef>::Reader refs,
                                        std::vector<ObjectArg>& passed) {
  std::vector<ObjectArg> out;
  for (auto r : refs)
    (r.getByReference() ? passed : out)
        .push_back({r.getIndex(), object_key(r.getObject()), r.getSize(), r.getHolder(),
                    r.getHolderName(), r.getByReference()});
  return out;
}

void fetch_object_args(ObjectTransfer& objects, const transport::ConnectionPtr& head,
                       const std::vector<ObjectArg>& refs,
                       const std::function<void(std::uint32_t, Buffer, ErrorPtr)>& arrived) {
  for (const auto& ref : refs) {
    if (ref.holder.empty()) {
      arrived(ref.index, {},
              make_error(ErrorKind::object_lost, "object " + ref.id.to_string() +
                                                     " is lost: no node holds it (its node left "
                                                     "the cluster)"));
      continue;
    }
    if (auto local = objects.held(ref.id)) {
      arrived(ref.index, *local, nullptr);
      continue;
    }
    objects.fetch(
        ref.id, ref.size, ref.holder, ref.holder_name,
        [head](capnp::MessageBuilder& msg) { head->send(msg); },
        [arrived, index = ref.index](Buffer value, ErrorPtr error) {
          arrived(index, std::move(value), std::move(error));
        });
  }
}

WorkerOutcome object_arg_failure(const ErrorInfo& error, const std::string& node_name,
                                 const std::string& what) {
  WorkerOutcome out;
  out.remote_type =
      error.kind == ErrorKind::store_full ? "atl::ObjectStoreFullError" : "atl::ObjectLostError";
  out.message = "an argument of " + what + " on node '" + node_name + "': " + error.message;
  return out;
}

void NodeTaskRunner::report(const transport::ConnectionPtr& head, const Job& job,
                            WorkerOutcome& out, std::uint64_t run_micros) {
  if (!out.ok || out.value.size() <= kMaxInlineObjectBytes || job.result.is_nil()) {
    send_task_finished(head, node_name_, job.task_id, out, false, run_micros);
    return;
  }
  // Too large for the control plane: it stays here (in the shared block the worker wrote it to)
  // until its owner frees it.
  std::uint64_t size = out.value.size();
  try {
    objects_.hold(job.result, std::move(out.value));
  } catch (const Error& e) {
    fail(head, job.task_id, "atl::ObjectStoreFullError",
         "the result of the task on node '" + node_name_ + "': " + e.what(), false);
    return;
  }
  if (head->closed()) {
    // The head is gone, and with it the only record of this object: the node registers anew.
    objects_.release(job.result);
    return;
  }
  send_task_finished(head, node_name_, job.task_id, out, false, run_micros, size);
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
  InFlight flight;
  while (top_up(lease, flight)) {
    if (flight.sent < flight.jobs.size() && !send_pending(head, flight, worker, worker_module))
      continue;
    finish_oldest(head, flight, worker);
  }
  if (worker) return_worker(worker_module, std::move(worker));
}

namespace {
// What the arguments add to the worker's socket: a large value in shared memory goes as a
// descriptor.
std::size_t argument_bytes(const std::vector<Buffer>& args) {
  std::size_t n = 0;
  for (const auto& a : args)
    if (a.size() <= kMaxInlineObjectBytes || !shared_span_of(a)) n += a.size();
  return n;
}
}  // namespace

bool NodeTaskRunner::top_up(std::uint64_t lease, InFlight& flight) {
  std::lock_guard lock(mu_);
  auto it = leases_.find(lease);
  auto& queue = it->second;
  while (!queue.empty()) {
    Job& next = queue.front();
    std::size_t bytes = argument_bytes(next.args);
    // A lease may carry several jobs' tasks: one module's tasks at a time share the worker.
    if (!flight.jobs.empty() &&
        (flight.jobs.size() >= kPipelineDepth || flight.bytes + bytes > kPipelineBytes ||
         worker_key(next) != worker_key(flight.jobs.front())))
      break;
    flight.bytes += bytes;
    flight.jobs.push_back(std::move(next));
    queue.pop_front();
  }
  if (!flight.jobs.empty()) return true;
  leases_.erase(it);
  return false;
}

bool NodeTaskRunner::send_pending(const transport::ConnectionPtr& head, InFlight& flight,
                                  std::unique_ptr<WorkerProcess>& worker,
                                  std::string& worker_module) {
  const Job& first = flight.jobs.front();
  const std::string key = worker_key(first);
  if (worker && worker_module != key) {
    return_worker(worker_module, std::move(worker));
  }
  if (!worker) worker = idle_worker(key);
  if (!worker) {
    try {
      // A new worker checks the module's hash itself before loading it.
      worker = WorkerProcess::spawn({launch_, first.module_path.string(), first.module_hash,
                                     first.module_name, !first.code.empty()},
                                    std::chrono::seconds(30));
    } catch (const Error& e) {
      fail(head, first.task_id, "atl::WorkerDied", "on node '" + node_name_ + "': " + e.what(),
           false);
      flight.bytes -= argument_bytes(first.args);
      flight.jobs.pop_front();
      return false;
    }
  }
  worker_module = key;
  if (flight.sent == 0) flight.last_outcome = std::chrono::steady_clock::now();
  while (flight.sent < flight.jobs.size()) {
    const Job& job = flight.jobs[flight.sent];
    try {
      if (!worker->send_execute(job.task_id, job.function, job.args, job.passed, job.code))
        break;  // the reader learns why
    } catch (const Error& e) {
      // This task cannot be handed over (its shared arguments); the others still can.
      fail(head, job.task_id, "atl::Error", "on node '" + node_name_ + "': " + e.what(), false);
      flight.bytes -= argument_bytes(job.args);
      flight.jobs.erase(flight.jobs.begin() + static_cast<std::ptrdiff_t>(flight.sent));
      continue;
    }
    ++flight.sent;
  }
  return !flight.jobs.empty() || flight.sent > 0;
}

void NodeTaskRunner::finish_oldest(const transport::ConnectionPtr& head, InFlight& flight,
                                   std::unique_ptr<WorkerProcess>& worker) {
  Job job = std::move(flight.jobs.front());
  flight.jobs.pop_front();
  flight.bytes -= argument_bytes(job.args);
  --flight.sent;
  try {
    auto [id, out] = worker->next_outcome();
    if (id != job.task_id) {
      worker->kill();
      throw Error(ErrorCategory::disconnected,
                  "worker process " + std::to_string(worker->pid()) +
                      " answered a task it was not running, and was killed");
    }
    // The worker started this task when it finished the previous one (or was handed this one).
    auto now = std::chrono::steady_clock::now();
    auto ran = std::chrono::duration_cast<std::chrono::microseconds>(now - flight.last_outcome);
    flight.last_outcome = now;
    report(head, job, out, static_cast<std::uint64_t>(ran.count()));
  } catch (const Error& e) {
    worker.reset();
    // The tasks written after this one had not started: they go to the next worker as they are.
    flight.sent = 0;
    // The worker died: the head decides whether to retry elsewhere.
    fail(head, job.task_id, "atl::WorkerDied", "on node '" + node_name_ + "': " + e.what(), true);
  }
}

std::string NodeTaskRunner::worker_key(const Job& job) {
  if (job.code.empty()) return job.module_hash;
  char owner[24];
  std::snprintf(owner, sizeof owner, "%016llx", static_cast<unsigned long long>(job.result.owner));
  return job.module_hash + "+python:" + owner;
}

std::unique_ptr<WorkerProcess> NodeTaskRunner::idle_worker(const std::string& key) {
  std::lock_guard lock(mu_);
  for (auto it = idle_workers_.rbegin(); it != idle_workers_.rend(); ++it) {
    if (it->first != key) continue;
    auto worker = std::move(it->second);
    idle_workers_.erase(std::next(it).base());
    return worker;
  }
  return nullptr;
}

void NodeTaskRunner::return_worker(const std::string& key, std::unique_ptr<WorkerProcess> worker) {
  std::unique_ptr<WorkerProcess> retired;  // ends outside the lock (its destructor waits)
  {
    std::lock_guard lock(mu_);
    idle_workers_.emplace_back(key, std::move(worker));
    if (idle_workers_.size() <= max_idle_) return;
    retired = std::move(idle_workers_.front().second);
    idle_workers_.pop_front();
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
