#include "runtime/embedded_core.hpp"

#include <unistd.h>

#include <cmath>
#include <random>

#include "runtime/gpu_probe.hpp"
#include "runtime/invocation.hpp"
#include "runtime/object_ops.hpp"

namespace atl::runtime {

namespace {

std::uint64_t physical_memory() {
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0
             ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page)
             : (8ull << 30);
}

std::uint64_t random_owner() {
  std::random_device rd;
  std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return v == 0 ? 1 : v;
}

ErrorPtr shutdown_error() {
  return make_error(ErrorKind::shutdown, "the atoll runtime shut down");
}

constexpr std::size_t kMaxWorkerThreadsPerNode = 4096;

}  // namespace

std::shared_ptr<EmbeddedCore> EmbeddedCore::create(InitOptions options) {
  if (!options.address.empty())  // atl::init sends addresses to the cluster driver
    throw Error(ErrorCategory::invalid_argument, "the embedded runtime takes no address");
  if (options.infeasible_timeout.count() < 0)
    throw Error(ErrorCategory::invalid_argument, "infeasible_timeout must not be negative");
  std::shared_ptr<EmbeddedCore> core(new EmbeddedCore(std::move(options)));
  core->add_nodes(core->options_.nodes);  // may throw: no self-reference to break yet
  core->self_ = core;
  core->maintenance_ = std::thread([raw = core.get()] { raw->maintenance_loop(); });
  return core;
}

EmbeddedCore::EmbeddedCore(InitOptions options)
    : options_(std::move(options)),
      owner_(random_owner()),
      store_(options_.object_store_memory != 0 ? options_.object_store_memory
                                               : physical_memory() / 2),
      buffers_(BufferPool::create(std::min<std::uint64_t>(store_.capacity() / 4, 2ull << 30))),
      scheduler_(clock_, options_.infeasible_timeout,
                 [this](TaskRecord* t, ErrorPtr e) { executor_.fail(t, std::move(e)); }),
      executor_(store_, scheduler_, counters_, self_),
      actor_services_{store_,
                      scheduler_,
                      counters_,
                      self_,
                      [this](ActorRecord* a) { actor_died(a); },
                      [this](ActorRecord* a) { actor_reapable(a); }} {
  for (ModuleFn module : options_.modules) {
    if (module == nullptr) throw Error(ErrorCategory::invalid_argument, "null module function");
    module(registry_);
  }
}

void EmbeddedCore::add_nodes(const std::vector<NodeOptions>& requested) {
  std::vector<NodeOptions> nodes = requested;
  if (nodes.empty()) {
    // One node sized like this machine, with the GPUs the CUDA runtime reports.
    NodeOptions local;
    GpuInventory gpus = probe_gpus();
    local.num_gpus = gpus.count;
    local.gpu_model = gpus.model;
    nodes.push_back(std::move(local));
  }
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const NodeOptions& n = nodes[i];
    ResourceNames& names = scheduler_.names();
    double cpus = n.num_cpus.value_or(std::max(1u, std::thread::hardware_concurrency()));
    std::uint64_t memory = n.memory != 0 ? n.memory : physical_memory();
    if (n.num_gpus != 0 && n.gpu_model.empty())
      throw Error(ErrorCategory::invalid_argument, "a node with GPUs needs a gpu_model");
    ResourceDemand declared = make_demand(names, cpus, 0, n.num_gpus, memory, n.resources);
    ResourceVector total;
    total.add(declared);
    Labels labels = n.labels;
    labels["island"] = n.island.empty() ? "local" : n.island;
    if (!n.gpu_model.empty()) labels["gpu_model"] = n.gpu_model;
    std::string name = n.name.empty() ? "node-" + std::to_string(i) : n.name;
    auto keep = static_cast<std::size_t>(std::ceil(cpus));  // one thread per CPU stays warm
    nodes_.push_back(std::make_unique<NodeAgent>(executor_, kMaxWorkerThreadsPerNode, keep));
    scheduler_.add_node(std::move(name), std::move(labels), total, nodes_.back().get());
  }
}

EmbeddedCore::~EmbeddedCore() {
  shutdown();
}

