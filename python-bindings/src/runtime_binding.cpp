#include "python-bindings/src/runtime_binding.hpp"

#include <pybind11/stl.h>

#include <chrono>

#include "python-bindings/src/payload.hpp"
#include "runtime/cluster_core.hpp"
#include "runtime/embedded_core.hpp"

namespace atoll_py {

namespace {

atl::detail::Deadline deadline_of(std::optional<double> timeout) {
  if (!timeout) return atl::detail::no_deadline;
  if (*timeout < 0)
    throw atl::Error(atl::ErrorCategory::invalid_argument, "timeout must not be negative");
  if (*timeout > 1e9) return atl::detail::no_deadline;
  return atl::detail::deadline_after(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(*timeout)));
}

atl::InitOptions init_options(std::vector<atl::NodeOptions> nodes, std::uint64_t memory,
                              double infeasible_timeout_s) {
  atl::InitOptions o;
  o.nodes = std::move(nodes);
  o.object_store_memory = memory;
  o.infeasible_timeout = std::chrono::milliseconds(static_cast<long>(infeasible_timeout_s * 1000));
  return o;
}

}  // namespace

PyRuntime::PyRuntime(std::vector<atl::NodeOptions> nodes, std::uint64_t object_store_memory,
                     double infeasible_timeout_s, const py::object& executor)
    : runtime_(atl::runtime::EmbeddedCore::create(
          init_options(std::move(nodes), object_store_memory, infeasible_timeout_s))),
      host_(std::make_shared<Host>(executor)) {}

PyRuntime::~PyRuntime() {
  py::gil_scoped_release unlocked;  // workers may be waiting for the GIL to finish their task
  runtime_.shutdown();
}

PyRuntime::PyRuntime(std::shared_ptr<atl::detail::Core> borrowed, const py::object& executor)
    : runtime_(nullptr),
      borrowed_(std::move(borrowed)),
      host_(std::make_shared<Host>(executor)),
      cluster_(true) {}

std::string PyRuntime::upload_code(const std::string& pickled) {
  if (!cluster_) return {};
  auto& cluster = static_cast<atl::runtime::ClusterCore&>(*core());
  py::gil_scoped_release unlocked;  // waits for the head
  return cluster.upload_code(std::as_bytes(std::span(pickled)));
}

FunctionEntryRef PyRuntime::register_function(const std::string& name, const py::bytes& pickled) {
  auto slot = std::make_shared<CodeSlot>(host_, name, std::string(pickled));
  std::string code = upload_code(std::string(pickled));
  atl::RuntimeRef(core()).extend(
      [&](atl::Registry& reg) { reg.dynamic_function(name, function_invoker(slot), code); });
  return {core(), &core()->function_by_name(name)};
}

ActorClassRef PyRuntime::register_actor_class(const std::string& name, const py::bytes& pickled,
                                              const std::vector<std::string>& methods) {
  auto slot = std::make_shared<CodeSlot>(host_, name, std::string(pickled));
  std::string code = upload_code(std::string(pickled));
  const atl::detail::ActorClassEntry* entry = nullptr;
  atl::RuntimeRef(core()).extend([&](atl::Registry& reg) {
    auto cls = reg.dynamic_actor(name, typeid(PythonActorTag), actor_constructor(slot), code);
    for (const auto& m : methods) cls.method(m, method_invoker(host_, m));
    entry = &cls.entry();
  });
  return {core(), entry};
}

std::vector<atl::detail::ArgSpec> PyRuntime::call_args(const py::handle& stream,
                                                       const py::handle& buffers,
                                                       const py::list& refs) {
  using Kind = atl::detail::ArgSpec::Kind;
  std::vector<atl::detail::ArgSpec> args(1 + refs.size());
  args[0].value = encode_payload(core().get(), stream, buffers);
  std::size_t i = 1;
  for (py::handle item : refs) {
    auto pair = py::reinterpret_borrow<py::tuple>(item);
    auto kind = static_cast<RefKind>(pair[0].cast<int>());
    atl::detail::ArgSpec& a = args[i++];
    if (kind == RefKind::actor) {
      a.kind = Kind::actor;
      a.actor = pair[1].cast<const ActorToken&>().token;
    } else {
      a.kind = kind == RefKind::resolve ? Kind::resolve_ref : Kind::pass_ref;
      a.ref = pair[1].cast<const ObjectRefHandle&>().token;
    }
  }
  return args;
}

