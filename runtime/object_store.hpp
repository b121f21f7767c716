// The object store of one node: values and errors by ObjectId, with reference counts and waiters.
//
// An entry is created pending, then resolved exactly once — with a value (`seal`) or an error
// (`fail`); whichever comes first wins, so a cancel racing a result is safe. Once resolved, an
// entry is immutable and read without locks. Whoever touches an entry holds a reference to it
// (an ObjectRef's token, a pending task's argument, a task's own result); the entry is erased when
// the count reaches zero.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "atoll/detail/core.hpp"
#include "runtime/error_info.hpp"

namespace atl::runtime {

// Told once when an entry is resolved. The store calls on_ready after unlinking the waiter and
// outside its locks; the waiter may be destroyed by on_ready's effects.
struct Waiter {
  virtual void on_ready() noexcept = 0;
  Waiter* next = nullptr;

 protected:
  ~Waiter() = default;
};

enum class ObjectState : std::uint8_t { pending, ready, failed };

struct ObjectEntry {
  ObjectId id;
  std::atomic<std::int64_t> refs{0};
  std::atomic<ObjectState> state{ObjectState::pending};
  detail::Payload value;  // written once, before `state` becomes ready
  ErrorPtr error;         // written once, before `state` becomes failed
  std::mutex mu;          // guards waiters and the transition out of pending
  Waiter* waiters = nullptr;

  bool resolved() const noexcept {
    return state.load(std::memory_order_acquire) != ObjectState::pending;
  }
};

class ObjectStore {
 public:
  explicit ObjectStore(std::uint64_t capacity_bytes) : capacity_(capacity_bytes) {}
  // Called (outside the store's locks, on the releasing thread) after an entry is erased. Set it
  // before the store is shared; a cluster driver uses it to free values held on nodes.
  void set_on_erase(std::function<void(const ObjectId&)> hook) { on_erase_ = std::move(hook); }
  ObjectStore(const ObjectStore&) = delete;
  ObjectStore& operator=(const ObjectStore&) = delete;

  // A new pending entry holding `refs` references.
  ObjectEntry* create(ObjectId id, std::int64_t refs);
  // The entry of `id` with one more reference, or a new pending one holding one (`created`).
  std::pair<ObjectEntry*, bool> find_or_create(ObjectId id);
  bool contains(ObjectId id) const;

  enum class SealResult { sealed, already_resolved, full };
  // Stores the value unless the entry is resolved already or the store has no room for it (then
  // the entry is failed with store_full and `full` is returned).
  SealResult seal(ObjectEntry* e, detail::Payload value);
  bool fail(ObjectEntry* e, ErrorPtr error);

  // False (waiter not added) when the entry is already resolved.
  bool add_waiter(ObjectEntry* e, Waiter* w);
  // False when the waiter was already unlinked by resolution (its on_ready is due or done).
  bool remove_waiter(ObjectEntry* e, Waiter* w);

  void add_ref(ObjectEntry* e) noexcept { e->refs.fetch_add(1, std::memory_order_relaxed); }
  void release(ObjectEntry* e) noexcept;

  // Fails every pending entry (used at shutdown).
  void fail_all_pending(const ErrorPtr& error);

  bool has_room_for(std::uint64_t bytes) const noexcept;
  std::uint64_t object_count() const;
  std::uint64_t bytes_used() const noexcept { return bytes_.load(std::memory_order_relaxed); }
  std::uint64_t capacity() const noexcept { return capacity_; }

 private:
  // Claims `bytes` of capacity atomically; false when they do not fit.
  bool reserve(std::uint64_t bytes) noexcept;

  const std::uint64_t capacity_;
  std::function<void(const ObjectId&)> on_erase_;
  std::atomic<std::uint64_t> bytes_{0};
  mutable std::mutex mu_;
  std::unordered_map<ObjectId, ObjectEntry> entries_;  // node-based: entry addresses are stable
};

}  // namespace atl::runtime