const detail::FunctionEntry& EmbeddedCore::function_by_key(std::uintptr_t key) const {
  return registry_.require_function(key);
}

const detail::FunctionEntry& EmbeddedCore::function_by_name(std::string_view name) const {
  return registry_.require_function(name);
}

const detail::ActorClassEntry& EmbeddedCore::actor_class(std::type_index type) const {
  return registry_.require_actor_class(type);
}

const detail::ActorClassEntry& EmbeddedCore::actor_class_by_name(std::string_view name) const {
  return registry_.require_actor_class(name);
}

void EmbeddedCore::extend_registry(Registry&& more) {
  ensure_running();
  registry_.merge(std::move(more));
}

void EmbeddedCore::ensure_running() const {
  if (shut_down_.load(std::memory_order_acquire))
    throw RuntimeShutdownError("the atoll runtime has been shut down");
}

std::shared_ptr<detail::RefToken> EmbeddedCore::submit_task(const detail::FunctionEntry& fn,
                                                            std::vector<detail::ArgSpec> args,
                                                            const TaskOptions* options) {
  ensure_running();
  for (const auto& a : args) {
    if ((a.ref && &a.ref->core() != this) || (a.actor && &a.actor->core() != this))
      throw Error(ErrorCategory::invalid_argument,
                  "an argument of '" + fn.name + "' belongs to another runtime");
  }
  SchedulingClass* cls = scheduler_.default_task_class();
  if (options != nullptr) {
    if (options->max_retries < 0)
      throw Error(ErrorCategory::invalid_argument, "max_retries must not be negative");
    cls = scheduler_.class_for(*options);
  }
  auto task = std::make_unique<TaskRecord>();
  auto seq = next_sequence_.fetch_add(1, std::memory_order_relaxed);
  task->id = TaskId{owner_, seq};
  task->function = &fn;
  task->args = std::move(args);
  task->cls = cls;
  task->max_retries = options != nullptr ? options->max_retries : TaskOptions{}.max_retries;
  if (options != nullptr) {
    task->custom_name = options->name;
    task->retry_exceptions = options->retry_exceptions;
  }
  ObjectId result_id{owner_, seq};
  task->result = store_.create(result_id, 2);  // the caller's token and the task
  auto token = std::make_shared<detail::RefToken>(self_, result_id, task->result);
  counters_.tasks_submitted.fetch_add(1, std::memory_order_relaxed);
  start_when_ready(task.release());
  return token;
}

void EmbeddedCore::start_when_ready(TaskRecord* task) {
  std::size_t refs = 0;
  bool any_pending = false;
  for (const auto& a : task->args) {
    if (a.kind != detail::ArgSpec::Kind::resolve_ref) continue;
    ++refs;
    any_pending = any_pending || !entry_of(*a.ref)->resolved();
  }
  if (!any_pending) {
    dependencies_resolved(task);
    return;
  }
  counters_.tasks_waiting_for_dependencies.fetch_add(1, std::memory_order_relaxed);
  task->sink = this;
  task->dependency_waiters = std::make_unique<DependencyWaiter[]>(refs);
  // One extra count held while registering, so the task cannot start under our feet.
  task->pending_dependencies.store(static_cast<int>(refs) + 1, std::memory_order_relaxed);
  std::size_t k = 0;
  for (const auto& a : task->args) {
    if (a.kind != detail::ArgSpec::Kind::resolve_ref) continue;
    DependencyWaiter& w = task->dependency_waiters[k++];
    w.task = task;
    if (!store_.add_waiter(entry_of(*a.ref), &w))
      task->pending_dependencies.fetch_sub(1, std::memory_order_acq_rel);
  }
  if (task->pending_dependencies.fetch_sub(1, std::memory_order_acq_rel) == 1)
    dependencies_resolved(task);
}

void EmbeddedCore::dependencies_resolved(TaskRecord* task) noexcept {
  if (task->sink != nullptr) {
    counters_.tasks_waiting_for_dependencies.fetch_sub(1, std::memory_order_relaxed);
    task->sink = nullptr;
  }
  for (const auto& a : task->args) {
    if (a.kind != detail::ArgSpec::Kind::resolve_ref) continue;
    ObjectEntry* e = entry_of(*a.ref);
    if (e->state.load(std::memory_order_acquire) == ObjectState::failed) {
      executor_.fail(task, e->error);  // an input's error is the task's error
      return;
    }
  }
  schedule(task);
}

