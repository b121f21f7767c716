// atoll._core.serve_worker: the body of a node's Python worker process (atoll/_node_worker.py).
//
// The worker is atoll's own worker loop (runtime/worker_main.cpp), the same one `atoll __worker`
// runs for C++ code, with the Python binding plugged in: a call that carries a CodeRef loads that
// pickled function or class (checked against its hash) into the loop's registry as a dynamic
// entry, exactly as the embedded runtime registers Python definitions. Nested tasks go through
// the loop's own cluster runtime, which Python's current runtime borrows (atoll._runtime).
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "python-bindings/src/gil.hpp"
#include "python-bindings/src/host.hpp"
#include "python-bindings/src/runtime_binding.hpp"
#include "runtime/module_store.hpp"
#include "runtime/worker_process.hpp"

namespace atoll_py {

namespace {

using atl::runtime::CodeRef;

// Runs the worker loop on this thread until the node agent closes the socket; returns the
// process's exit status. `attach` receives a connector (a callable returning the cluster runtime
// for nested tasks) before the loop starts, and None once it ended.
int serve_worker(int fd, const std::string& module_path, const std::string& module_hash,
                 const std::string& module_name, const py::object& executor,
                 const py::object& attach) {
  if (!module_path.empty()) export_atoll_symbols();  // the C++ module resolves atoll's symbols
  auto host = std::make_shared<Host>(executor);
  py::object method_names = executor.attr("method_names");
  atl::runtime::WorkerBinding binding;
  binding.load_code = [host, method_names](atl::Registry& registry, const std::string& key,
                                           const std::string& name, const CodeRef& code,
                                           bool actor) {
    auto slot = std::make_shared<CodeSlot>(host, name,
                                           atl::runtime::read_verified_file(code.path, code.hash));
    if (!actor) {
      registry.dynamic_function(key, function_invoker(slot));
      return;
    }
    std::vector<std::string> methods;
    {
      WorkerGil gil;
      try {
        methods = method_names(slot->get()).cast<std::vector<std::string>>();
      } catch (py::error_already_set& e) {
        throw atl::Error(atl::ErrorCategory::failed,
                         "unpickling class '" + name + "': " + e.what());
      }
    }
    auto cls = registry.dynamic_actor(key, typeid(PythonActorTag), actor_constructor(slot));
    for (const auto& m : methods) cls.method(m, method_invoker(host, m));
  };
  binding.attach = [attach, executor](std::function<std::shared_ptr<atl::detail::Core>()> connect) {
    WorkerGil gil;
    if (!connect) {
      attach(py::none());
      return;
    }
    attach(py::cpp_function([connect, executor] {
      std::shared_ptr<atl::detail::Core> core;
      {
        py::gil_scoped_release unlocked;  // joining the cluster waits for the head
        core = connect();
      }
      return std::make_unique<PyRuntime>(std::move(core), executor);
    }));
  };
  int status;
  {
    py::gil_scoped_release unlocked;
    status = atl::runtime::worker_main(fd, module_path, module_hash, module_name, &binding);
  }
  return status;
}

}  // namespace

void bind_node_worker(py::module_& m) {
  m.def("serve_worker", &serve_worker, py::arg("fd"), py::arg("module_path"),
        py::arg("module_hash"), py::arg("module_name"), py::arg("executor"), py::arg("attach"),
        "Runs a node's Python worker on socket `fd` until the node agent closes it.");
}

}  // namespace atoll_py
