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

// The creator encodes constructor arguments by their own types; the registered constructor
// decides whether an ObjectRef argument is resolved or passed as a reference.
void match_constructor_params(const detail::ActorClassEntry& cls,
                              const detail::ConstructorEntry& ctor,
                              std::vector<detail::ArgSpec>& args) {
  using Kind = detail::ArgSpec::Kind;
  if (ctor.variadic) return;  // its invoker decodes the arguments as the binding submitted them
  for (std::size_t i = 0; i < args.size(); ++i) {
    detail::ArgMode mode = ctor.params[i];
    Kind& kind = args[i].kind;
    bool is_ref = kind == Kind::resolve_ref || kind == Kind::pass_ref;
    if (mode == detail::ArgMode::value && kind == Kind::pass_ref)
      kind = Kind::resolve_ref;
    else if (mode == detail::ArgMode::object_ref && is_ref)
      kind = Kind::pass_ref;
    else if ((mode == detail::ArgMode::actor_handle) != (kind == Kind::actor) ||
             (mode == detail::ArgMode::object_ref && !is_ref))
      throw Error(ErrorCategory::invalid_argument,
                  "constructor argument " + std::to_string(i) + " of actor class '" + cls.name +
                      "' does not match the registered constructor's parameter");
  }
}

const detail::ConstructorEntry& require_constructor(const detail::ActorClassEntry& cls,
                                                    std::vector<detail::ArgSpec>& args) {
  const detail::ConstructorEntry* ctor = cls.find_constructor(args.size());
  if (ctor == nullptr)
    throw Error(ErrorCategory::invalid_argument,
                "actor class '" + cls.name + "' has no constructor taking " +
                    std::to_string(args.size()) +
                    " arguments; register one with .constructor<Args...>()");
  match_constructor_params(cls, *ctor, args);
  return *ctor;
}

}  // namespace atl::runtime
