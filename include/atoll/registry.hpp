// atoll/registry.hpp — naming the functions and actor classes a job can run remotely.
//
// There is no static-initializer magic: a module is a plain function that fills a Registry, given
// to atl::init. ATOLL_MODULE is sugar that also exports the function under a C name
// (`atoll_module_<name>`), which is what a worker process calls after loading a job's shared
// library. A function must be registered before `rt.task(fn)` can submit it; calling an
// unregistered one fails at submission with Error(invalid_argument).
//
// Language bindings (the Python package) register *dynamic* entries instead: a function or actor
// class whose invoker decodes its arguments itself rather than through a C++ signature. It takes
// any number of arguments of any kind (ObjectRef arguments submitted as resolve_ref are resolved
// before it runs, as for C++ functions), has no C++ address, and is found by name only. Dynamic
// entries may also be added to a running runtime: build them in a fresh Registry and pass it to
// RuntimeRef::extend, which merges it.
//
// Errors: registering an empty or duplicate name, the same function twice, two constructors of one
// arity, or one method twice raises Error(invalid_argument).
//
// Thread-safety: fill a Registry from one thread. Once a runtime owns it, lookups run on any
// thread and `merge` may run concurrently with them.
//
// Example:
//   int add(int a, int b) { return a + b; }
//   struct Counter { int n = 0; int incr(int by) { return n += by; } };
//   ATOLL_MODULE(demo, reg) {
//     reg.function("add", &add);
//     reg.actor<Counter>("Counter").method("incr", &Counter::incr);
//   }
//   auto rt = atl::init({.modules = {demo}});
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <typeindex>
#include <unordered_map>
#include <vector>

#include "atoll/detail/function_traits.hpp"
#include "atoll/detail/invoke.hpp"

namespace atl {

template <class T>
class ActorRegistration;
class DynamicActorRegistration;

// Invokers of dynamic entries. A constructor's result is the instance its methods receive as
// `self`; it is destroyed on the actor's own thread when the actor ends.
using DynamicFunction = std::function<detail::Payload(detail::CallFrame&)>;
using DynamicConstructor = std::function<std::shared_ptr<void>(detail::CallFrame&)>;
using DynamicMethod = std::function<detail::Payload(void* self, detail::CallFrame&)>;

template <class Tuple>
struct ParamsOf;
template <class... P>
struct ParamsOf<std::tuple<P...>> {
  using split = detail::SplitRuntime<P...>;
  using passed = typename split::rest;  // the parameters a caller passes
  using all = detail::Params<P...>;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(Registry&&) noexcept;
  Registry& operator=(Registry&&) noexcept;

  template <class F>
  Registry& function(std::string name, F* fn) {
    static_assert(std::is_function_v<F>, "register a function: reg.function(\"name\", &fn)");
    using Params = ParamsOf<typename detail::function_traits<F*>::params>;
    detail::FunctionEntry e;
    e.name = std::move(name);
    e.key = detail::function_key(fn);
    e.params = detail::arg_modes(typename Params::passed{});
    e.takes_runtime = Params::split::injected;
    e.invoke = detail::bind_function(fn);
    add_function(std::move(e));
    return *this;
  }

  template <class T>
  ActorRegistration<T> actor(std::string name);

  // A dynamic function (see the top of this file). `code`: on a cluster, the hash under which the
  // binding uploaded the function's code (atl::runtime's upload_code); nodes then run it in a
  // worker of the binding's language, which loads that code. Empty: the entry runs only where it
  // was registered (the embedded runtime, or a worker's own registry).
  Registry& dynamic_function(std::string name, DynamicFunction invoke, std::string code = {});
  // A dynamic actor class with one constructor taking any number of arguments. `tag` is the C++
  // type that get_actor compares (find_actor's `type`); several dynamic classes may share one, and
  // rt.actor<Tag>() does not find them. `code` as for dynamic_function.
  DynamicActorRegistration dynamic_actor(std::string name, std::type_index tag,
                                         DynamicConstructor construct, std::string code = {});

