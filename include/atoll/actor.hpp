// atoll/actor.hpp — stateful remote objects.
//
// `rt.actor<Counter>(ctor_args...)` returns an ActorCreator; `.options({...})` sets resources,
// labels, a name and max_concurrency; `.remote()` creates the actor and returns an ActorHandle.
// `handle.call(&Counter::incr, 5)` submits a method call and returns an ObjectRef to its result.
// Calls run one at a time in submission order (with max_concurrency = 1, the default); ObjectRef
// arguments are resolved before the call runs, without reordering. Handles may be copied and
// passed to tasks and other actors. An unnamed actor ends once its last handle is gone (after its
// queued calls); a named one lives until `rt.kill` or shutdown and can be found by name.
//
// Errors: an unregistered class or method raises Error(invalid_argument) at the call site; a
// constructor that throws, or a kill, makes every pending and later call fail with
// ActorDiedError; an exception in a method fails only that call, with TaskError.
//
// Thread-safety: handles may be used from any thread.
//
// Example:
//   auto c = rt.actor<Counter>().options({.name = "counter"}).remote();
//   c.call(&Counter::incr, 5).get();                       // 5
//   auto same = rt.get_actor<Counter>("counter");          // std::optional<ActorHandle<Counter>>
#pragma once

#include <memory>
#include <vector>

#include "atoll/detail/function_traits.hpp"
#include "atoll/detail/invoke.hpp"
#include "atoll/object_ref.hpp"
#include "atoll/registry.hpp"

namespace atl {

namespace detail {
[[noreturn]] void throw_unregistered_method(const ActorClassEntry& cls);
[[noreturn]] void throw_creator_reused();
}  // namespace detail

template <class T>
class ActorHandle {
 public:
  using actor_type = T;

  ActorHandle() = default;
  explicit ActorHandle(std::shared_ptr<detail::ActorToken> token) noexcept
      : token_(std::move(token)) {}

  bool valid() const noexcept { return token_ != nullptr; }
  ActorId id() const noexcept { return token_ ? token_->id() : ActorId{}; }

  template <class M, class... A>
  auto call(M method, A&&... args) const {
    static_assert(std::is_member_function_pointer_v<M>, "call takes &Class::method");
    using traits = detail::function_traits<M>;
    static_assert(std::is_base_of_v<typename traits::klass, T>, "method of another class");
    using R = std::decay_t<typename traits::result>;
    using Passed = typename ParamsOf<typename traits::params>::passed;
    if (!token_) detail::throw_null_ref();
    const detail::MethodEntry* m = token_->actor_class().find_method(detail::MethodKey::of(method));
    if (m == nullptr) detail::throw_unregistered_method(token_->actor_class());
    auto encoded = detail::encode_args(Passed{}, std::forward<A>(args)...);
    return ObjectRef<R>(token_->core().submit_actor_call(*token_, *m, std::move(encoded)));
  }

  const std::shared_ptr<detail::ActorToken>& token() const noexcept { return token_; }

 private:
  std::shared_ptr<detail::ActorToken> token_;
};

template <class T>
class ActorCreator {
 public:
  ActorCreator(std::shared_ptr<detail::Core> core, const detail::ActorClassEntry& cls,
               std::vector<detail::ArgSpec> args)
      : core_(std::move(core)), cls_(&cls), args_(std::move(args)) {}

  ActorCreator& options(ActorOptions options) & {
    options_ = std::move(options);
    return *this;
  }
  ActorCreator&& options(ActorOptions options) && {
    options_ = std::move(options);
    return std::move(*this);
  }

  // Creates the actor. The constructor arguments are moved into the creation, so a second call
  // raises Error(invalid_argument) rather than creating an actor from empty arguments.
  ActorHandle<T> remote() {
    if (used_) detail::throw_creator_reused();
    used_ = true;
    return ActorHandle<T>(core_->create_actor(*cls_, std::move(args_), options_));
  }

 private:
  std::shared_ptr<detail::Core> core_;
  const detail::ActorClassEntry* cls_;
  std::vector<detail::ArgSpec> args_;
  ActorOptions options_;
  bool used_ = false;
};

}  // namespace atl
