// atoll._core: the compiled half of the `atoll` Python package (see python-bindings/atoll/).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "python-bindings/src/errors.hpp"
#include "python-bindings/src/gil.hpp"
#include "python-bindings/src/handles.hpp"
#include "python-bindings/src/payload.hpp"
#include "python-bindings/src/runtime_binding.hpp"

namespace py = pybind11;
using namespace atoll_py;

namespace {

py::object serialization() {
  return py::module_::import("atoll._serialization");
}

void bind_options(py::module_& m) {
  py::class_<atl::LabelSelector> sel(m, "LabelSelector");
  py::enum_<atl::LabelSelector::Op>(sel, "Op")
      .value("in_", atl::LabelSelector::Op::in)
      .value("not_in", atl::LabelSelector::Op::not_in)
      .value("exists", atl::LabelSelector::Op::exists)
      .value("does_not_exist", atl::LabelSelector::Op::does_not_exist);
  sel.def(py::init([](std::string key, atl::LabelSelector::Op op, std::vector<std::string> values) {
       return atl::LabelSelector{std::move(key), op, std::move(values)};
     }))
      .def_readonly("key", &atl::LabelSelector::key)
      .def_readonly("op", &atl::LabelSelector::op)
      .def_readonly("values", &atl::LabelSelector::values);

  py::class_<atl::TaskOptions>(m, "TaskOptions")
      .def(py::init<>())
      .def_readwrite("name", &atl::TaskOptions::name)
      .def_readwrite("num_cpus", &atl::TaskOptions::num_cpus)
      .def_readwrite("num_gpus", &atl::TaskOptions::num_gpus)
      .def_readwrite("memory", &atl::TaskOptions::memory)
      .def_readwrite("resources", &atl::TaskOptions::resources)
      .def_readwrite("label_selector", &atl::TaskOptions::label_selector)
      .def_readwrite("max_retries", &atl::TaskOptions::max_retries)
      .def_readwrite("retry_exceptions", &atl::TaskOptions::retry_exceptions);

  py::class_<atl::ActorOptions>(m, "ActorOptions")
      .def(py::init<>())
      .def_readwrite("name", &atl::ActorOptions::name)
      .def_readwrite("num_cpus", &atl::ActorOptions::num_cpus)
      .def_readwrite("num_gpus", &atl::ActorOptions::num_gpus)
      .def_readwrite("memory", &atl::ActorOptions::memory)
      .def_readwrite("resources", &atl::ActorOptions::resources)
      .def_readwrite("label_selector", &atl::ActorOptions::label_selector)
      .def_readwrite("max_concurrency", &atl::ActorOptions::max_concurrency)
      .def_readwrite("max_restarts", &atl::ActorOptions::max_restarts);

  py::class_<atl::NodeOptions>(m, "NodeOptions")
      .def(py::init<>())
      .def_readwrite("name", &atl::NodeOptions::name)
      .def_readwrite("island", &atl::NodeOptions::island)
      .def_readwrite("num_cpus", &atl::NodeOptions::num_cpus)
      .def_readwrite("num_gpus", &atl::NodeOptions::num_gpus)
      .def_readwrite("gpu_model", &atl::NodeOptions::gpu_model)
      .def_readwrite("memory", &atl::NodeOptions::memory)
      .def_readwrite("resources", &atl::NodeOptions::resources)
      .def_readwrite("labels", &atl::NodeOptions::labels);
}

void bind_handles(py::module_& m) {
  py::class_<StoreBuffer>(m, "StoreBuffer", py::buffer_protocol())
      .def_buffer([](StoreBuffer& b) {
        return py::buffer_info(const_cast<std::byte*>(b.buffer.data()), 1,
                               py::format_descriptor<unsigned char>::format(), 1,
                               {static_cast<py::ssize_t>(b.buffer.size())}, {1}, true);
      })
      .def("__len__", [](const StoreBuffer& b) { return b.buffer.size(); })
      .def("address",
           [](const StoreBuffer& b) { return reinterpret_cast<std::uintptr_t>(b.buffer.data()); });

  py::class_<ObjectRefHandle>(m, "ObjectRef",
                              "A future for a value in the object store; read it with atoll.get.")
      .def("hex", [](const ObjectRefHandle& r) { return r.token->id().to_string(); })
      .def("__repr__",
           [](const ObjectRefHandle& r) { return "ObjectRef(" + r.token->id().to_string() + ")"; })
      .def("__eq__",
           [](const ObjectRefHandle& a, const py::object& b) {
             return py::isinstance<ObjectRefHandle>(b) &&
                    a.token->id() == b.cast<const ObjectRefHandle&>().token->id();
           })
      .def("__hash__",
           [](const ObjectRefHandle& r) {
             return std::hash<std::string>{}(r.token->id().to_string());
           })
      .def("__reduce__", [](py::object self) { return serialization().attr("reduce_ref")(self); });

  py::class_<ActorToken>(m, "ActorToken")
      .def("hex", [](const ActorToken& a) { return a.token->id().to_string(); })
      .def_property_readonly("is_python",
                             [](const ActorToken& a) {
                               // A Python class of this process, or one known through a handle (a
                               // cluster worker's).
                               const auto& cls = a.token->actor_class();
                               return cls.type == typeid(PythonActorTag) || !cls.code.empty();
                             })
      .def_property_readonly("class_name",
                             [](const ActorToken& a) { return a.token->actor_class().name; })
      .def_property_readonly("method_names",
                             [](const ActorToken& a) {
                               std::vector<std::string> names;
                               for (const auto& m : a.token->actor_class().methods)
                                 names.push_back(m.name);
                               return names;
                             })
      .def("__reduce__",
           [](py::object self) { return serialization().attr("reduce_actor")(self); });

  py::class_<FunctionEntryRef>(m, "FunctionEntry")
      .def_property_readonly("name", [](const FunctionEntryRef& f) { return f.entry->name; });
  py::class_<ActorClassRef>(m, "ActorClass")
      .def_property_readonly("name", [](const ActorClassRef& c) { return c.entry->name; });
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "The compiled core of atoll's Python package; use `import atoll` instead.";
  bind_options(m);
  bind_handles(m);
  py::class_<PyRuntime>(m, "Runtime")
      .def(py::init<std::vector<atl::NodeOptions>, std::uint64_t, double, const py::object&>(),
           py::arg("nodes"), py::arg("object_store_memory"), py::arg("infeasible_timeout_s"),
           py::arg("executor"))
      .def(py::init<const std::string&, const std::string&, const std::string&, const std::string&,
                    const std::string&, const py::object&>(),
           py::arg("address"), py::arg("token"), py::arg("library"), py::arg("module"),
           py::arg("data_host"), py::arg("executor"))
      .def_property_readonly("is_cluster", &PyRuntime::is_cluster)
      .def("register_function", &PyRuntime::register_function)
      .def("register_actor_class", &PyRuntime::register_actor_class)
      .def("submit_task", &PyRuntime::submit_task, py::arg("fn"), py::arg("stream"),
           py::arg("buffers"), py::arg("refs"), py::arg("options").none(true))
      .def("create_actor", &PyRuntime::create_actor)
      .def("call_method", &PyRuntime::call_method)
      .def("put", &PyRuntime::put)
      .def("get", &PyRuntime::get, py::arg("refs"), py::arg("timeout").none(true))
      .def("wait", &PyRuntime::wait, py::arg("refs"), py::arg("num_ready"),
           py::arg("timeout").none(true))
      .def("cancel", &PyRuntime::cancel)
      .def("kill", &PyRuntime::kill)
      .def("get_actor", &PyRuntime::get_actor)
      .def("stats", &PyRuntime::stats)
      .def("shutdown", &PyRuntime::shutdown)
      .def("load_cpp_module", &PyRuntime::load_cpp_module, py::arg("path"), py::arg("name"))
      .def("cpp_function", &PyRuntime::cpp_function, py::arg("name"))
      .def("submit_cpp_task", &PyRuntime::submit_cpp_task, py::arg("fn"), py::arg("args"),
           py::arg("options").none(true))
      .def("cpp_actor_class", &PyRuntime::cpp_actor_class, py::arg("name"))
      .def("create_cpp_actor", &PyRuntime::create_cpp_actor, py::arg("cls"), py::arg("args"),
           py::arg("options"))
      .def("call_cpp_method", &PyRuntime::call_cpp_method, py::arg("actor"), py::arg("method"),
           py::arg("args"));
  bind_node_worker(m);
  m.attr("REF_RESOLVE") = static_cast<int>(RefKind::resolve);
  m.attr("REF_PASS") = static_cast<int>(RefKind::pass);
  m.attr("REF_ACTOR") = static_cast<int>(RefKind::actor);
  register_error_translator();
}
