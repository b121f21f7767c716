// The Python side of execution: what the runtime's dynamic entries call when a Python task, actor
// constructor or method runs on one of its worker threads.
//
// Each Python function or class becomes one dynamic entry whose invoker holds the pickled code and
// unpickles it once, on first use. The invoker takes the GIL (WorkerGil) only around Python: it
// decodes the arguments (argument 0 is the pickled call, the others the ObjectRefs and actor
// handles it mentions, resolved ones already read), hands them to the package's executor
// (atoll._worker), and encodes what comes back, either the result or the exception as a
// ForeignException so the caller's `get` raises it with its traceback.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "atoll/atoll.hpp"

namespace atoll_py {

namespace py = pybind11;

// The executor's callables (see atoll/_worker.py). Released with the GIL, or leaked once the
// interpreter is gone.
class Host {
 public:
  explicit Host(const py::object& executor);
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  py::object run_function, construct_actor, run_method, run_plain, load_code, load_value;
};

// A pickled function or class, unpickled on first use (by whichever thread runs it first).
class CodeSlot {
 public:
  CodeSlot(std::shared_ptr<Host> host, std::string name, std::string pickled)
      : host_(std::move(host)), name_(std::move(name)), pickled_(std::move(pickled)) {}
  ~CodeSlot();
  // Call with the GIL held.
  py::object get();
  const std::shared_ptr<Host>& host() const noexcept { return host_; }
  const std::string& name() const noexcept { return name_; }  // its registered name

 private:
  std::shared_ptr<Host> host_;
  std::string name_;
  std::string pickled_;
  py::object code_;  // guarded by the GIL
};

atl::DynamicFunction function_invoker(std::shared_ptr<CodeSlot> slot);
atl::DynamicConstructor actor_constructor(std::shared_ptr<CodeSlot> slot);
atl::DynamicMethod method_invoker(std::shared_ptr<Host> host, std::string method);

// A stored value as a Python object. Call with the GIL held.
py::object load_value(const Host& host, const atl::detail::Payload& payload);

}  // namespace atoll_py
