// The driver's side of cluster actors: creation (a round trip, so a bad class or a taken name is
// an error at the call site), lookup by name, calls in submission order, kill and release.
#include <capnp/message.h>

#include "runtime/cluster_core.hpp"

#include "runtime/invocation.hpp"
#include "runtime/object_ops.hpp"
#include "runtime/wire_values.hpp"

namespace atl::runtime {

namespace {
constexpr std::chrono::seconds kHeadAnswerTimeout{60};
}  // namespace

const detail::ActorClassEntry& ClusterCore::actor_class(std::type_index type) const {
  return registry_.require_actor_class(type);
}

const detail::ActorClassEntry& ClusterCore::actor_class_by_name(std::string_view name) const {
  return registry_.require_actor_class(name);
}

std::shared_ptr<detail::ActorToken> ClusterCore::create_actor(const detail::ActorClassEntry& cls,
                                                              std::vector<detail::ArgSpec> args,
                                                              const ActorOptions& options) {
  ensure_running();
  if (options.max_concurrency < 1 ||
      static_cast<std::uint32_t>(options.max_concurrency) > transport::kMaxActorConcurrency)
    throw Error(
        ErrorCategory::invalid_argument,
        "max_concurrency must be between 1 and " + std::to_string(transport::kMaxActorConcurrency));
  if (options.max_restarts < -1)
    throw Error(ErrorCategory::invalid_argument, "max_restarts must be -1 (always) or more");
  require_constructor(cls, args);
  check_arguments(args, "the constructor of '" + cls.name + "'");

  ActorId id{owner_, next_sequence_.fetch_add(1)};
  transport::ControlMessage msg;
  auto spec = msg.initRoot<wire::Envelope>().getBody().initCreateActor();
  set_actor_key(spec.initActor(), id);
  spec.setModuleHash(module_hash_);
  spec.setModuleName(options_.job_module.name);
  spec.setClassName(cls.name);
  if (!cls.code.empty()) spec.setCode(cls.code);
  spec.setName(options.name);
  spec.setMaxConcurrency(static_cast<std::uint32_t>(options.max_concurrency));
  spec.setMaxRestarts(options.max_restarts);
  ResourceRequest resources = resource_request(options);
  write_resources(spec.initResources(static_cast<unsigned>(resources.size())), resources);
  std::vector<LabelSelector> selector = options.label_selector;
  if (!cls.code.empty()) selector.push_back(python_nodes());
  write_selectors(spec.initLabelSelector(static_cast<unsigned>(selector.size())), selector);
  write_selectors(spec.initPreferredLabels(static_cast<unsigned>(options.preferred_labels.size())),
                  options.preferred_labels);
  // Constructor arguments given as ObjectRefs are resolved here first: creation returns once the
  // head has registered the actor, so errors surface at the call site.
  auto values = spec.initArgs(static_cast<unsigned>(args.size()));
  std::size_t inline_bytes = 0;
  std::vector<ArgRefOut> refs;
  std::vector<ActorArg> actors;
  for (unsigned i = 0; i < args.size(); ++i) {
    const detail::Payload* p = &args[i].value;
    if (args[i].kind == detail::ArgSpec::Kind::actor) {
      actors.push_back(actor_arg(i, *args[i].actor));
      continue;
    }
    if (args[i].kind == detail::ArgSpec::Kind::pass_ref) {
      // It must exist (this raises the input's error), but its bytes stay where they are.
      get_object(store_, entry_for(*this, *args[i].ref), args[i].ref->id(), detail::no_deadline,
                 nullptr, kClusterSpinMicros);
      refs.push_back(reference_to(i, *args[i].ref));
      continue;
    }
    if (args[i].kind == detail::ArgSpec::Kind::resolve_ref)
      p = &get(*args[i].ref, detail::no_deadline);
    std::string scratch;
    const std::string& bytes = wire_bytes(*p, scratch);
    inline_bytes += bytes.size();
    if (inline_bytes > kMaxInlineCallBytes)
      throw Error(ErrorCategory::invalid_argument,
                  "the constructor arguments of '" + cls.name + "' add up to more than " +
                      std::to_string(kMaxInlineCallBytes) +
                      " bytes, more than a control message carries; give the actor large "
                      "values through a method that takes them from a task's result");
    values.set(i,
               capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
  }
  write_arg_refs(spec.initArgRefs(static_cast<unsigned>(refs.size())), refs);
  write_actor_args(spec.initActorArgs(static_cast<unsigned>(actors.size())), actors);
  HeadReply reply = request(msg, kHeadAnswerTimeout);
  if (!reply.error.empty())
    throw Error(ErrorCategory::invalid_argument,
                "the head refused to create actor '" + cls.name + "': " + reply.error);
  auto actor = std::make_unique<ClusterActor>();
  actor->id = id;
  actor->cls = &cls;
  actor->name = options.name;
  actor->owned = true;
  actor->handles = 1;
  ClusterActor* raw = actor.get();
  std::vector<detail::ArgSpec> pins;
  for (auto& a : args)
    if (a.kind == detail::ArgSpec::Kind::pass_ref || a.kind == detail::ArgSpec::Kind::actor)
      pins.push_back(std::move(a));
  {
    std::lock_guard lock(mu_);
    actors_[id] = std::move(actor);
    if (!pins.empty()) actor_pins_[id] = std::move(pins);
  }
  return std::make_shared<detail::ActorToken>(self_, id, raw, &cls);
}

namespace {
// The type of a binding's classes known here only through a handle.
struct HandleOnlyClass {};
}  // namespace

std::shared_ptr<detail::ActorToken> ClusterCore::adopt_actor(const ActorArg& arg) {
  ensure_running();
  const ActorId& id = arg.actor;
  std::string class_name = arg.class_name;
  const detail::ActorClassEntry* cls = registry_.find_actor_class(class_name);
  if (!arg.code.empty() && (cls == nullptr || cls->code != arg.code)) {
    // A binding's class this process lacks, or has under that name with other code (another
    // job's `Counter`): known by a name of its own, so neither shadows the other (and a handle
    // passed on keeps it).
    std::string suffix = "@" + arg.code.substr(0, 16);
    if (!class_name.ends_with(suffix)) class_name += suffix;
    cls = registry_.find_actor_class(class_name);
  }
  if (cls == nullptr && !arg.code.empty()) {
    // Never constructed nor run here: its calls go to the actor, wherever it lives.
    auto refuse = [class_name]() {
      return Error(ErrorCategory::unimplemented,
                   "actor class '" + class_name + "' is known here only through a handle");
    };
    Registry more;
    auto added = more.dynamic_actor(
        class_name, typeid(HandleOnlyClass),
        [refuse](detail::CallFrame&) -> std::shared_ptr<void> { throw refuse(); }, arg.code);
    for (const auto& m : arg.methods)
      added.method(m, [refuse](void*, detail::CallFrame&) -> detail::Payload { throw refuse(); });
    try {
      registry_.merge(std::move(more));
    } catch (const Error&) {
      // Another thread adopted a handle of this class first: theirs is as good.
    }
    cls = registry_.find_actor_class(class_name);
  }
  if (cls == nullptr)
    throw Error(ErrorCategory::invalid_argument,
                "no actor class named '" + class_name + "' is registered in the job's module");
  ClusterActor* raw;
  {
    std::lock_guard lock(mu_);
    auto& actor = actors_[id];
    if (!actor) {
      actor = std::make_unique<ClusterActor>();  // not owned: its owner decides when it ends
      actor->id = id;
      actor->cls = cls;
    }
    ++actor->handles;
    actor->released = false;
    raw = actor.get();
  }
  return std::make_shared<detail::ActorToken>(self_, id, raw, cls);
}

std::shared_ptr<detail::ActorToken> ClusterCore::find_actor(std::string_view name,
                                                            std::type_index type) {
  ensure_running();
  const detail::ActorClassEntry* wanted =
      type == typeid(void) ? nullptr : &registry_.require_actor_class(type);
  transport::ControlMessage msg;
  msg.initRoot<wire::Envelope>().getBody().initLookupActor().setName(std::string(name));
  HeadReply reply = request(msg, kHeadAnswerTimeout);
  if (!reply.error.empty())
    throw Error(ErrorCategory::failed,
                "looking up actor '" + std::string(name) + "' failed: " + reply.error);
  if (!reply.found) return nullptr;
  if (wanted != nullptr && reply.class_name != wanted->name)
    throw Error(ErrorCategory::invalid_argument, "actor '" + std::string(name) + "' is a '" +
                                                     reply.class_name + "', not a '" +
                                                     wanted->name + "'");
  const detail::ActorClassEntry* found = registry_.find_actor_class(reply.class_name);
  if (found == nullptr)
    throw Error(ErrorCategory::invalid_argument,
                "actor '" + std::string(name) + "' is a '" + reply.class_name +
                    "', which this driver's module does not register");
  const detail::ActorClassEntry& cls = *found;
  ClusterActor* raw;
  {
    std::lock_guard lock(mu_);
    auto& actor = actors_[reply.actor];
    if (!actor) {
      actor = std::make_unique<ClusterActor>();
      actor->id = reply.actor;
      actor->cls = &cls;
      actor->name = std::string(name);
    }
    ++actor->handles;
    actor->released = false;
    raw = actor.get();
  }
  return std::make_shared<detail::ActorToken>(self_, reply.actor, raw, &cls);
}

std::shared_ptr<detail::RefToken> ClusterCore::submit_actor_call(
    const detail::ActorToken& actor, const detail::MethodEntry& method,
    std::vector<detail::ArgSpec> args) {
  ensure_running();
  if (&actor.core() != this)
    throw Error(ErrorCategory::invalid_argument, "the ActorHandle belongs to another runtime");
  check_arguments(args, "'" + method.name + "'");
  auto task = std::make_unique<PendingTask>();
  task->method = &method;
  task->actor = static_cast<ClusterActor*>(actor.record());
  task->name = actor.actor_class().name + "." + method.name;
  return register_task(std::move(task), std::move(args));
}

void ClusterCore::flush_actor(const ActorId& id) {
  std::vector<detail::ArgSpec> unpinned;  // released after mu_
  std::vector<std::pair<std::uint64_t, ErrorPtr>> failed;
  {
    std::lock_guard lock(mu_);
    auto found = actors_.find(id);
    if (found == actors_.end()) return;
    ClusterActor* actor = found->second.get();
    while (!actor->outbox.empty()) {
      std::uint64_t seq = actor->outbox.front();
      auto it = pending_.find(seq);
      if (it != pending_.end() && !it->second->finished) {
        PendingTask& t = *it->second;
        if (t.waiting > 0) break;  // its arguments are not ready: later calls wait behind it
        transport::ControlMessage msg;
        auto call = msg.initRoot<wire::Envelope>().getBody().initActorCall();
        set_actor_key(call.initActor(), actor->id);
        call.setTaskId(seq);
        call.setMethod(t.method->name);
        // Objects held elsewhere (and large values of this driver's) go as references: the
        // actor's node fetches them, keeping the calls in this order.
        std::vector<ArgRefOut> refs;
        std::vector<ActorArg> actors;
        ErrorPtr error =
            write_args(call.initArgs(static_cast<unsigned>(t.args.size())), t, refs, actors);
        write_arg_refs(call.initArgRefs(static_cast<unsigned>(refs.size())), refs);
        write_actor_args(call.initActorArgs(static_cast<unsigned>(actors.size())), actors);
        set_object_key(call.initResult(), ObjectId{owner_, seq});
        if (!error && (!conn_ || !lost_.empty()))
          error = make_error(ErrorKind::shutdown, lost_.empty() ? "the runtime shut down" : lost_);
        if (error) {
          failed.emplace_back(seq, std::move(error));
        } else {
          t.sent = true;
          conn_->send(msg);  // with mu_ held: calls leave in the order they were submitted
        }
      }
      actor->outbox.pop_front();
    }
    if (actor->outbox.empty() && actor->released) {
      if (actor->owned && actor->name.empty()) {
        if (conn_ && lost_.empty()) {
          transport::ControlMessage msg;
          set_actor_key(msg.initRoot<wire::Envelope>().getBody().initStopActor().initActor(),
                        actor->id);
          conn_->send(msg);  // after its last call: the actor ends once that one ran
        }
        if (auto pins = actor_pins_.extract(actor->id)) unpinned = std::move(pins.mapped());
      }
      actors_.erase(actor->id);
    }
  }
  for (auto& [seq, error] : failed) complete(seq, nullptr, error);
}

void ClusterCore::kill_actor(const detail::ActorToken& actor) {
  if (&actor.core() != this)
    throw Error(ErrorCategory::invalid_argument, "the ActorHandle belongs to another runtime");
  ensure_running();
  transport::ControlMessage msg;
  auto stop = msg.initRoot<wire::Envelope>().getBody().initStopActor();
  set_actor_key(stop.initActor(), actor.id());
  stop.setKill(true);
  std::vector<detail::ArgSpec> unpinned;  // released after mu_
  std::lock_guard lock(mu_);
  if (conn_) conn_->send(msg);
  if (auto pins = actor_pins_.extract(actor.id())) unpinned = std::move(pins.mapped());
}

void ClusterCore::release_actor(void* record) noexcept {
  auto* actor = static_cast<ClusterActor*>(record);  // alive: this handle still counts
  ActorId id;
  {
    std::lock_guard lock(mu_);
    if (--actor->handles > 0) return;
    actor->released = true;
    id = actor->id;
  }
  flush_actor(id);
}

}  // namespace atl::runtime
