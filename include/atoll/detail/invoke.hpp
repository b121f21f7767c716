// Encoding arguments at the call site and decoding them in the invoker.
//
// Both sides are generated from the callee's C++ signature, so a parameter declared `T` receives a
// value (ObjectRef arguments resolved first) and one declared `ObjectRef<T>` receives the
// reference. A leading `atl::RuntimeRef` parameter is injected by the runtime, not passed.
#pragma once

#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "atoll/detail/core.hpp"

namespace atl::detail {

template <class... P>
struct Params {};

template <class P>
inline constexpr bool is_runtime_param = std::is_same_v<std::decay_t<P>, RuntimeRef>;

template <class... P>
struct SplitRuntime {
  static constexpr bool injected = false;
  using rest = Params<P...>;
};
template <class First, class... P>
requires is_runtime_param<First>
struct SplitRuntime<First, P...> {
  static constexpr bool injected = true;
  using rest = Params<P...>;
};

template <class P>
constexpr ArgMode arg_mode_of() {
  using D = std::decay_t<P>;
  if constexpr (is_object_ref<D>::value)
    return ArgMode::object_ref;
  else if constexpr (is_actor_handle<D>::value)
    return ArgMode::actor_handle;
  else
    return ArgMode::value;
}

template <class... P>
std::vector<ArgMode> arg_modes(Params<P...>) {
  return {arg_mode_of<P>()...};
}

[[noreturn]] void throw_arity_error(std::size_t expected, std::size_t got);
[[noreturn]] void throw_arg_kind_error(std::size_t index, const char* expected);
[[noreturn]] void throw_null_handle_error(std::size_t index);

template <class P>
std::decay_t<P> receive_arg(const CallFrame& f, std::size_t i) {
  using D = std::decay_t<P>;
  const ArgSpec& a = f.args[i];
  if constexpr (is_object_ref<D>::value) {
    if (a.kind != ArgSpec::Kind::pass_ref) throw_arg_kind_error(i, "an ObjectRef");
    return D(a.ref);
  } else if constexpr (is_actor_handle<D>::value) {
    if (a.kind != ArgSpec::Kind::actor) throw_arg_kind_error(i, "an ActorHandle");
    return D(a.actor);
  } else {
    if (f.values[i] == nullptr) throw_arg_kind_error(i, "a value");
    return deserialize<D>(*f.values[i]);
  }
}

// Moves decoded values into by-value and rvalue parameters; lvalue-reference parameters bind.
template <class P, class V>
decltype(auto) pass_param(V& v) {
  if constexpr (std::is_lvalue_reference_v<P>)
    return (v);
  else
    return std::move(v);
}

template <class Call, class... P>
Payload invoke_params(Params<P...>, Call&& call, const CallFrame& f) {
  if (f.args.size() != sizeof...(P)) throw_arity_error(sizeof...(P), f.args.size());
  return [&]<std::size_t... I>(std::index_sequence<I...>)->Payload {
    std::tuple<std::decay_t<P>...> values{receive_arg<P>(f, I)...};
    using R = decltype(call(pass_param<P>(std::get<I>(values))...));
    if constexpr (std::is_void_v<R>) {
      call(pass_param<P>(std::get<I>(values))...);
      return serialize_nil();
    } else {
      return serialize<std::decay_t<R>>(call(pass_param<P>(std::get<I>(values))...));
    }
  }
  (std::index_sequence_for<P...>{});
  (void)f;
}

template <class First, class... P>
std::decay_t<First> make_runtime_param(const std::shared_ptr<Core>& core) {
  return std::decay_t<First>(core);
}

template <class R, class... P>
std::function<Payload(CallFrame&)> bind_function(R (*fn)(P...)) {
  using Split = SplitRuntime<P...>;
  return [fn](CallFrame& f) -> Payload {
    return invoke_params(
        typename Split::rest{},
        [&](auto&&... a) -> decltype(auto) {
          if constexpr (Split::injected)
            return fn(make_runtime_param<P...>(f.core), std::forward<decltype(a)>(a)...);
          else
            return fn(std::forward<decltype(a)>(a)...);
        },
        f);
  };
}

template <class C, class M, class... P>
std::function<Payload(void*, CallFrame&)> bind_method(M method, Params<P...>) {
  using Split = SplitRuntime<P...>;
  return [method](void* self, CallFrame& f) -> Payload {
    C* obj = static_cast<C*>(self);
    return invoke_params(
        typename Split::rest{},
        [&](auto&&... a) -> decltype(auto) {
          if constexpr (Split::injected)
            return (obj->*method)(make_runtime_param<P...>(f.core),
                                  std::forward<decltype(a)>(a)...);
          else
            return (obj->*method)(std::forward<decltype(a)>(a)...);
        },
        f);
  };
}

template <class C, class... P>
std::function<std::shared_ptr<void>(CallFrame&)> bind_constructor(Params<P...>) {
  return [](CallFrame& f) -> std::shared_ptr<void> {
    if (f.args.size() != sizeof...(P)) throw_arity_error(sizeof...(P), f.args.size());
    return [&]<std::size_t... I>(std::index_sequence<I...>)->std::shared_ptr<void> {
      std::tuple<std::decay_t<P>...> values{receive_arg<P>(f, I)...};
      return std::make_shared<C>(pass_param<P>(std::get<I>(values))...);
    }
    (std::index_sequence_for<P...>{});
  };
}

// ---- call site ----

template <class P, class A>
ArgSpec encode_arg(std::size_t index, A&& a) {
  using D = std::decay_t<P>;
  using AD = std::decay_t<A>;
  ArgSpec s;
  if constexpr (is_object_ref<AD>::value) {
    if constexpr (is_object_ref<D>::value) {
      static_assert(std::is_same_v<typename AD::value_type, typename D::value_type>,
                    "ObjectRef argument does not match the ObjectRef parameter's type");
      s.kind = ArgSpec::Kind::pass_ref;
    } else {
      static_assert(std::is_convertible_v<typename AD::value_type, D>,
                    "ObjectRef<T> argument: T does not convert to the parameter's type");
      s.kind = ArgSpec::Kind::resolve_ref;
    }
    s.ref = a.token();
    if (!s.ref) throw_null_handle_error(index);
  } else if constexpr (is_actor_handle<AD>::value) {
    static_assert(std::is_same_v<AD, D>, "ActorHandle argument needs an ActorHandle parameter");
    s.kind = ArgSpec::Kind::actor;
    s.actor = a.token();
    if (!s.actor) throw_null_handle_error(index);
  } else {
    static_assert(!is_object_ref<D>::value && !is_actor_handle<D>::value,
                  "this parameter takes an ObjectRef or ActorHandle: pass one");
    static_assert(std::is_constructible_v<D, A&&>,
                  "argument does not convert to the parameter's type");
    if constexpr (std::is_same_v<AD, D>)
      s.value = serialize<D>(a);
    else
      s.value = serialize<D>(D(std::forward<A>(a)));
  }
  return s;
}

// For a call by name, with no signature to check against: values are sent as their own type, an
// ObjectRef<T> is resolved before the call, an ActorHandle is passed.
template <class A>
ArgSpec encode_untyped_arg(std::size_t index, A&& a) {
  using AD = std::decay_t<A>;
  ArgSpec s;
  if constexpr (is_object_ref<AD>::value) {
    s.kind = ArgSpec::Kind::resolve_ref;
    s.ref = a.token();
    if (!s.ref) throw_null_handle_error(index);
  } else if constexpr (is_actor_handle<AD>::value) {
    s.kind = ArgSpec::Kind::actor;
    s.actor = a.token();
    if (!s.actor) throw_null_handle_error(index);
  } else {
    s.value = serialize<AD>(a);
  }
  return s;
}

template <class... P, class... A>
std::vector<ArgSpec> encode_args(Params<P...>, A&&... a) {
  static_assert(sizeof...(P) == sizeof...(A), "wrong number of arguments for this function");
  std::vector<ArgSpec> out;
  out.reserve(sizeof...(A));
  std::size_t index = 0;
  (out.push_back(encode_arg<P>(index++, std::forward<A>(a))), ...);
  return out;
}

}  // namespace atl::detail
