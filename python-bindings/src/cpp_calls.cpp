// PyRuntime's C++ half: calling C++ functions by name, loading C++ modules, and connecting to a
// cluster as a driver (see runtime_binding.hpp).
#include <dlfcn.h>

#include "python-bindings/src/msgpack_values.hpp"
#include "python-bindings/src/runtime_binding.hpp"
#include "runtime/module_loader.hpp"

namespace atoll_py {

namespace {

// A job module resolves atoll's symbols (Registry, serialization helpers) against the process.
// Python loaded this extension with RTLD_LOCAL, which hides them; reopening it RTLD_GLOBAL (it is
// loaded already, so nothing else happens) makes them visible to the libraries loaded after.
void export_atoll_symbols() {
  Dl_info self{};
  if (::dladdr(reinterpret_cast<void*>(&export_atoll_symbols), &self) == 0 ||
      self.dli_fname == nullptr)
    throw atl::Error(atl::ErrorCategory::failed, "cannot find the atoll extension's own library");
  if (::dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL) == nullptr)
    throw atl::Error(atl::ErrorCategory::failed,
                     "cannot export atoll's symbols to C++ modules: " + std::string(::dlerror()));
}

atl::Runtime connect(const std::string& address, const std::string& token,
                     const std::string& library, const std::string& module,
                     const std::string& data_host) {
  export_atoll_symbols();
  atl::InitOptions options;
  options.address = address;
  options.token = token;
  options.modules = {atl::runtime::open_module(library, module)};
  options.job_module = {.library = library, .name = module};
  if (!data_host.empty()) options.data_host = data_host;
  py::gil_scoped_release unlocked;  // connecting waits for the head
  return atl::init(std::move(options));
}

}  // namespace

PyRuntime::PyRuntime(const std::string& address, const std::string& token,
                     const std::string& library, const std::string& module,
                     const std::string& data_host, const py::object& executor)
    : runtime_(connect(address, token, library, module, data_host)),
      host_(std::make_shared<Host>(executor)),
      cluster_(true) {}

void PyRuntime::load_cpp_module(const std::string& path, const std::string& name) {
  if (cluster_)
    throw atl::Error(atl::ErrorCategory::invalid_argument,
                     "a cluster driver's C++ module is the one it connected with");
  export_atoll_symbols();
  atl::ModuleFn module = atl::runtime::open_module(path, name);
  runtime_.extend([module](atl::Registry& reg) { module(reg); });
}

FunctionEntryRef PyRuntime::cpp_function(const std::string& name) const {
  const auto& entry = core()->function_by_name(name);
  // Typed C++ functions carry their address as key; dynamic entries (Python functions, which take
  // a pickled call) have none and their own callers.
  if (entry.key == 0)
    throw atl::Error(atl::ErrorCategory::invalid_argument,
                     "'" + name +
                         "' is not a typed C++ function (a Python function is called "
                         "through its @atoll.remote object)");
  return {core(), &entry};
}

ObjectRefHandle PyRuntime::submit_cpp_task(const FunctionEntryRef& fn, const py::tuple& args,
                                           const atl::TaskOptions* options) {
  using Kind = atl::detail::ArgSpec::Kind;
  using Mode = atl::detail::ArgMode;
  if (fn.core != core())
    throw atl::Error(atl::ErrorCategory::invalid_argument,
                     "this function was looked up in another runtime");
  const auto& params = fn.entry->params;
  if (args.size() != params.size())
    throw py::type_error("C++ function '" + fn.entry->name + "' takes " +
                         std::to_string(params.size()) + " argument" +
                         (params.size() == 1 ? "" : "s") + ", got " + std::to_string(args.size()));
  std::vector<atl::detail::ArgSpec> specs(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    py::handle arg = args[i];
    std::string what = "argument " + std::to_string(i + 1) + " of '" + fn.entry->name + "'";
    if (params[i] == Mode::actor_handle)
      throw py::type_error(what + " is an actor handle, which Python cannot pass to C++ yet");
    if (py::isinstance<ObjectRefHandle>(arg)) {
      specs[i].kind = params[i] == Mode::object_ref ? Kind::pass_ref : Kind::resolve_ref;
      specs[i].ref = arg.cast<const ObjectRefHandle&>().token;
      continue;
    }
    if (params[i] == Mode::object_ref) throw py::type_error(what + " takes an ObjectRef");
    specs[i].value.bytes = to_msgpack(arg, what);
  }
  return {core()->submit_task(*fn.entry, std::move(specs), options)};
}

}  // namespace atoll_py
