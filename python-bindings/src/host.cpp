#include "python-bindings/src/host.hpp"

#include "python-bindings/src/gil.hpp"
#include "python-bindings/src/handles.hpp"
#include "python-bindings/src/msgpack_values.hpp"
#include "python-bindings/src/payload.hpp"

namespace atoll_py {

namespace {

using atl::detail::ArgSpec;
using atl::detail::CallFrame;
using atl::detail::Payload;

void drop(py::object& o) noexcept {
  if (!o) return;
  if (python_alive()) {
    WorkerGil gil;
    o = py::object();
  } else {
    o.release();  // the interpreter is gone: nothing left to free it into
  }
}

// Argument 0 is the pickled call; the others are what it refers to, in order.
py::list extras_of(const Host& host, const CallFrame& f) {
  py::list extras;
  for (std::size_t i = 1; i < f.args.size(); ++i) {
    const ArgSpec& a = f.args[i];
    switch (a.kind) {
      case ArgSpec::Kind::pass_ref:
        extras.append(py::cast(ObjectRefHandle{a.ref}));
        break;
      case ArgSpec::Kind::actor:
        extras.append(py::cast(ActorToken{a.actor}));
        break;
      case ArgSpec::Kind::value:
      case ArgSpec::Kind::resolve_ref:
        extras.append(load_value(host, *f.values[i]));
        break;
    }
  }
  return extras;
}

std::pair<py::bytes, py::list> call_of(const CallFrame& f) {
  if (f.args.empty() || f.values[0] == nullptr)
    throw atl::Error(atl::ErrorCategory::invalid_argument,
                     "a Python class or method was called without its pickled arguments (C++ "
                     "calls Python functions by name, not actors)");
  return decode_payload(*f.values[0]);
}

// Python's own calls put the pickled call first, as a value; a call from C++ by name
// (rt.task<R>("name")) has none: each argument is a msgpack value or a resolved reference (whose
// stored value may well be a Python one, so only a value argument can be the pickled call).
bool called_from_cpp(const CallFrame& f) {
  return f.args.empty() || f.args[0].kind != ArgSpec::Kind::value || is_plain(*f.values[0]);
}

py::list plain_args(const Host& host, const CallFrame& f) {
  py::list args;
  for (std::size_t i = 0; i < f.args.size(); ++i) {
    const ArgSpec& a = f.args[i];
    if (a.kind == ArgSpec::Kind::pass_ref)
      args.append(py::cast(ObjectRefHandle{a.ref}));
    else if (a.kind == ArgSpec::Kind::actor)
      args.append(py::cast(ActorToken{a.actor}));
    else
      args.append(load_value(host, *f.values[i]));
  }
  return args;
}

// The executor returns (value,) or a failure; C++ reads the value as msgpack.
Payload plain_outcome(const py::object& out, const std::string& name) {
  auto t = py::reinterpret_borrow<py::tuple>(out);
  if (t.size() != 1)
    throw atl::ForeignException(t[0].cast<std::string>(), t[1].cast<std::string>(),
                                t[2].cast<std::string>(), t[3].cast<std::string>());
  Payload p;
  try {
    p.bytes = to_msgpack(t[0], "the result of '" + name + "'");
  } catch (const py::builtin_exception& e) {
    throw atl::SerializationError(std::string(e.what()) +
                                  " (it was called from C++, which reads plain values only)");
  }
  return p;
}

// The executor returns (stream, buffers) or (type, message, traceback, details).
Payload outcome(atl::detail::Core* core, const py::object& out) {
  auto t = py::reinterpret_borrow<py::tuple>(out);
  if (t.size() == 2) return encode_payload(core, t[0], t[1]);
  throw atl::ForeignException(t[0].cast<std::string>(), t[1].cast<std::string>(),
                              t[2].cast<std::string>(), t[3].cast<std::string>());
}

// A Python error inside the invoker's own machinery (not the user's code, which the executor
// catches) still reaches the caller as a TaskError rather than escaping into the runtime.
[[noreturn]] void rethrow_python(py::error_already_set& e) {
  std::string type = py::str(e.type().attr("__name__"));
  throw atl::ForeignException(type, py::str(e.value()), "", "");
}

}  // namespace

Host::Host(const py::object& executor)
    : run_function(executor.attr("run_function")),
      construct_actor(executor.attr("construct_actor")),
      run_method(executor.attr("run_method")),
      run_plain(executor.attr("run_plain")),
      load_code(executor.attr("load_code")),
      load_value(executor.attr("load_value")) {}

Host::~Host() {
  for (py::object* o :
       {&run_function, &construct_actor, &run_method, &run_plain, &load_code, &load_value})
    drop(*o);
}

CodeSlot::~CodeSlot() {
  drop(code_);
}

py::object CodeSlot::get() {
  // The GIL guards code_. No mutex: unpickling may release the GIL (imports do), and a thread
  // waiting on a mutex while holding the GIL would deadlock with it. Two threads may both unpickle
  // on first use; one result is kept.
  if (!code_) {
    py::object code = host_->load_code(py::bytes(pickled_));
    if (!code_) code_ = std::move(code);
  }
  return code_;
}

py::object load_value(const Host& host, const Payload& payload) {
  if (is_plain(payload)) return from_plain(payload);  // written by C++
  auto [stream, buffers] = decode_payload(payload);
  return host.load_value(stream, buffers);
}

atl::DynamicFunction function_invoker(std::shared_ptr<CodeSlot> slot) {
  return [slot = std::move(slot)](CallFrame& f) -> Payload {
    WorkerGil gil;
    try {
      py::object fn = slot->get();
      const Host& host = *slot->host();
      if (called_from_cpp(f))
        return plain_outcome(host.run_plain(fn, plain_args(host, f)), slot->name());
      auto [stream, buffers] = call_of(f);
      return outcome(f.core.get(), host.run_function(fn, stream, buffers, extras_of(host, f)));
    } catch (py::error_already_set& e) {
      rethrow_python(e);
    }
  };
}

atl::DynamicConstructor actor_constructor(std::shared_ptr<CodeSlot> slot) {
  return [slot = std::move(slot)](CallFrame& f) -> std::shared_ptr<void> {
    WorkerGil gil;
    try {
      py::object cls = slot->get();
      const Host& host = *slot->host();
      auto [stream, buffers] = call_of(f);
      py::object out = host.construct_actor(cls, stream, buffers, extras_of(host, f));
      auto t = py::reinterpret_borrow<py::tuple>(out);
      if (t.size() != 1) outcome(f.core.get(), out);  // raises the constructor's exception
      // The instance is destroyed on the actor's thread, which holds no runtime lock then.
      return std::shared_ptr<void>(new py::object(t[0]), [](void* p) {
        auto* o = static_cast<py::object*>(p);
        drop(*o);
        delete o;
      });
    } catch (py::error_already_set& e) {
      rethrow_python(e);
    }
  };
}

atl::DynamicMethod method_invoker(std::shared_ptr<Host> host, std::string method) {
  return [host = std::move(host), method = std::move(method)](void* self, CallFrame& f) -> Payload {
    WorkerGil gil;
    try {
      auto [stream, buffers] = call_of(f);
      const auto& instance = *static_cast<py::object*>(self);
      return outcome(f.core.get(),
                     host->run_method(instance, method, stream, buffers, extras_of(*host, f)));
    } catch (py::error_already_set& e) {
      rethrow_python(e);
    }
  };
}

}  // namespace atoll_py
