#include "atoll/registry.hpp"

#include <map>

namespace atl {

struct Registry::Tables {
  // Entries are heap-allocated so their addresses stay valid for the runtime's lifetime.
  std::vector<std::unique_ptr<detail::FunctionEntry>> functions;
  std::unordered_map<std::string_view, const detail::FunctionEntry*> functions_by_name;
  std::unordered_map<std::uintptr_t, const detail::FunctionEntry*> functions_by_key;
  std::vector<std::unique_ptr<detail::ActorClassEntry>> actors;
  std::unordered_map<std::string_view, const detail::ActorClassEntry*> actors_by_name;
  std::map<std::type_index, const detail::ActorClassEntry*> actors_by_type;
};

namespace {
[[noreturn]] void reject(const std::string& message) {
  throw Error(ErrorCategory::invalid_argument, message);
}
}  // namespace

Registry::Registry() : tables_(std::make_unique<Tables>()) {}
Registry::~Registry() = default;
Registry::Registry(Registry&&) noexcept = default;
Registry& Registry::operator=(Registry&&) noexcept = default;

void Registry::add_function(detail::FunctionEntry entry) {
  if (entry.name.empty()) reject("a function needs a non-empty name");
  if (tables_->functions_by_name.contains(entry.name))
    reject("function '" + entry.name + "' is registered twice");
  if (auto it = tables_->functions_by_key.find(entry.key); it != tables_->functions_by_key.end())
    reject("function '" + entry.name + "' is already registered as '" + it->second->name + "'");
  auto owned = std::make_unique<detail::FunctionEntry>(std::move(entry));
  tables_->functions_by_name.emplace(owned->name, owned.get());
  tables_->functions_by_key.emplace(owned->key, owned.get());
  tables_->functions.push_back(std::move(owned));
}

detail::ActorClassEntry& Registry::add_actor_class(std::string name, std::type_index type) {
  if (name.empty()) reject("an actor class needs a non-empty name");
  if (tables_->actors_by_name.contains(name))
    reject("actor class '" + name + "' is registered twice");
  if (tables_->actors_by_type.contains(type))
    reject("actor class '" + name + "': this C++ type is already registered as '" +
           tables_->actors_by_type.at(type)->name + "'");
  auto owned = std::make_unique<detail::ActorClassEntry>();
  owned->name = std::move(name);
  owned->type = type;
  tables_->actors_by_name.emplace(owned->name, owned.get());
  tables_->actors_by_type.emplace(type, owned.get());
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

const detail::FunctionEntry* Registry::find_function(std::string_view name) const noexcept {
  auto it = tables_->functions_by_name.find(name);
  return it == tables_->functions_by_name.end() ? nullptr : it->second;
}

const detail::FunctionEntry* Registry::find_function(std::uintptr_t key) const noexcept {
  auto it = tables_->functions_by_key.find(key);
  return it == tables_->functions_by_key.end() ? nullptr : it->second;
}

const detail::ActorClassEntry* Registry::find_actor_class(std::type_index type) const noexcept {
  auto it = tables_->actors_by_type.find(type);
  return it == tables_->actors_by_type.end() ? nullptr : it->second;
}

const detail::ActorClassEntry* Registry::find_actor_class(std::string_view name) const noexcept {
  auto it = tables_->actors_by_name.find(name);
  return it == tables_->actors_by_name.end() ? nullptr : it->second;
}

std::size_t Registry::function_count() const noexcept {
  return tables_->functions.size();
}
std::size_t Registry::actor_class_count() const noexcept {
  return tables_->actors.size();
}

}  // namespace atl
