// atoll._core.Runtime: one embedded atoll runtime as the Python package drives it.
//
// Python functions and classes are added to the running runtime's registry as dynamic entries
// (RuntimeRef::extend) the first time they are used with it. Calls that can block (get, wait,
// shutdown) release the GIL; submissions do not, because they never wait and handing the GIL to a
// worker thread and back on every submission would cost more than the submission itself.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "atoll/atoll.hpp"
#include "python-bindings/src/handles.hpp"
#include "python-bindings/src/host.hpp"

namespace atoll_py {

namespace py = pybind11;

// The C++ type every Python actor class is registered under (what get_actor compares).
struct PythonActorTag {};

// How a Python call refers to an ObjectRef or actor (the `refs` of a submission).
enum class RefKind : int { resolve = 0, pass = 1, actor = 2 };

class PyRuntime {
 public:
  PyRuntime(std::vector<atl::NodeOptions> nodes, std::uint64_t object_store_memory,
            double infeasible_timeout_s, const py::object& executor);
  // A driver of the cluster whose head is at `address` (cpp_calls.cpp). Its C++ tasks run the C++
  // job module (library, name), which it loads too (an empty library: none; its Python functions
  // and classes are uploaded as they are first used); an empty token reads $ATOLL_TOKEN. Raises
  // AtollError saying why it could not connect (address, refused, wrong token, module).
  PyRuntime(const std::string& address, const std::string& token, const std::string& library,
            const std::string& module, const std::string& data_host, const py::object& executor);
  // A Python worker's runtime: the worker loop's connection to its cluster (node_worker.cpp),
  // borrowed: shutdown leaves it to the loop.
  PyRuntime(std::shared_ptr<atl::detail::Core> borrowed, const py::object& executor);
  ~PyRuntime();

  FunctionEntryRef register_function(const std::string& name, const py::bytes& pickled);
  ActorClassRef register_actor_class(const std::string& name, const py::bytes& pickled,
                                     const std::vector<std::string>& methods);

  ObjectRefHandle submit_task(const FunctionEntryRef& fn, const py::handle& stream,
                              const py::handle& buffers, const py::list& refs,
                              const atl::TaskOptions* options);
  ActorToken create_actor(const ActorClassRef& cls, const py::handle& stream,
                          const py::handle& buffers, const py::list& refs,
                          const atl::ActorOptions& options);
  ObjectRefHandle call_method(const ActorToken& actor, const std::string& method,
                              const py::handle& stream, const py::handle& buffers,
                              const py::list& refs);
  ObjectRefHandle put(const py::handle& stream, const py::handle& buffers);

  // Values in the order of `refs`; the timeout (seconds, None: forever) covers all of them.
  py::list get(const std::vector<ObjectRefHandle>& refs, std::optional<double> timeout);
  std::vector<bool> wait(const std::vector<ObjectRefHandle>& refs, std::size_t num_ready,
                         std::optional<double> timeout);
  bool cancel(const ObjectRefHandle& ref);
  void kill(const ActorToken& actor);
  std::optional<ActorToken> get_actor(const std::string& name);
  py::dict stats() const;
  void shutdown();

  // Cross-language calls (cpp_calls.cpp). Loads a C++ job module (a library built with
  // ATOLL_MODULE(name, reg)) into the registry; raises AtollError naming the library and what
  // failed.
  void load_cpp_module(const std::string& path, const std::string& name);
  // The C++ function registered under `name`; raises AtollError (invalid_argument) when the loaded
  // modules register none.
  FunctionEntryRef cpp_function(const std::string& name) const;
  // Submits a C++ function with plain Python values (msgpack_values.hpp) or ObjectRefs as its
  // positional arguments. Raises TypeError for a wrong argument count or an unconvertible value.
  ObjectRefHandle submit_cpp_task(const FunctionEntryRef& fn, const py::tuple& args,
                                  const atl::TaskOptions* options);
  // The C++ actor class registered as `name`; AtollError when there is none (or it is Python's).
  ActorClassRef cpp_actor_class(const std::string& name) const;
  // Creates a C++ actor with the constructor taking len(args) arguments, converted as for
  // submit_cpp_task (an actor token is passed to an ActorHandle<T> parameter).
  ActorToken create_cpp_actor(const ActorClassRef& cls, const py::tuple& args,
                              const atl::ActorOptions& options);
  ObjectRefHandle call_cpp_method(const ActorToken& actor, const std::string& method,
                                  const py::tuple& args);

 private:
  std::vector<atl::detail::ArgSpec> call_args(const py::handle& stream, const py::handle& buffers,
                                              const py::list& refs);
  const std::shared_ptr<atl::detail::Core>& core() const {
    return borrowed_ ? borrowed_ : runtime_.core();
  }
  // On a cluster: stores the pickled definition at the head and returns its hash; else "".
  std::string upload_code(const std::string& pickled);

 public:
  bool is_cluster() const noexcept { return cluster_; }

 private:
  atl::Runtime runtime_;  // owned; without a core when borrowed
  std::shared_ptr<atl::detail::Core> borrowed_;
  std::shared_ptr<Host> host_;
  bool cluster_ = false;
};

void bind_runtime(py::module_& m);
// atoll._core.serve_worker (node_worker.cpp).
void bind_node_worker(py::module_& m);

// Makes atoll's symbols visible to the C++ job modules this process loads next (cpp_calls.cpp):
// Python loaded the extension RTLD_LOCAL. Raises AtollError when it cannot.
void export_atoll_symbols();

}  // namespace atoll_py