  // Moves every entry of `more` into this registry; safe while other threads look entries up.
  // Entries keep their addresses. Raises Error(invalid_argument), adding nothing, when a name, a
  // function or a C++ type of `more` is already registered here.
  void merge(Registry&& more);

  // Raise Error(invalid_argument) saying how to register the function when it is missing.
  const detail::FunctionEntry& require_function(std::uintptr_t key) const;
  const detail::FunctionEntry& require_function(std::string_view name) const;
  const detail::ActorClassEntry& require_actor_class(std::type_index type) const;
  const detail::ActorClassEntry& require_actor_class(std::string_view name) const;
  const detail::FunctionEntry* find_function(std::string_view name) const noexcept;
  const detail::FunctionEntry* find_function(std::uintptr_t key) const noexcept;
  const detail::ActorClassEntry* find_actor_class(std::type_index type) const noexcept;
  const detail::ActorClassEntry* find_actor_class(std::string_view name) const noexcept;
  std::size_t function_count() const noexcept;
  std::size_t actor_class_count() const noexcept;

 private:
  template <class T>
  friend class ActorRegistration;
  friend class DynamicActorRegistration;
  void add_function(detail::FunctionEntry entry);
  detail::ActorClassEntry& add_actor_class(std::string name, std::type_index type);
  static void add_constructor(detail::ActorClassEntry& cls, detail::ConstructorEntry ctor);
  static void add_method(detail::ActorClassEntry& cls, detail::MethodEntry method);

  struct Tables;
  std::unique_ptr<Tables> tables_;
};

template <class T>
class ActorRegistration {
 public:
  // Adds a constructor taking these parameter types; one per arity.
  template <class... A>
  ActorRegistration& constructor() {
    static_assert(std::is_constructible_v<T, A...>, "T has no such constructor");
    detail::ConstructorEntry c;
    c.params = detail::arg_modes(detail::Params<A...>{});
    c.construct = detail::bind_constructor<T>(detail::Params<A...>{});
    Registry::add_constructor(*cls_, std::move(c));
    return *this;
  }

  template <class M>
  ActorRegistration& method(std::string name, M method) {
    static_assert(std::is_member_function_pointer_v<M>,
                  "register a member function: .method(\"name\", &T::method)");
    using traits = detail::function_traits<M>;
    static_assert(std::is_base_of_v<typename traits::klass, T>, "method of another class");
    using P = ParamsOf<typename traits::params>;
    detail::MethodEntry m;
    m.name = std::move(name);
    m.key = detail::MethodKey::of(method);
    m.params = detail::arg_modes(typename P::passed{});
    m.takes_runtime = P::split::injected;
    m.invoke = detail::bind_method<T>(method, typename P::all{});
    Registry::add_method(*cls_, std::move(m));
    return *this;
  }

 private:
  friend class Registry;
  explicit ActorRegistration(detail::ActorClassEntry& cls) : cls_(&cls) {}
  detail::ActorClassEntry* cls_;
};

class DynamicActorRegistration {
 public:
  // Adds a method; raises Error(invalid_argument) for an empty or duplicate name.
  DynamicActorRegistration& method(std::string name, DynamicMethod invoke);
  // The class's entry, for create_actor; its address stays valid as long as the registry that
  // holds it (also after a merge).
  const detail::ActorClassEntry& entry() const noexcept { return *cls_; }

 private:
  friend class Registry;
  explicit DynamicActorRegistration(detail::ActorClassEntry& cls) : cls_(&cls) {}
  detail::ActorClassEntry* cls_;
};

template <class T>
ActorRegistration<T> Registry::actor(std::string name) {
  ActorRegistration<T> reg(add_actor_class(std::move(name), typeid(T)));
  if constexpr (std::is_default_constructible_v<T>) reg.template constructor<>();
  return reg;
}

using ModuleFn = void (*)(Registry&);

}  // namespace atl

// Defines module `name` with a registry parameter `reg`, and its C entry point for workers.
#define ATOLL_MODULE(name, reg)                               \
  void name(::atl::Registry& reg);                            \
  extern "C" void atoll_module_##name(::atl::Registry& reg) { \
    name(reg);                                                \
  }                                                           \
  void name(::atl::Registry& reg)
