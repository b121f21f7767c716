// atoll/errors.hpp — the exceptions atoll raises at its API, and what each tells the caller to do.
//
// Every atoll exception derives from atl::Error and carries an ErrorCategory, the same small set
// of categories as KJ and absl: it says what to do next (retry later, fix the request, give up),
// independent of which component raised it. Runtime facts the user sees (a task threw, an actor
// died, an object was lost) have their own types so that `catch` can be precise.
//
// Thread-safety: exception objects are immutable after construction.
//
// Example:
//   try { ref.get(); }
//   catch (const atl::TaskError& e) { std::cerr << e.remote_type() << ": " << e.remote_message(); }
//   catch (const atl::Error& e) { if (e.category() == atl::ErrorCategory::timed_out) retry(); }
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace atl {

// What the caller should do next.
enum class ErrorCategory : std::uint8_t {
  failed,            // the operation failed for good; retrying the same thing will fail again
  overloaded,        // a resource is exhausted; retry later or with less
  disconnected,      // a peer (node, actor, head) went away; re-create or reconnect
  timed_out,         // a deadline passed; the operation may still complete later
  cancelled,         // someone cancelled it
  invalid_argument,  // the request is wrong; fix it
  unimplemented,     // this build or mode does not offer the operation
};

std::string_view to_string(ErrorCategory category) noexcept;

// The kind of a stored error: the wire-stable tag that selects the exception type at `get`.
enum class ErrorKind : std::uint8_t {
  task_error,
  cancelled,
  timed_out,
  actor_died,
  object_lost,
  infeasible,
  store_full,
  serialization,
  invalid_argument,
  shutdown,
  unimplemented,
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCategory category, const std::string& message);
  ErrorCategory category() const noexcept { return category_; }

 private:
  ErrorCategory category_;
};

// A task or actor method threw. Keeps the remote exception's type and message, the task's name
// and the node it ran on; for an exception raised in another language (see ForeignException),
// also its traceback and the binding's own encoding of it. Category: failed.
class TaskError : public Error {
 public:
  TaskError(std::string remote_type, std::string remote_message, std::string task_name,
            std::string node, std::string traceback = {}, std::string details = {});
  const std::string& remote_type() const noexcept { return remote_type_; }
  const std::string& remote_message() const noexcept { return remote_message_; }
  const std::string& task_name() const noexcept { return task_name_; }
  const std::string& node() const noexcept { return node_; }
  // The remote stack as text, most recent call last; empty for C++ exceptions.
  const std::string& traceback() const noexcept { return traceback_; }
  // Opaque bytes from the binding that raised it (Python: the pickled exception); may be empty.
  const std::string& details() const noexcept { return details_; }

 private:
  std::string remote_type_, remote_message_, task_name_, node_, traceback_, details_;
};

// What a language binding's invoker throws to report an exception raised in its language (a
// Python task raising ValueError): the runtime stores the type name, message, traceback and
// details as given, and the caller's `get` raises a TaskError carrying all four. C++ code has no
// reason to throw it. Category: failed.
class ForeignException : public Error {
 public:
  ForeignException(std::string type, std::string message, std::string traceback,
                   std::string details);
  const std::string& type() const noexcept { return type_; }
  const std::string& message() const noexcept { return message_; }
  const std::string& traceback() const noexcept { return traceback_; }
  const std::string& details() const noexcept { return details_; }

 private:
  std::string type_, message_, traceback_, details_;
};

// The task or call was cancelled before it produced a value. Category: cancelled.
class TaskCancelledError : public Error {
 public:
  explicit TaskCancelledError(const std::string& message);
};

// `get` or `wait` ran out of time; the object may still become ready. Category: timed_out.
class GetTimeoutError : public Error {
 public:
  explicit GetTimeoutError(const std::string& message);
};

// The actor was killed, failed to construct, or its node died. Category: disconnected.
class ActorDiedError : public Error {
 public:
  explicit ActorDiedError(const std::string& message);
};

// The object's value is gone and cannot be rebuilt. Category: failed.
class ObjectLostError : public Error {
 public:
  explicit ObjectLostError(const std::string& message);
};

// No node in the cluster can ever satisfy the request's resources or labels (after a bounded wait
// for one to join). Category: invalid_argument.
class InfeasibleError : public Error {
 public:
  explicit InfeasibleError(const std::string& message);
};

// The object store has no room for a value. Category: overloaded.
class ObjectStoreFullError : public Error {
 public:
  explicit ObjectStoreFullError(const std::string& message);
};

// A value could not be encoded or decoded as the requested type. Category: invalid_argument.
class SerializationError : public Error {
 public:
  explicit SerializationError(const std::string& message);
};

// The runtime was shut down while the operation was in flight. Category: disconnected.
class RuntimeShutdownError : public Error {
 public:
  explicit RuntimeShutdownError(const std::string& message);
};

}  // namespace atl
