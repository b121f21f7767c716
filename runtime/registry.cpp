#include "atoll/registry.hpp"

#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>

namespace atl {

namespace {

// Name and key lookups over entries owned elsewhere.
struct Index {
  std::unordered_map<std::string_view, const detail::FunctionEntry*> functions_by_name;
  std::unordered_map<std::uintptr_t, const detail::FunctionEntry*> functions_by_key;
  std::unordered_map<std::string_view, const detail::ActorClassEntry*> actors_by_name;
  std::map<std::type_index, const detail::ActorClassEntry*> actors_by_type;
};

template <class Map, class Key>
auto find_in(const Map& map, const Key& key) -> typename Map::mapped_type {
  auto it = map.find(key);
  return it == map.end() ? nullptr : it->second;
}

}  // namespace

// Two tiers: entries registered before init (`fixed`), read without locks because nothing changes
// them once a runtime owns the registry, and entries merged at run time (`late`), behind a lock.
// The hot path (rt.task(&fn) looking a C++ function up by address) only touches `fixed`.
struct Registry::Tables {
  // Entries are heap-allocated so their addresses stay valid for the runtime's lifetime.
  std::vector<std::unique_ptr<detail::FunctionEntry>> functions;
  std::vector<std::unique_ptr<detail::ActorClassEntry>> actors;
  Index fixed;
  mutable std::shared_mutex late_mu;
  Index late;
};

namespace {
[[noreturn]] void reject(const std::string& message) {
  throw Error(ErrorCategory::invalid_argument, message);
}

// A dynamic method's key: its position, unique within its class (dynamic classes have no C++
// member pointers to collide with).
detail::MethodKey dynamic_method_key(std::size_t index) {
  detail::MethodKey key;
  std::size_t v = index + 1;
  std::memcpy(key.bytes, &v, sizeof v);
  key.bytes[sizeof key.bytes - 1] = 0xff;
  return key;
}
}  // namespace

Registry::Registry() : tables_(std::make_unique<Tables>()) {}
Registry::~Registry() = default;
Registry::Registry(Registry&&) noexcept = default;
Registry& Registry::operator=(Registry&&) noexcept = default;

void Registry::add_function(detail::FunctionEntry entry) {
  if (entry.name.empty()) reject("a function needs a non-empty name");
  if (find_function(entry.name) != nullptr)
    reject("function '" + entry.name + "' is registered twice");
  if (entry.key != 0)
    if (const auto* other = find_function(entry.key))
      reject("function '" + entry.name + "' is already registered as '" + other->name + "'");
  auto owned = std::make_unique<detail::FunctionEntry>(std::move(entry));
  tables_->fixed.functions_by_name.emplace(owned->name, owned.get());
  if (owned->key != 0) tables_->fixed.functions_by_key.emplace(owned->key, owned.get());
  tables_->functions.push_back(std::move(owned));
}

detail::ActorClassEntry& Registry::add_actor_class(std::string name, std::type_index type) {
  if (name.empty()) reject("an actor class needs a non-empty name");
  if (find_actor_class(name) != nullptr) reject("actor class '" + name + "' is registered twice");
  if (const auto* other = find_actor_class(type))
    reject("actor class '" + name + "': this C++ type is already registered as '" + other->name +
           "'");
  auto owned = std::make_unique<detail::ActorClassEntry>();
  owned->name = std::move(name);
  owned->type = type;
  tables_->fixed.actors_by_name.emplace(owned->name, owned.get());
  tables_->fixed.actors_by_type.emplace(type, owned.get());
  tables_->actors.push_back(std::move(owned));
  return *tables_->actors.back();
}

void Registry::add_constructor(detail::ActorClassEntry& cls, detail::ConstructorEntry ctor) {
  if (cls.find_constructor(ctor.params.size()) != nullptr)
    reject("actor class '" + cls.name + "' has two constructors taking " +
           std::to_string(ctor.params.size()) + " arguments");
  cls.constructors.push_back(std::move(ctor));
}

void Registry::add_method(detail::ActorClassEntry& cls, detail::MethodEntry method) {
  if (method.name.empty()) reject("a method of '" + cls.name + "' needs a non-empty name");
  for (const auto& m : cls.methods) {
    if (m.name == method.name)
      reject("method '" + method.name + "' of '" + cls.name + "' is registered twice");
    if (m.key == method.key)
      reject("method '" + method.name + "' of '" + cls.name + "' is already registered as '" +
             m.name + "'");
  }
  cls.methods.push_back(std::move(method));
}

Registry& Registry::dynamic_function(std::string name, DynamicFunction invoke, std::string code) {
  if (!invoke) reject("dynamic function '" + name + "' needs an invoker");
  detail::FunctionEntry e;
  e.name = std::move(name);
  e.invoke = std::move(invoke);
  e.code = std::move(code);
  add_function(std::move(e));
  return *this;
}

DynamicActorRegistration Registry::dynamic_actor(std::string name, std::type_index tag,
                                                 DynamicConstructor construct, std::string code) {
  if (!construct) reject("dynamic actor class '" + name + "' needs a constructor");
  if (name.empty()) reject("an actor class needs a non-empty name");
  if (find_actor_class(name) != nullptr) reject("actor class '" + name + "' is registered twice");
  // Not indexed by type: the tag is shared by every class of a binding.
  auto owned = std::make_unique<detail::ActorClassEntry>();
  owned->name = std::move(name);
  owned->type = tag;
  owned->code = std::move(code);
  detail::ConstructorEntry ctor;
  ctor.variadic = true;
  ctor.construct = std::move(construct);
  owned->constructors.push_back(std::move(ctor));
  tables_->fixed.actors_by_name.emplace(owned->name, owned.get());
  tables_->actors.push_back(std::move(owned));
  return DynamicActorRegistration(*tables_->actors.back());
}

DynamicActorRegistration& DynamicActorRegistration::method(std::string name, DynamicMethod invoke) {
  if (!invoke) reject("dynamic method '" + name + "' of '" + cls_->name + "' needs an invoker");
  detail::MethodEntry m;
  m.name = std::move(name);
  m.key = dynamic_method_key(cls_->methods.size());
  m.invoke = std::move(invoke);
  Registry::add_method(*cls_, std::move(m));
  return *this;
}

void Registry::merge(Registry&& more) {
  Tables& in = *more.tables_;
  std::unique_lock lock(tables_->late_mu);
  auto taken = [&](auto&& find) { return find(tables_->fixed) || find(tables_->late); };
  // Check everything first so a refused merge adds nothing. (Entries by pair, not structured
  // bindings: clang 14 cannot capture those in a lambda.)
  for (const auto& entry : in.fixed.functions_by_name)
    if (taken([&](const Index& i) { return i.functions_by_name.contains(entry.first); }))
      reject("function '" + std::string(entry.first) + "' is already registered");
  for (const auto& entry : in.fixed.functions_by_key)
    if (taken([&](const Index& i) { return i.functions_by_key.contains(entry.first); }))
      reject("function '" + entry.second->name + "' is already registered under another name");
  for (const auto& entry : in.fixed.actors_by_name)
    if (taken([&](const Index& i) { return i.actors_by_name.contains(entry.first); }))
      reject("actor class '" + std::string(entry.first) + "' is already registered");
  for (const auto& entry : in.fixed.actors_by_type)
    if (taken([&](const Index& i) { return i.actors_by_type.contains(entry.first); }))
      reject("actor class '" + entry.second->name + "': its C++ type is already registered");
  tables_->late.functions_by_name.insert(in.fixed.functions_by_name.begin(),
                                         in.fixed.functions_by_name.end());
  tables_->late.functions_by_key.insert(in.fixed.functions_by_key.begin(),
                                        in.fixed.functions_by_key.end());
  tables_->late.actors_by_name.insert(in.fixed.actors_by_name.begin(),
                                      in.fixed.actors_by_name.end());
  tables_->late.actors_by_type.insert(in.fixed.actors_by_type.begin(),
                                      in.fixed.actors_by_type.end());
  for (auto& f : in.functions) tables_->functions.push_back(std::move(f));
  for (auto& a : in.actors) tables_->actors.push_back(std::move(a));
  in.functions.clear();
  in.actors.clear();
  in.fixed = Index{};
}

const detail::FunctionEntry& Registry::require_function(std::uintptr_t key) const {
  if (const auto* f = find_function(key)) return *f;
  reject(
      "this function is not registered: add it to a module with reg.function(\"name\", &fn) "
      "and pass the module to atl::init");
}

const detail::FunctionEntry& Registry::require_function(std::string_view name) const {
  if (const auto* f = find_function(name)) return *f;
  reject("no function named '" + std::string(name) + "' is registered");
}

const detail::ActorClassEntry& Registry::require_actor_class(std::type_index type) const {
  if (const auto* c = find_actor_class(type)) return *c;
  reject("actor class " + detail::demangle(type.name()) +
         " is not registered: add it to a module with reg.actor<T>(\"Name\")");
}

const detail::ActorClassEntry& Registry::require_actor_class(std::string_view name) const {
  if (const auto* c = find_actor_class(name)) return *c;
  reject("no actor class named '" + std::string(name) + "' is registered");
}

const detail::FunctionEntry* Registry::find_function(std::string_view name) const noexcept {
  if (const auto* f = find_in(tables_->fixed.functions_by_name, name)) return f;
  std::shared_lock lock(tables_->late_mu);
  return find_in(tables_->late.functions_by_name, name);
}

const detail::FunctionEntry* Registry::find_function(std::uintptr_t key) const noexcept {
  if (const auto* f = find_in(tables_->fixed.functions_by_key, key)) return f;
  std::shared_lock lock(tables_->late_mu);
  return find_in(tables_->late.functions_by_key, key);
}

const detail::ActorClassEntry* Registry::find_actor_class(std::type_index type) const noexcept {
  if (const auto* c = find_in(tables_->fixed.actors_by_type, type)) return c;
  std::shared_lock lock(tables_->late_mu);
  return find_in(tables_->late.actors_by_type, type);
}

const detail::ActorClassEntry* Registry::find_actor_class(std::string_view name) const noexcept {
  if (const auto* c = find_in(tables_->fixed.actors_by_name, name)) return c;
  std::shared_lock lock(tables_->late_mu);
  return find_in(tables_->late.actors_by_name, name);
}

std::size_t Registry::function_count() const noexcept {
  std::shared_lock lock(tables_->late_mu);
  return tables_->functions.size();
}
std::size_t Registry::actor_class_count() const noexcept {
  std::shared_lock lock(tables_->late_mu);
  return tables_->actors.size();
}

}  // namespace atl
