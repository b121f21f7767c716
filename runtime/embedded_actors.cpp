// The actor directory of the embedded runtime: creation, lookup by name, calls, kill and reaping.
#include "runtime/embedded_core.hpp"
#include "runtime/invocation.hpp"

namespace atl::runtime {

namespace {

ActorRecord* record_of(const detail::ActorToken& token) {
  return static_cast<ActorRecord*>(token.record());
}

}  // namespace

std::shared_ptr<detail::ActorToken> EmbeddedCore::create_actor(const detail::ActorClassEntry& cls,
                                                               std::vector<detail::ArgSpec> args,
                                                               const ActorOptions& options) {
  ensure_running();
  if (options.max_concurrency < 1)
    throw Error(ErrorCategory::invalid_argument, "max_concurrency must be at least 1");
  if (options.max_restarts < -1)
    throw Error(ErrorCategory::invalid_argument, "max_restarts must be -1 (always) or more");
  require_constructor(cls, args);
  for (const auto& a : args)
    if ((a.ref && &a.ref->core() != this) || (a.actor && &a.actor->core() != this))
      throw Error(ErrorCategory::invalid_argument,
                  "a constructor argument of '" + cls.name + "' belongs to another runtime");
  SchedulingClass* sched = scheduler_.class_for(options);
  ActorId id = next_id<ActorId>();
  ActorRecord* record;
  {
    std::lock_guard lock(actors_mu_);
    if (!options.name.empty()) {
      auto it = named_actors_.find(options.name);
      if (it != named_actors_.end() && !it->second->dead())
        throw Error(ErrorCategory::invalid_argument,
                    "an actor named '" + options.name + "' already exists");
    }
    auto owned = std::make_unique<ActorRecord>(actor_services_, id, cls, options.name,
                                               options.max_concurrency, sched, std::move(args));
    record = owned.get();
    record->add_handle();
    actors_.emplace(id, std::move(owned));
    if (!options.name.empty()) named_actors_[options.name] = record;
  }
  auto token = std::make_shared<detail::ActorToken>(self_, id, record, &cls);
  auto placement = new TaskRecord;
  placement->id = TaskId{id.owner, id.sequence};
  placement->actor = record;
  placement->places_actor = true;
  placement->cls = sched;
  schedule(placement);
  return token;
}

std::shared_ptr<detail::ActorToken> EmbeddedCore::find_actor(std::string_view name,
                                                             std::type_index type) {
  ensure_running();
  std::lock_guard lock(actors_mu_);
  auto it = named_actors_.find(std::string(name));
  if (it == named_actors_.end() || it->second->dead()) return nullptr;
  ActorRecord* record = it->second;
  if (type != typeid(void) && record->actor_class().type != type)
    throw Error(ErrorCategory::invalid_argument, "actor '" + std::string(name) + "' is a '" +
                                                     record->actor_class().name + "', not a " +
                                                     detail::demangle(type.name()));
  record->add_handle();
  return std::make_shared<detail::ActorToken>(self_, record->id(), record, &record->actor_class());
}

std::shared_ptr<detail::RefToken> EmbeddedCore::submit_actor_call(
    const detail::ActorToken& actor, const detail::MethodEntry& method,
    std::vector<detail::ArgSpec> args) {
  ensure_running();
  if (&actor.core() != this)
    throw Error(ErrorCategory::invalid_argument, "the ActorHandle belongs to another runtime");
  for (const auto& a : args)
    if ((a.ref && &a.ref->core() != this) || (a.actor && &a.actor->core() != this))
      throw Error(ErrorCategory::invalid_argument,
                  "an argument of '" + method.name + "' belongs to another runtime");
  ObjectId id = next_id<ObjectId>();
  ObjectEntry* result = store_.create(id, 2);  // the caller's token and the call
  auto token = std::make_shared<detail::RefToken>(self_, id, result);
  record_of(actor)->enqueue(method, std::move(args), result);
  return token;
}

void EmbeddedCore::kill_actor(const detail::ActorToken& actor) {
  if (&actor.core() != this)
    throw Error(ErrorCategory::invalid_argument, "the ActorHandle belongs to another runtime");
  ActorRecord* record = record_of(actor);
  record->kill(
      make_error(ErrorKind::actor_died, "actor " + record->display_name() + " was killed"));
}

void EmbeddedCore::release_actor(void* record) noexcept {
  static_cast<ActorRecord*>(record)->release_handle();
}

void EmbeddedCore::actor_died(ActorRecord* actor) {
  std::lock_guard lock(actors_mu_);
  if (actor->name().empty()) return;
  auto it = named_actors_.find(actor->name());
  if (it != named_actors_.end() && it->second == actor) named_actors_.erase(it);
}

void EmbeddedCore::actor_reapable(ActorRecord* actor) {
  {
    std::lock_guard lock(actors_mu_);
    reapable_.push_back(actor);
  }
  maintenance_cv_.notify_one();
}

void EmbeddedCore::reap_actors() {
  std::vector<std::unique_ptr<ActorRecord>> done;
  {
    std::lock_guard lock(actors_mu_);
    for (ActorRecord* a : reapable_) {
      auto it = actors_.find(a->id());
      if (it == actors_.end()) continue;
      done.push_back(std::move(it->second));
      actors_.erase(it);
    }
    reapable_.clear();
  }
  done.clear();  // joins the actors' threads outside the lock
}

}  // namespace atl::runtime
