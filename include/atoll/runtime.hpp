// atoll/runtime.hpp — the runtime: starting it, and everything you do with it.
//
// `atl::init(options)` returns a `Runtime`, which owns every component (scheduler, object store,
// nodes, workers); destroying it shuts them down. With no address it starts the embedded runtime:
// the same head and node components, wired inside this process. Several Runtimes may live in one
// process; they share nothing.
//
// `RuntimeRef` is a copyable handle to a runtime, with the whole API but no ownership: a task or
// actor method whose first parameter is `atl::RuntimeRef` receives the runtime it runs in, to
// submit nested work. A worker blocked in `get` lends its CPU back to the scheduler, so nested
// fan-outs deeper than the number of CPUs do not deadlock.
//
// With an address, init connects to a cluster's head as a driver, uploads the job's module
// (content-addressed) and runs tasks on the cluster's nodes in worker processes. Actors, Buffers
// and ObjectRef parameters do not cross processes yet: in cluster mode they raise
// Error(unimplemented).
//
// Errors: init raises Error(invalid_argument) for bad options or duplicate registrations, and
// Error(disconnected) when the head cannot be reached or refuses the token. After shutdown,
// submissions raise RuntimeShutdownError and pending objects fail with it.
//
// Thread-safety: every method may be called from any thread.
//
// Example:
//   auto rt = atl::init({.modules = {demo}});
//   auto refs = std::vector{rt.task(add).remote(1, 2), rt.task(add).remote(3, 4)};
//   auto [ready, rest] = rt.wait(refs, 1, std::chrono::seconds(1));
//   std::vector<int> all = rt.get(refs);                 // {3, 7}
//   auto big = rt.put(atl::Buffer::copy_of(data));     // shared, never copied on get
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "atoll/actor.hpp"
#include "atoll/object_ref.hpp"
#include "atoll/options.hpp"
#include "atoll/registry.hpp"
#include "atoll/task.hpp"

namespace atl {

// The shared library holding a job's module, shipped to the nodes that run its tasks.
struct JobModule {
  std::string library;  // path of the .so (built from the same ATOLL_MODULE the driver registers)
  std::string name;     // the module's name in ATOLL_MODULE(name, reg)
};

struct InitOptions {
  std::string address;             // empty: embedded runtime; "HOST:PORT": a cluster's head
  std::string token;               // cluster token; empty: $ATOLL_TOKEN
  std::vector<ModuleFn> modules;   // registration functions (see ATOLL_MODULE)
  std::vector<NodeOptions> nodes;  // embedded nodes; empty: one node sized like this machine
  // How long a task or actor may wait for a node that can satisfy it before InfeasibleError.
  std::chrono::milliseconds infeasible_timeout{5000};
  std::uint64_t object_store_memory = 0;  // bytes; 0: half of physical memory
  // Cluster only: the code its C++ tasks run. Required with `modules`; a driver without either
  // runs only code a binding registers (Python definitions, uploaded on first use).
  JobModule job_module;
  // Cluster only: the driver's data plane, which serves large values it passes to tasks and
  // receives large results. `data_host` is where it listens (an IP address or a host name;
  // "0.0.0.0": every interface); `data_advertise_host` is the host nodes dial (empty:
  // data_host; unspecified, as with 0.0.0.0 alone: the address the head sees this driver at).
  // Nodes that cannot dial it get its values through the head's relay. init raises
  // Error(invalid_argument) for a host that is not an IP address or host name.
  std::string data_host = "127.0.0.1";
  std::string data_advertise_host;
};

struct RuntimeStats {
  std::uint64_t objects = 0;       // objects in the store (ready or pending)
  std::uint64_t object_bytes = 0;  // bytes held by ready objects
  std::uint64_t object_store_capacity = 0;
  std::uint64_t tasks_submitted = 0;
  std::uint64_t tasks_finished = 0;  // succeeded, failed or cancelled
  std::uint64_t tasks_queued = 0;    // ready to run, waiting for resources
  std::uint64_t tasks_waiting_for_dependencies = 0;
  std::uint64_t actors_alive = 0;
  std::uint64_t worker_threads = 0;
  std::uint64_t nodes = 0;
};

class RuntimeRef {
 public:
  explicit RuntimeRef(std::shared_ptr<detail::Core> core) noexcept : core_(std::move(core)) {}

  template <class F>
  TaskCaller<F*> task(F* fn) const {
    static_assert(std::is_function_v<F>, "rt.task takes a registered function");
    return TaskCaller<F*>(core_, core_->function_by_key(detail::function_key(fn)));
  }
  // The function registered as `name`, in whatever language (see NamedTaskCaller); raises
  // Error(invalid_argument) when none is.
  template <class R>
  NamedTaskCaller<R> task(std::string_view name) const {
    return NamedTaskCaller<R>(core_, core_->function_by_name(name));
  }

  // On a cluster: the Python function `qualname` (e.g. "add", "Model.predict") of module `module`
  // (e.g. "mypkg.ops"), which the nodes' Python workers import (it must be importable there).
  // Called like task<R>("name"): plain values in, a plain value (msgpack) out. Raises
  // Error(invalid_argument) for a name that is not a Python identifier path, and
  // Error(unimplemented) on the embedded runtime. A module that does not import, or a function
  // that raises, fails the task with TaskError.
  //   int n = rt.python_task<int>("mypkg.ops", "triple").remote(5).get();
  template <class R>
  NamedTaskCaller<R> python_task(std::string_view module, std::string_view qualname) const {
    return NamedTaskCaller<R>(core_, core_->python_function(module, qualname));
  }

