// Opens a job module: a shared library built with ATOLL_MODULE(name, reg), whose C entry point
// `atoll_module_<name>` registers its functions and actor classes. Workers load the verified copy a
// node fetched (module_store.hpp checks its hash first); a Python driver loads the library it was
// given, to call its functions by name.
//
// The library resolves the atoll symbols it uses (Registry, serialization helpers) against the
// process that loads it, so they must be in the global scope: the `atoll` executable exports them,
// and the Python extension promotes itself to global scope before loading one.
//
// Thread-safety: may be called from any thread; dlopen serializes.
#pragma once

#include <filesystem>
#include <string>

#include "atoll/registry.hpp"

namespace atl::runtime {

// Loads `path` and returns its `atoll_module_<module_name>` entry point; the library stays loaded
// for the life of the process. Raises Error(invalid_argument) naming the library and what failed
// (dlopen, with its reason, or the missing entry point).
ModuleFn open_module(const std::filesystem::path& path, const std::string& module_name);

}  // namespace atl::runtime
