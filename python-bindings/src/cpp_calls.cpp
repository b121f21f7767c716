// PyRuntime's C++ half: calling C++ functions by name, loading C++ modules, and connecting to a
// cluster as a driver (see runtime_binding.hpp).
#include <dlfcn.h>

#include "python-bindings/src/msgpack_values.hpp"
#include "python-bindings/src/runtime_binding.hpp"
#include "runtime/module_loader.hpp"

namespace atoll_py {

namespace {

atl::Runtime connect(const std::string& address, const std::string& token,
                     const std::string& library, const std::string& module,
                     const std::string& data_host) {
  atl::InitOptions options;
  options.address = address;
  options.token = token;
  if (!library.empty()) {
    export_atoll_symbols();
    options.modules = {atl::runtime::open_module(library, module)};
    options.job_module = {.library = library, .name = module};
  }
  if (!data_host.empty()) options.data_host = data_host;
  py::gil_scoped_release unlocked;  // connecting waits for the head
  return atl::init(std::move(options));
}

}  // namespace

// Python loaded this extension with RTLD_LOCAL, which hides its symbols; reopening it RTLD_GLOBAL
// (it is loaded already, so nothing else happens) makes them visible to libraries loaded after.
void export_atoll_symbols() {
  Dl_info self{};
  if (::dladdr(reinterpret_cast<void*>(&export_atoll_symbols), &self) == 0 ||
      self.dli_fname == nullptr)
    throw atl::Error(atl::ErrorCategory::failed, "cannot find the atoll extension's own library");
  if (::dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL) == nullptr)
    throw atl::Error(atl::ErrorCategory::failed,
                     "cannot export atoll's symbols to C++ modules: " + std::string(::dlerror()));
}

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
  atl::RuntimeRef(core()).extend([module](atl::Registry& reg) { module(reg); });
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

namespace {

std::string plural(std::size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// The arguments of a C++ callable (`callee` names it in errors) from Python: an ObjectRef is
// resolved, or passed for an ObjectRef<T> parameter; an actor token goes to an ActorHandle<T>
// parameter; anything else is msgpack. Raises TypeError / ValueError before anything is sent.
std::vector<atl::detail::ArgSpec> cpp_args(const std::vector<atl::detail::ArgMode>& params,
                                           const py::tuple& args, const std::string& callee) {
  using Kind = atl::detail::ArgSpec::Kind;
  using Mode = atl::detail::ArgMode;
  if (args.size() != params.size())
    throw py::type_error(callee + " takes " + plural(params.size(), "argument") + ", got " +
                         std::to_string(args.size()));
  std::vector<atl::detail::ArgSpec> specs(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    py::handle arg = args[i];
    std::string what = "argument " + std::to_string(i + 1) + " of " + callee;
    if (py::isinstance<ActorToken>(arg)) {
      if (params[i] != Mode::actor_handle) throw py::type_error(what + " takes no actor handle");
      specs[i].kind = Kind::actor;
      specs[i].actor = arg.cast<const ActorToken&>().token;
      continue;
    }
    if (params[i] == Mode::actor_handle) throw py::type_error(what + " takes an actor handle");
    if (py::isinstance<ObjectRefHandle>(arg)) {
      specs[i].kind = params[i] == Mode::object_ref ? Kind::pass_ref : Kind::resolve_ref;
      specs[i].ref = arg.cast<const ObjectRefHandle&>().token;
      continue;
    }
    if (params[i] == Mode::object_ref) throw py::type_error(what + " takes an ObjectRef");
    specs[i].value.bytes = to_msgpack(arg, what);
  }
  return specs;
}

}  // namespace

ObjectRefHandle PyRuntime::submit_cpp_task(const FunctionEntryRef& fn, const py::tuple& args,
                                           const atl::TaskOptions* options) {
  if (fn.core != core())
    throw atl::Error(atl::ErrorCategory::invalid_argument,
                     "this function was looked up in another runtime");
  auto specs = cpp_args(fn.entry->params, args, "C++ function '" + fn.entry->name + "'");
  return {core()->submit_task(*fn.entry, std::move(specs), options)};
}

ActorClassRef PyRuntime::cpp_actor_class(const std::string& name) const {
  const auto& cls = core()->actor_class_by_name(name);
  if (cls.type == typeid(PythonActorTag))
    throw atl::Error(atl::ErrorCategory::invalid_argument,
                     "'" + name +
                         "' is a Python actor class (create it through its @atoll.remote "
                         "class)");
  return {core(), &cls};
}

ActorToken PyRuntime::create_cpp_actor(const ActorClassRef& cls, const py::tuple& args,
                                       const atl::ActorOptions& options) {
  if (cls.core != core())
    throw atl::Error(atl::ErrorCategory::invalid_argument,
                     "this actor class was looked up in another runtime");
  const std::string callee = "C++ actor class '" + cls.entry->name + "'";
  const auto* ctor = cls.entry->find_constructor(args.size());
  if (ctor == nullptr) {
    std::string arities;
    for (const auto& c : cls.entry->constructors)
      arities += (arities.empty() ? "" : ", ") + std::to_string(c.params.size());
    throw py::type_error(callee + " has no constructor taking " + plural(args.size(), "argument") +
                         " (it has constructors taking " + (arities.empty() ? "none" : arities) +
                         ")");
  }
  auto specs = cpp_args(ctor->params, args, "the constructor of " + callee);
  return {core()->create_actor(*cls.entry, std::move(specs), options)};
}

ObjectRefHandle PyRuntime::call_cpp_method(const ActorToken& actor, const std::string& method,
                                           const py::tuple& args) {
  const auto& cls = actor.token->actor_class();
  const auto* m = cls.find_method(method);
  if (m == nullptr)
    throw py::attribute_error("C++ actor class '" + cls.name + "' has no method '" + method + "'");
  auto specs = cpp_args(m->params, args, "method '" + method + "' of '" + cls.name + "'");
  return {core()->submit_actor_call(*actor.token, *m, std::move(specs))};
}

}  // namespace atoll_py
