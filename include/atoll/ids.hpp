// atoll/ids.hpp — identifiers of objects, tasks and actors.
//
// An id is 128 bits: the high word names the runtime (or, in a cluster, the owner) that minted it,
// the low word is a sequence number. Ids are values: cheap to copy, hashable, comparable.
//
// Example:
//   atl::ObjectId id = ref.id();
//   std::cout << id.to_string();   // "3f2a…:0000000000000007"
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>

namespace atl {

template <class Tag>
struct Id {
  std::uint64_t owner = 0;
  std::uint64_t sequence = 0;

  bool is_nil() const noexcept { return owner == 0 && sequence == 0; }
  std::string to_string() const;
  friend auto operator<=>(const Id&, const Id&) = default;
};

struct ObjectTag;
struct TaskTag;
struct ActorTag;
using ObjectId = Id<ObjectTag>;
using TaskId = Id<TaskTag>;
using ActorId = Id<ActorTag>;

std::string format_id(std::uint64_t owner, std::uint64_t sequence);

template <class Tag>
std::string Id<Tag>::to_string() const {
  return format_id(owner, sequence);
}

}  // namespace atl

template <class Tag>
struct std::hash<atl::Id<Tag>> {
  std::size_t operator()(const atl::Id<Tag>& id) const noexcept {
    // The sequence already differs between ids of one owner; mixing in the owner keeps ids of
    // different owners apart.
    return static_cast<std::size_t>(id.sequence * 0x9E3779B97F4A7C15ull ^ id.owner);
  }
};
