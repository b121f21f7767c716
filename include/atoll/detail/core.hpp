// The boundary between the header-only API and the compiled runtime.
//
// The public templates (TaskCaller, ObjectRef, ActorHandle, RuntimeRef) encode arguments and call
// the virtual interface `Core`; the runtime implements it (embedded today, a cluster driver next).
// Nothing here is part of the public API.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

#include "atoll/ids.hpp"
#include "atoll/options.hpp"
#include "atoll/serialization.hpp"

namespace atl {
class Registry;
class RuntimeRef;
struct RuntimeStats;
template <class T>
class ObjectRef;
template <class T>
class ActorHandle;
}  // namespace atl

namespace atl::detail {

class Core;
struct FunctionEntry;
struct MethodEntry;
struct ActorClassEntry;

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
inline constexpr Deadline no_deadline = Deadline::max();

inline Deadline deadline_after(std::chrono::nanoseconds timeout) {
  auto now = Clock::now();
  return timeout >= Deadline::max() - now ? no_deadline : now + timeout;
}

// One process-local claim on an object. All copies of an ObjectRef share one token; when the last
// copy goes, the token releases the object in the store.
class RefToken {
 public:
  RefToken(std::shared_ptr<Core> core, ObjectId id, void* entry) noexcept
      : core_(std::move(core)), id_(id), entry_(entry) {}
  ~RefToken();
  RefToken(const RefToken&) = delete;
  RefToken& operator=(const RefToken&) = delete;

  Core& core() const noexcept { return *core_; }
  const std::shared_ptr<Core>& core_ptr() const noexcept { return core_; }
  const ObjectId& id() const noexcept { return id_; }
  void* entry() const noexcept { return entry_; }

 private:
  std::shared_ptr<Core> core_;
  ObjectId id_;
  void* entry_;
};

// One process-local claim on an actor; unnamed actors end when the last token is gone.
class ActorToken {
 public:
  ActorToken(std::shared_ptr<Core> core, ActorId id, void* record,
             const ActorClassEntry* actor_class) noexcept
      : core_(std::move(core)), id_(id), record_(record), class_(actor_class) {}
  ~ActorToken();
  ActorToken(const ActorToken&) = delete;
  ActorToken& operator=(const ActorToken&) = delete;

  Core& core() const noexcept { return *core_; }
  const std::shared_ptr<Core>& core_ptr() const noexcept { return core_; }
  const ActorId& id() const noexcept { return id_; }
  void* record() const noexcept { return record_; }
  const ActorClassEntry& actor_class() const noexcept { return *class_; }

 private:
  std::shared_ptr<Core> core_;
  ActorId id_;
  void* record_;
  const ActorClassEntry* class_;
};

// How a parameter receives its argument.
enum class ArgMode : std::uint8_t {
  value,         // a plain T: the value, after any ObjectRef argument is resolved
  object_ref,    // an ObjectRef<T>: the reference itself, unresolved
  actor_handle,  // an ActorHandle<T>
};

// One argument as submitted.
struct ArgSpec {
  enum class Kind : std::uint8_t { value, resolve_ref, pass_ref, actor };
  Kind kind = Kind::value;
  Payload value;                      // Kind::value
  std::shared_ptr<RefToken> ref;      // Kind::resolve_ref, Kind::pass_ref
  std::shared_ptr<ActorToken> actor;  // Kind::actor
};

// What an invoker sees: the submitted arguments and, for resolved ones, their values.
struct CallFrame {
  std::span<const ArgSpec> args;
  std::span<const Payload* const> values;  // values[i] is set for Kind::value and resolve_ref
  const std::shared_ptr<Core>& core;
};

// Identifies a member function pointer by its bytes (the same function has the same bytes).
struct MethodKey {
  alignas(void*) unsigned char bytes[2 * sizeof(void*)] = {};
  template <class M>
  static MethodKey of(M method) noexcept {
    static_assert(sizeof(M) <= sizeof(bytes), "unsupported member function pointer layout");
    MethodKey key;
    std::memcpy(key.bytes, &method, sizeof(M));
    return key;
  }
  friend bool operator==(const MethodKey& a, const MethodKey& b) noexcept {
    return std::memcmp(a.bytes, b.bytes, sizeof(bytes)) == 0;
  }
};

struct FunctionEntry {
  std::string name;
  std::uintptr_t key = 0;  // the C++ function's address, for rt.task(&fn)
  std::vector<ArgMode> params;
  bool takes_runtime = false;  // its first parameter is an injected RuntimeRef
  std::function<Payload(CallFrame&)> invoke;
  std::string code;  // a binding's (Python) code: its hash in a cluster's module store
};

struct MethodEntry {
  std::string name;
  MethodKey key;
  std::vector<ArgMode> params;
  bool takes_runtime = false;  // its first parameter is an injected RuntimeRef
  std::function<Payload(void* self, CallFrame&)> invoke;
};

struct ConstructorEntry {
  std::vector<ArgMode> params;
  bool variadic = false;  // a dynamic class's: any number of arguments, passed as submitted
  std::function<std::shared_ptr<void>(CallFrame&)> construct;
};

struct ActorClassEntry {
  std::string name;
  std::type_index type = typeid(void);
  std::vector<ConstructorEntry> constructors;  // at most one per arity
  std::vector<MethodEntry> methods;
  std::string code;  // as FunctionEntry::code