void EmbeddedCore::schedule(TaskRecord* task) noexcept {
  if (!scheduler_.submit(task)) executor_.fail(task, shutdown_error());
}

std::shared_ptr<detail::RefToken> EmbeddedCore::put(detail::Payload value) {
  ensure_running();
  return put_object(store_, self_, next_id<ObjectId>(), std::move(value));
}

const detail::Payload& EmbeddedCore::get(const detail::RefToken& ref, detail::Deadline deadline) {
  return get_object(store_, entry_for(*this, ref), ref.id(), deadline,
                    TaskExecutor::current_hooks());
}

void EmbeddedCore::await_all(std::span<const detail::RefToken* const> refs,
                             detail::Deadline deadline) {
  std::vector<ObjectEntry*> entries;
  entries.reserve(refs.size());
  for (const auto* r : refs) entries.push_back(entry_for(*this, *r));
  runtime::await_all(store_, entries, deadline, TaskExecutor::current_hooks());
}

void EmbeddedCore::wait(std::span<const detail::RefToken* const> refs, std::size_t num_ready,
                        detail::Deadline deadline, std::vector<bool>& ready) {
  std::vector<ObjectEntry*> entries;
  entries.reserve(refs.size());
  for (const auto* r : refs) entries.push_back(entry_for(*this, *r));
  wait_objects(store_, entries, num_ready, deadline, TaskExecutor::current_hooks(), ready);
}

bool EmbeddedCore::cancel(const detail::RefToken& ref) {
  return cancel_object(store_, entry_for(*this, ref), ref.id());
}

MutableBuffer EmbeddedCore::create_buffer(std::size_t size) {
  ensure_running();
  return buffers_->allocate(size);
}

RuntimeStats EmbeddedCore::stats() const {
  RuntimeStats s = object_and_task_stats(store_, counters_);
  s.tasks_queued = scheduler_.queued();
  s.tasks_waiting_for_dependencies = counters_.tasks_waiting_for_dependencies.load();
  s.actors_alive = counters_.actors_alive.load();
  for (const auto& n : nodes_) s.worker_threads += n->worker_threads();
  s.nodes = nodes_.size();
  return s;
}

void EmbeddedCore::release_object(void* entry) noexcept {
  store_.release(static_cast<ObjectEntry*>(entry));
}

void EmbeddedCore::maintenance_loop() {
  std::unique_lock lock(maintenance_mu_);
  while (!stop_maintenance_) {
    auto period = scheduler_.has_infeasible() ? std::chrono::milliseconds(10)
                                              : std::chrono::milliseconds(100);
    maintenance_cv_.wait_for(lock, period);
    if (stop_maintenance_) break;
    lock.unlock();
    scheduler_.expire(clock_.now());
    reap_actors();
    lock.lock();
  }
}

void EmbeddedCore::shutdown() {
  if (shut_down_.exchange(true)) return;
  {
    std::lock_guard lock(maintenance_mu_);
    stop_maintenance_ = true;
  }
  maintenance_cv_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();

  for (TaskRecord* t : scheduler_.stop()) executor_.fail(t, shutdown_error());
  // Wakes every blocked get (in user code and in tasks) and every task waiting for an input.
  store_.fail_all_pending(shutdown_error());

  std::vector<ActorRecord*> actors;
  {
    std::lock_guard lock(actors_mu_);
    for (auto& [id, a] : actors_) actors.push_back(a.get());
  }
  for (ActorRecord* a : actors) a->kill(shutdown_error());
  for (auto& node : nodes_)
    for (TaskRecord* t : node->stop()) executor_.fail(t, shutdown_error());
  for (ActorRecord* a : actors) {
    a->join();
    a->drop_arguments();
  }
  reap_actors();
  // Breaks the self-reference; the core is freed when the last handle or ObjectRef goes.
  self_.reset();
}

}  // namespace atl::runtime
