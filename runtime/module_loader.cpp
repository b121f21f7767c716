#include "runtime/module_loader.hpp"

#include <dlfcn.h>

#include "atoll/errors.hpp"

namespace atl::runtime {

ModuleFn open_module(const std::filesystem::path& path, const std::string& module_name) {
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr)
    throw Error(ErrorCategory::invalid_argument,
                "cannot load " + path.string() + ": " + std::string(::dlerror()));
  std::string symbol = "atoll_module_" + module_name;
  auto* entry = reinterpret_cast<ModuleFn>(::dlsym(handle, symbol.c_str()));
  if (entry == nullptr) {
    ::dlclose(handle);
    throw Error(ErrorCategory::invalid_argument,
                path.string() + " has no module '" + module_name + "' (no symbol " + symbol +
                    "; define it with ATOLL_MODULE(" + module_name + ", reg))");
  }
  return entry;
}

}  // namespace atl::runtime
