// atoll/task.hpp — submitting a registered function as a remote task.
//
// `rt.task(fn)` returns a TaskCaller for a function registered in one of the runtime's modules;
// `.options({...})` sets resources, labels, name and retries; `.remote(args...)` submits and
// returns at once with an ObjectRef to the result. Arguments are checked against the function's
// signature at compile time: an ObjectRef<T> may stand for a parameter of type T (the task then
// waits for it) or of type ObjectRef<T> (passed as is); an ActorHandle for an ActorHandle.
//
// Errors: an unregistered function raises Error(invalid_argument) from `rt.task`; invalid options
// raise Error(invalid_argument) from `remote`; a shut-down runtime raises RuntimeShutdownError.
// Everything that happens after submission arrives through the ObjectRef.
//
// Thread-safety: a TaskCaller may be used from any thread; `remote` may run concurrently.
//
// Example:
//   auto r = rt.task(add).options({.name = "sum", .num_cpus = 0.5}).remote(1, 2);
//
// `rt.task<R>("name")` returns a NamedTaskCaller instead: a function found by its registered name,
// without a signature (below).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "atoll/detail/function_traits.hpp"
#include "atoll/detail/invoke.hpp"
#include "atoll/object_ref.hpp"
#include "atoll/registry.hpp"

namespace atl {

namespace detail {

// What both callers share: the runtime, the function's entry, and options for one call site.
template <class Derived>
class TaskSubmitter {
 public:
  TaskSubmitter(std::shared_ptr<Core> core, const FunctionEntry& entry)
      : core_(std::move(core)), entry_(&entry) {}

  Derived& options(TaskOptions options) & {
    options_ = std::move(options);
    return static_cast<Derived&>(*this);
  }
  Derived&& options(TaskOptions options) && {
    options_ = std::move(options);
    return static_cast<Derived&&>(*this);
  }

  const std::string& name() const noexcept { return entry_->name; }

 protected:
  std::shared_ptr<RefToken> submit(std::vector<ArgSpec> args) const {
    return core_->submit_task(*entry_, std::move(args), options_ ? &*options_ : nullptr);
  }

 private:
  std::shared_ptr<Core> core_;
  const FunctionEntry* entry_;
  std::optional<TaskOptions> options_;
};

}  // namespace detail

template <class Fn>
class TaskCaller : public detail::TaskSubmitter<TaskCaller<Fn>> {
  using traits = detail::function_traits<Fn>;
  using Passed = typename ParamsOf<typename traits::params>::passed;

 public:
  using result_type = std::decay_t<typename traits::result>;
  using detail::TaskSubmitter<TaskCaller<Fn>>::TaskSubmitter;

  template <class... A>
  ObjectRef<result_type> remote(A&&... args) const {
    return ObjectRef<result_type>(
        this->submit(detail::encode_args(Passed{}, std::forward<A>(args)...)));
  }
};

// A function called by its registered name: one registered by another language (a Python
// function, in a Python process), or in a module this code does not link. There is no signature
// to check against: each argument is sent as its own type (an ObjectRef<T> is resolved before the
// call, so the function receives the value), and the result is read as R. A mismatch the target
// cannot decode fails the task with SerializationError; reading the result as the wrong R raises
// SerializationError from `get`.
//
//   int n = rt.task<int>("scripts.count_words").remote(std::string("a b c")).get();
template <class R>
class NamedTaskCaller : public detail::TaskSubmitter<NamedTaskCaller<R>> {
 public:
  using detail::TaskSubmitter<NamedTaskCaller<R>>::TaskSubmitter;

  template <class... A>
  ObjectRef<R> remote(A&&... args) const {
    std::vector<detail::ArgSpec> encoded;
    encoded.reserve(sizeof...(A));
    std::size_t index = 0;
    (encoded.push_back(detail::encode_untyped_arg(index++, std::forward<A>(args))), ...);
    return ObjectRef<R>(this->submit(std::move(encoded)));
  }
};

}  // namespace atl