ObjectRefHandle PyRuntime::submit_task(const FunctionEntryRef& fn, const py::handle& stream,
                                       const py::handle& buffers, const py::list& refs,
                                       const atl::TaskOptions* options) {
  if (fn.core != core())
    throw atl::Error(atl::ErrorCategory::invalid_argument,
                     "this function was registered with another runtime");
  return {core()->submit_task(*fn.entry, call_args(stream, buffers, refs), options)};
}

ActorToken PyRuntime::create_actor(const ActorClassRef& cls, const py::handle& stream,
                                   const py::handle& buffers, const py::list& refs,
                                   const atl::ActorOptions& options) {
  if (cls.core != core())
    throw atl::Error(atl::ErrorCategory::invalid_argument,
                     "this actor class was registered with another runtime");
  return {core()->create_actor(*cls.entry, call_args(stream, buffers, refs), options)};
}

ObjectRefHandle PyRuntime::call_method(const ActorToken& actor, const std::string& method,
                                       const py::handle& stream, const py::handle& buffers,
                                       const py::list& refs) {
  const auto* m = actor.token->actor_class().find_method(method);
  if (m == nullptr)
    throw atl::Error(
        atl::ErrorCategory::invalid_argument,
        "actor class '" + actor.token->actor_class().name + "' has no method '" + method + "'");
  return {core()->submit_actor_call(*actor.token, *m, call_args(stream, buffers, refs))};
}

ObjectRefHandle PyRuntime::put(const py::handle& stream, const py::handle& buffers) {
  return {core()->put(encode_payload(core().get(), stream, buffers))};
}

py::list PyRuntime::get(const std::vector<ObjectRefHandle>& refs, std::optional<double> timeout) {
  std::vector<const atl::detail::Payload*> payloads(refs.size());
  {
    py::gil_scoped_release unlocked;
    atl::detail::Deadline deadline = deadline_of(timeout);
    if (refs.size() > 1) {
      std::vector<const atl::detail::RefToken*> tokens;
      tokens.reserve(refs.size());
      for (const auto& r : refs) tokens.push_back(r.token.get());
      core()->await_all(tokens, deadline);  // one wake-up for the batch
    }
    for (std::size_t i = 0; i < refs.size(); ++i)
      payloads[i] = &core()->get(*refs[i].token, deadline);
  }
  py::list out(refs.size());
  for (std::size_t i = 0; i < refs.size(); ++i) out[i] = load_value(*host_, *payloads[i]);
  return out;
}

std::vector<bool> PyRuntime::wait(const std::vector<ObjectRefHandle>& refs, std::size_t num_ready,
                                  std::optional<double> timeout) {
  std::vector<const atl::detail::RefToken*> tokens;
  tokens.reserve(refs.size());
  for (const auto& r : refs) tokens.push_back(r.token.get());
  std::vector<bool> ready;
  py::gil_scoped_release unlocked;
  core()->wait(tokens, num_ready, deadline_of(timeout), ready);
  return ready;
}

bool PyRuntime::cancel(const ObjectRefHandle& ref) {
  return core()->cancel(*ref.token);
}

void PyRuntime::kill(const ActorToken& actor) {
  core()->kill_actor(*actor.token);
}

std::optional<ActorToken> PyRuntime::get_actor(const std::string& name) {
  auto token = core()->find_actor(name, typeid(void));  // Python's or C++'s
  if (!token) return std::nullopt;
  return ActorToken{std::move(token)};
}

py::dict PyRuntime::stats() const {
  atl::RuntimeStats s = core()->stats();
  py::dict d;
  d["objects"] = s.objects;
  d["object_bytes"] = s.object_bytes;
  d["object_store_capacity"] = s.object_store_capacity;
  d["tasks_submitted"] = s.tasks_submitted;
  d["tasks_finished"] = s.tasks_finished;
  d["tasks_queued"] = s.tasks_queued;
  d["actors_alive"] = s.actors_alive;
  d["worker_threads"] = s.worker_threads;
  d["nodes"] = s.nodes;
  return d;
}

void PyRuntime::shutdown() {
  py::gil_scoped_release unlocked;
  runtime_.shutdown();
}

}  // namespace atoll_py