  template <class T, class... A>
  ActorCreator<T> actor(A&&... ctor_args) const {
    const detail::ActorClassEntry& cls = core_->actor_class(typeid(T));
    std::vector<detail::ArgSpec> args;
    args.reserve(sizeof...(A));
    std::size_t index = 0;
    (args.push_back(detail::encode_arg<std::decay_t<A>>(index++, std::forward<A>(ctor_args))), ...);
    return ActorCreator<T>(core_, cls, std::move(args));
  }

  template <class T>
  ObjectRef<std::decay_t<T>> put(T&& value) const {
    return ObjectRef<std::decay_t<T>>(core_->put(detail::serialize(value)));
  }
  ObjectRef<Buffer> put(MutableBuffer&& buffer) const { return put(std::move(buffer).freeze()); }

  template <class T>
  T get(const ObjectRef<T>& ref) const {
    return ref.get();
  }
  template <class T>
  T get(const ObjectRef<T>& ref, std::chrono::nanoseconds timeout) const {
    return ref.get(timeout);
  }
  // Values in the order of `refs`; the timeout covers all of them.
  template <class T>
  std::vector<T> get(const std::vector<ObjectRef<T>>& refs,
                     std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) const {
    detail::Deadline deadline = detail::deadline_after(timeout);
    if (refs.size() > 1) {
      std::vector<const detail::RefToken*> tokens;
      tokens.reserve(refs.size());
      for (const auto& r : refs) {
        if (!r.valid()) detail::throw_null_ref();
        tokens.push_back(r.token().get());
      }
      core_->await_all(tokens, deadline);
    }
    std::vector<T> out;
    out.reserve(refs.size());
    for (const auto& r : refs) {
      if (!r.valid()) detail::throw_null_ref();
      out.push_back(detail::deserialize<T>(core_->get(*r.token(), deadline)));
    }
    return out;
  }

  // Returns once `num_ready` of `refs` are ready (value or error) or the timeout passes.
  // Raises Error(invalid_argument) when num_ready > refs.size().
  template <class T>
  WaitResult<T> wait(const std::vector<ObjectRef<T>>& refs, std::size_t num_ready,
                     std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) const {
    std::vector<const detail::RefToken*> tokens;
    tokens.reserve(refs.size());
    for (const auto& r : refs) {
      if (!r.valid()) detail::throw_null_ref();
      tokens.push_back(r.token().get());
    }
    std::vector<bool> ready;
    core_->wait(tokens, num_ready, detail::deadline_after(timeout), ready);
    WaitResult<T> result;
    for (std::size_t i = 0; i < refs.size(); ++i)
      (ready[i] ? result.ready : result.not_ready).push_back(refs[i]);
    return result;
  }
  template <class T>
  WaitResult<T> wait(const std::vector<ObjectRef<T>>& refs) const {
    return wait(refs, refs.size());
  }

  // Cancels the task behind `ref` if it has not finished: a queued task never runs, a running
  // one's result is discarded. `get` then raises TaskCancelledError. Returns false when the object
  // already had a value or error.
  template <class T>
  bool cancel(const ObjectRef<T>& ref) const {
    if (!ref.valid()) detail::throw_null_ref();
    return core_->cancel(*ref.token());
  }

  // Ends the actor now: queued calls fail with ActorDiedError, the running one finishes but its
  // caller gets ActorDiedError, later calls fail at once, and its name is free again.
  template <class T>
  void kill(const ActorHandle<T>& actor) const {
    if (!actor.valid()) detail::throw_null_ref();
    core_->kill_actor(*actor.token());
  }

  // The live actor with this name; std::nullopt when there is none. Raises
  // Error(invalid_argument) when it exists but is not a T.
  template <class T>
  std::optional<ActorHandle<T>> get_actor(std::string_view name) const {
    auto token = core_->find_actor(name, typeid(T));
    if (!token) return std::nullopt;
    return ActorHandle<T>(std::move(token));
  }

  // Adds the entries `module` registers to this running runtime (what a language binding does
  // when it first submits a function or class defined at run time). Safe while tasks run.
  // Raises Error(invalid_argument) when a name is taken (nothing is added), and
  // Error(unimplemented) on a runtime that cannot take run-time registrations (a cluster driver,
  // for now).
  void extend(const std::function<void(Registry&)>& module) const;

  // A writable buffer from the object store's pool, for building large values without copies.
  MutableBuffer create_buffer(std::size_t size) const { return core_->create_buffer(size); }

  RuntimeStats stats() const;
  const std::shared_ptr<detail::Core>& core() const noexcept { return core_; }

 protected:
  std::shared_ptr<detail::Core> core_;
};

class Runtime : public RuntimeRef {
 public:
  explicit Runtime(std::shared_ptr<detail::Core> core) noexcept : RuntimeRef(std::move(core)) {}
  ~Runtime();
  Runtime(Runtime&&) noexcept = default;
  Runtime& operator=(Runtime&& other) noexcept;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Stops workers and fails every pending object with RuntimeShutdownError. Idempotent; the
  // destructor calls it. ObjectRefs already holding values stay readable.
  void shutdown();
};

Runtime init(InitOptions options = {});

}  // namespace atl
