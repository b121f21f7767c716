// The C++ objects the Python package holds: references to objects and actors, and the registry
// entries of Python functions and classes. Each keeps the runtime it belongs to alive.
#pragma once

#include <memory>
#include <string>

#include "atoll/atoll.hpp"

namespace atoll_py {

struct ObjectRefHandle {
  std::shared_ptr<atl::detail::RefToken> token;
};

struct ActorToken {
  std::shared_ptr<atl::detail::ActorToken> token;
};

struct FunctionEntryRef {
  std::shared_ptr<atl::detail::Core> core;
  const atl::detail::FunctionEntry* entry;
};

struct ActorClassRef {
  std::shared_ptr<atl::detail::Core> core;
  const atl::detail::ActorClassEntry* entry;
};

}  // namespace atoll_py
