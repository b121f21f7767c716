// Signature introspection for free functions and member functions.
#pragma once

#include <tuple>
#include <type_traits>

namespace atl::detail {

template <class F>
struct function_traits;

template <class R, class... P>
struct function_traits<R (*)(P...)> {
  using result = R;
  using params = std::tuple<P...>;
  static constexpr std::size_t arity = sizeof...(P);
};
template <class R, class... P>
struct function_traits<R (*)(P...) noexcept> : function_traits<R (*)(P...)> {};

template <class C, class R, class... P>
struct function_traits<R (C::*)(P...)> {
  using klass = C;
  using result = R;
  using params = std::tuple<P...>;
  static constexpr std::size_t arity = sizeof...(P);
};
template <class C, class R, class... P>
struct function_traits<R (C::*)(P...) const> : function_traits<R (C::*)(P...)> {};
template <class C, class R, class... P>
struct function_traits<R (C::*)(P...) noexcept> : function_traits<R (C::*)(P...)> {};
template <class C, class R, class... P>
struct function_traits<R (C::*)(P...) const noexcept> : function_traits<R (C::*)(P...)> {};

}  // namespace atl::detail
