#include "python-bindings/src/errors.hpp"

#include <pybind11/pybind11.h>

#include "atoll/errors.hpp"

namespace atoll_py {

namespace py = pybind11;

namespace {

// Remote text may be cut mid-character (messages are bounded on the wire) or not UTF-8 at all:
// it still reaches the caller, with replacement characters, rather than a UnicodeDecodeError.
py::str text(const std::string& s) {
  PyObject* out = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
  if (out == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(out);
}

void set_error(const char* kind, const atl::Error& e, const atl::TaskError* task = nullptr) {
  py::object make = py::module_::import("atoll.exceptions").attr("_from_native");
  py::object exc;
  if (task != nullptr)
    exc = make(kind, text(e.what()), std::string(atl::to_string(e.category())),
               text(task->remote_type()), text(task->remote_message()), text(task->traceback()),
               py::bytes(task->details()), text(task->task_name()), text(task->node()));
  else
    exc = make(kind, text(e.what()), std::string(atl::to_string(e.category())));
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
}

}  // namespace

void register_error_translator() {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const atl::TaskError& e) {
      set_error("task", e, &e);
    } catch (const atl::TaskCancelledError& e) {
      set_error("cancelled", e);
    } catch (const atl::GetTimeoutError& e) {
      set_error("timeout", e);
    } catch (const atl::ActorDiedError& e) {
      set_error("actor_died", e);
    } catch (const atl::ObjectLostError& e) {
      set_error("object_lost", e);
    } catch (const atl::InfeasibleError& e) {
      set_error("infeasible", e);
    } catch (const atl::ObjectStoreFullError& e) {
      set_error("store_full", e);
    } catch (const atl::SerializationError& e) {
      set_error("serialization", e);
    } catch (const atl::RuntimeShutdownError& e) {
      set_error("shutdown", e);
    } catch (const atl::Error& e) {
      set_error("error", e);
    }
  });
}

}  // namespace atoll_py
