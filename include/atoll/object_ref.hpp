// atoll/object_ref.hpp — a future for a value in the object store.
//
// `ObjectRef<T>` names an immutable value that a task will produce (or that `put` stored). Copies
// name the same object; the object is freed once no ObjectRef (and no pending task) needs it.
// Passing an ObjectRef to a task whose parameter is a plain `T` makes the task wait for the value
// and receive it; a parameter declared `ObjectRef<T>` receives the reference itself.
//
// Errors (from get): the task's exception as atl::TaskError, TaskCancelledError,
// GetTimeoutError (the object may still arrive), ActorDiedError, InfeasibleError,
// ObjectLostError, SerializationError when the value does not decode as T, and
// Error(invalid_argument) for a default-constructed (null) ObjectRef.
//
// Thread-safety: an ObjectRef may be copied and read from any thread.
//
// Example:
//   atl::ObjectRef<int> a = rt.task(add).remote(1, 2);
//   int v = a.get();                                   // 3
//   int w = a.get(std::chrono::milliseconds(100));     // or GetTimeoutError
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "atoll/detail/core.hpp"

namespace atl {

namespace detail {
[[noreturn]] void throw_null_ref();
}

template <class T>
class ObjectRef {
 public:
  using value_type = T;

  ObjectRef() = default;
  explicit ObjectRef(std::shared_ptr<detail::RefToken> token) noexcept : token_(std::move(token)) {}

  bool valid() const noexcept { return token_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }
  ObjectId id() const noexcept { return token_ ? token_->id() : ObjectId{}; }

  // Blocks until the value exists and returns it (a Buffer is shared, not copied).
  T get() const { return get_until(detail::no_deadline); }
  T get(std::chrono::nanoseconds timeout) const {
    return get_until(detail::deadline_after(timeout));
  }

  const std::shared_ptr<detail::RefToken>& token() const noexcept { return token_; }

  friend bool operator==(const ObjectRef& a, const ObjectRef& b) noexcept {
    return a.id() == b.id();
  }

 private:
  T get_until(detail::Deadline deadline) const {
    if (!token_) detail::throw_null_ref();
    const detail::Payload& p = token_->core().get(*token_, deadline);
    if constexpr (!std::is_void_v<T>)
      return detail::deserialize<T>(p);
    else
      (void)p;
  }

  std::shared_ptr<detail::RefToken> token_;
};

// The outcome of RuntimeRef::wait: both lists keep the order of the input.
template <class T>
struct WaitResult {
  std::vector<ObjectRef<T>> ready;
  std::vector<ObjectRef<T>> not_ready;
};

}  // namespace atl
