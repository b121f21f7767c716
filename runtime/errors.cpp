#include "atoll/errors.hpp"

#include <exception>

#include "atoll/serialization.hpp"
#include "runtime/error_info.hpp"

namespace atl {

std::string_view to_string(ErrorCategory category) noexcept {
  switch (category) {
    case ErrorCategory::failed:
      return "failed";
    case ErrorCategory::overloaded:
      return "overloaded";
    case ErrorCategory::disconnected:
      return "disconnected";
    case ErrorCategory::timed_out:
      return "timed_out";
    case ErrorCategory::cancelled:
      return "cancelled";
    case ErrorCategory::invalid_argument:
      return "invalid_argument";
    case ErrorCategory::unimplemented:
      return "unimplemented";
  }
  return "unknown";
}

Error::Error(ErrorCategory category, const std::string& message)
    : std::runtime_error(message), category_(category) {}

namespace {
std::string describe_task_error(const std::string& type, const std::string& message,
                                const std::string& task, const std::string& node) {
  std::string out = "task '" + task + "'";
  if (!node.empty()) out += " on node '" + node + "'";
  out += " raised " + type;
  if (!message.empty()) out += ": " + message;
  return out;
}
}  // namespace

TaskError::TaskError(std::string remote_type, std::string remote_message, std::string task_name,
                     std::string node, std::string traceback, std::string details)
    : Error(ErrorCategory::failed,
            describe_task_error(remote_type, remote_message, task_name, node)),
      remote_type_(std::move(remote_type)),
      remote_message_(std::move(remote_message)),
      task_name_(std::move(task_name)),
      node_(std::move(node)),
      traceback_(std::move(traceback)),
      details_(std::move(details)) {}

ForeignException::ForeignException(std::string type, std::string message, std::string traceback,
                                   std::string details)
    : Error(ErrorCategory::failed, message.empty() ? type : type + ": " + message),
      type_(std::move(type)),
      message_(std::move(message)),
      traceback_(std::move(traceback)),
      details_(std::move(details)) {}

TaskCancelledError::TaskCancelledError(const std::string& m) : Error(ErrorCategory::cancelled, m) {}
GetTimeoutError::GetTimeoutError(const std::string& m) : Error(ErrorCategory::timed_out, m) {}
ActorDiedError::ActorDiedError(const std::string& m) : Error(ErrorCategory::disconnected, m) {}
ObjectLostError::ObjectLostError(const std::string& m) : Error(ErrorCategory::failed, m) {}
InfeasibleError::InfeasibleError(const std::string& m)
    : Error(ErrorCategory::invalid_argument, m) {}
ObjectStoreFullError::ObjectStoreFullError(const std::string& m)
    : Error(ErrorCategory::overloaded, m) {}
SerializationError::SerializationError(const std::string& m)
    : Error(ErrorCategory::invalid_argument, m) {}
RuntimeShutdownError::RuntimeShutdownError(const std::string& m)
    : Error(ErrorCategory::disconnected, m) {}

}  // namespace atl

namespace atl::runtime {

ErrorPtr make_error(ErrorKind kind, std::string message) {
  auto e = std::make_shared<ErrorInfo>();
  e->kind = kind;
  e->message = std::move(message);
  return e;
}

ErrorPtr error_from_current_exception(std::string task_name, std::string node) {
  auto e = std::make_shared<ErrorInfo>();
  e->task_name = std::move(task_name);
  e->node = std::move(node);
  try {
    throw;
  } catch (const ForeignException& foreign) {
    e->remote_type = foreign.type();
    e->message = foreign.message();
    e->traceback = foreign.traceback();
    e->details = foreign.details();
  } catch (const TaskError& inner) {
    // A nested task's failure re-raised unchanged keeps its original type and message.
    e->remote_type = "atl::TaskError";
    e->message = inner.what();
  } catch (const std::exception& ex) {
    e->remote_type = detail::demangle(typeid(ex).name());
    e->message = ex.what();
  } catch (...) {
    e->remote_type = "unknown exception";
  }
  return e;
}

void raise(const ErrorInfo& e) {
  switch (e.kind) {
    case ErrorKind::task_error:
      throw TaskError(e.remote_type, e.message, e.task_name, e.node, e.traceback, e.details);
    case ErrorKind::cancelled:
      throw TaskCancelledError(e.message);
    case ErrorKind::timed_out:
      throw GetTimeoutError(e.message);
    case ErrorKind::actor_died:
      throw ActorDiedError(e.message);
    case ErrorKind::object_lost:
      throw ObjectLostError(e.message);
    case ErrorKind::infeasible:
      throw InfeasibleError(e.message);
    case ErrorKind::store_full:
      throw ObjectStoreFullError(e.message);
    case ErrorKind::serialization:
      throw SerializationError(e.message);
    case ErrorKind::invalid_argument:
      throw Error(ErrorCategory::invalid_argument, e.message);
    case ErrorKind::shutdown:
      throw RuntimeShutdownError(e.message);
    case ErrorKind::unimplemented:
      throw Error(ErrorCategory::unimplemented, e.message);
  }
  throw Error(ErrorCategory::failed, e.message);
}

}  // namespace atl::runtime
