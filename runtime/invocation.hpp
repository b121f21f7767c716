// Running one call: gathering argument values and turning the outcome into a value or an error.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "atoll/detail/core.hpp"
#include "runtime/error_info.hpp"
#include "runtime/object_store.hpp"

namespace atl::runtime {

// Argument values for an invoker; inline storage for the common few-argument call.
class ArgValues {
 public:
  explicit ArgValues(std::size_t n) : size_(n) {
    if (n > inline_.size()) heap_.resize(n);
  }
  const detail::Payload** data() noexcept {
    return size_ > inline_.size() ? heap_.data() : inline_.data();
  }
  std::span<const detail::Payload* const> span() noexcept { return {data(), size_}; }

 private:
  std::size_t size_;
  std::array<const detail::Payload*, 6> inline_{};
  std::vector<const detail::Payload*> heap_;
};

// Fills `out` for resolved arguments; returns the error of the first failed ObjectRef argument.
// Every resolve_ref argument must already be resolved.
ErrorPtr collect_arguments(const std::vector<detail::ArgSpec>& args, ArgValues& out);

// The creator encodes constructor arguments by their own types; the registered constructor
// decides whether an ObjectRef argument is resolved or passed as a reference. Raises
// Error(invalid_argument) for an argument the constructor cannot take.
void match_constructor_params(const detail::ActorClassEntry& cls,
                              const detail::ConstructorEntry& ctor,
                              std::vector<detail::ArgSpec>& args);
// The registered constructor taking `args`, with their kinds matched to its parameters. Raises
// Error(invalid_argument) naming the class when there is none.
const detail::ConstructorEntry& require_constructor(const detail::ActorClassEntry& cls,
                                                    std::vector<detail::ArgSpec>& args);

// The first resolve_ref argument still pending, or nullptr.
ObjectEntry* first_pending_argument(const std::vector<detail::ArgSpec>& args);

inline ObjectEntry* entry_of(const detail::RefToken& ref) noexcept {
  return static_cast<ObjectEntry*>(ref.entry());
}

}  // namespace atl::runtime