  const ConstructorEntry* find_constructor(std::size_t arity) const noexcept {
    for (const auto& c : constructors)
      if (c.variadic || c.params.size() == arity) return &c;
    return nullptr;
  }
  const MethodEntry* find_method(const MethodKey& key) const noexcept {
    for (const auto& m : methods)
      if (m.key == key) return &m;
    return nullptr;
  }
  const MethodEntry* find_method(std::string_view name) const noexcept {
    for (const auto& m : methods)
      if (m.name == name) return &m;
    return nullptr;
  }
};

template <class F>
std::uintptr_t function_key(F* fn) noexcept {
  return reinterpret_cast<std::uintptr_t>(fn);
}

// The runtime behind every handle. All methods are thread-safe.
class Core : public std::enable_shared_from_this<Core> {
 public:
  virtual ~Core() = default;

  // Throws Error(invalid_argument) naming the function when it was not registered.
  virtual const FunctionEntry& function_by_key(std::uintptr_t key) const = 0;
  virtual const FunctionEntry& function_by_name(std::string_view name) const = 0;
  virtual const ActorClassEntry& actor_class(std::type_index type) const = 0;

  virtual std::shared_ptr<RefToken> submit_task(const FunctionEntry& fn, std::vector<ArgSpec> args,
                                                const TaskOptions* options) = 0;
  virtual std::shared_ptr<RefToken> put(Payload value) = 0;
  // Blocks until the object is ready; the Payload lives as long as `ref`. Throws the stored error.
  virtual const Payload& get(const RefToken& ref, Deadline deadline) = 0;
  // ready[i] tells whether refs[i] is ready; returns once `num_ready` are, or at the deadline.
  virtual void wait(std::span<const RefToken* const> refs, std::size_t num_ready, Deadline deadline,
                    std::vector<bool>& ready) = 0;
  virtual bool cancel(const RefToken& ref) = 0;

  virtual std::shared_ptr<ActorToken> create_actor(const ActorClassEntry& cls,
                                                   std::vector<ArgSpec> args,
                                                   const ActorOptions& options) = 0;
  // nullptr when no live actor has that name; Error(invalid_argument) when its class differs.
  // typeid(void) accepts any class (the token says which).
  virtual std::shared_ptr<ActorToken> find_actor(std::string_view name, std::type_index type) = 0;
  virtual std::shared_ptr<RefToken> submit_actor_call(const ActorToken& actor,
                                                      const MethodEntry& method,
                                                      std::vector<ArgSpec> args) = 0;
  virtual void kill_actor(const ActorToken& actor) = 0;

  // Merges run-time registrations (RuntimeRef::extend). The default refuses: a runtime that
  // supports it overrides this.
  virtual void extend_registry(Registry&& more);

  virtual MutableBuffer create_buffer(std::size_t size) = 0;
  virtual RuntimeStats stats() const = 0;
  virtual void shutdown() = 0;

  // Called by the tokens' destructors.
  virtual void release_object(void* entry) noexcept = 0;
  virtual void release_actor(void* record) noexcept = 0;

  // Blocks until every ref is resolved, one has failed, or the deadline passes; never throws for
  // the objects' errors (`get` raises them). `Runtime::get` of many refs calls it before reading
  // them in order, so a batch costs the caller one wake-up rather than one per object. (Last in
  // the table, after the entries job modules built before it call.)
  virtual void await_all(std::span<const RefToken* const> refs, Deadline deadline) = 0;
  // Throws Error(invalid_argument) naming the class when none has that name.
  virtual const ActorClassEntry& actor_class_by_name(std::string_view name) const = 0;
  // The Python function `qualname` of module `module`, as a cluster's Python workers import it
  // (RuntimeRef::python_task). The default raises Error(unimplemented): only a cluster has
  // Python workers. (Last in the table, for job modules built before it.)
  virtual const FunctionEntry& python_function(std::string_view module, std::string_view qualname);
};

inline RefToken::~RefToken() {
  core_->release_object(entry_);
}
inline ActorToken::~ActorToken() {
  core_->release_actor(record_);
}

template <class T>
struct is_object_ref : std::false_type {};
template <class T>
struct is_object_ref<ObjectRef<T>> : std::true_type {};
template <class T>
struct is_actor_handle : std::false_type {};
template <class T>
struct is_actor_handle<ActorHandle<T>> : std::true_type {};

}  // namespace atl::detail
