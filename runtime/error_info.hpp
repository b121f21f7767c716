// A stored error: what the store keeps for an object that will never have a value, and what
// crosses the wire. `raise` turns it into the matching public exception.
#pragma once

#include <memory>
#include <string>

#include "atoll/errors.hpp"

namespace atl::runtime {

struct ErrorInfo {
  ErrorKind kind = ErrorKind::task_error;
  std::string message;      // for task_error: the remote exception's message
  std::string remote_type;  // task_error only
  std::string task_name;
  std::string node;
  std::string traceback;  // task_error from a language binding: the remote stack
  std::string details;    // task_error from a language binding: its own encoding of the exception
};

using ErrorPtr = std::shared_ptr<const ErrorInfo>;

ErrorPtr make_error(ErrorKind kind, std::string message);
// Describes the exception being handled (call inside a catch block).
ErrorPtr error_from_current_exception(std::string task_name, std::string node);

[[noreturn]] void raise(const ErrorInfo& error);

}  // namespace atl::runtime
