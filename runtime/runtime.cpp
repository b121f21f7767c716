#include "atoll/runtime.hpp"

namespace atl {

RuntimeStats RuntimeRef::stats() const {
  return core_->stats();
}

void RuntimeRef::extend(const std::function<void(Registry&)>& module) const {
  Registry more;
  module(more);
  core_->extend_registry(std::move(more));
}

namespace detail {
const FunctionEntry& Core::python_function(std::string_view, std::string_view) {
  throw Error(ErrorCategory::unimplemented,
              "Python functions by import path run on a cluster's Python workers: connect to a "
              "cluster (atl::init with an address) to call them");
}

void Core::extend_registry(Registry&&) {
  throw Error(ErrorCategory::unimplemented,
              "this runtime cannot take registrations at run time: register every function and "
              "actor class in a module passed to atl::init");
}
}  // namespace detail

Runtime::~Runtime() {
  shutdown();
}

Runtime& Runtime::operator=(Runtime&& other) noexcept {
  if (this != &other) {
    shutdown();
    core_ = std::move(other.core_);
  }
  return *this;
}

void Runtime::shutdown() {
  if (core_) core_->shutdown();
}

}  // namespace atl
