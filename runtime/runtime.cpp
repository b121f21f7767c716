#include "atoll/runtime.hpp"

namespace atl {

RuntimeStats RuntimeRef::stats() const {
  return core_->stats();
}

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
