#include "runtime/invocation.hpp"

namespace atl::runtime {

ErrorPtr collect_arguments(const std::vector<detail::ArgSpec>& args, ArgValues& out) {
  const detail::Payload** values = out.data();
  for (std::size_t i = 0; i < args.size(); ++i) {
    const detail::ArgSpec& a = args[i];
    values[i] = nullptr;
    if (a.kind == detail::ArgSpec::Kind::value) {
      values[i] = &a.value;
    } else if (a.kind == detail::ArgSpec::Kind::resolve_ref) {
      ObjectEntry* e = entry_of(*a.ref);
      if (e->state.load(std::memory_order_acquire) != ObjectState::ready) return e->error;
      values[i] = &e->value;
    }
  }
  return nullptr;
}

ObjectEntry* first_pending_argument(const std::vector<detail::ArgSpec>& args) {
  for (const auto& a : args)
    if (a.kind == detail::ArgSpec::Kind::resolve_ref && !entry_of(*a.ref)->resolved())
      return entry_of(*a.ref);
  return nullptr;
}

}  // namespace atl::runtime
