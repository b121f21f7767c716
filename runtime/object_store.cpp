#include "runtime/object_store.hpp"

#include <string>

namespace atl::runtime {

ObjectEntry* ObjectStore::create(ObjectId id, std::int64_t refs) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = entries_.try_emplace(id);
  if (!inserted) throw Error(ErrorCategory::failed, "object " + id.to_string() + " exists already");
  it->second.id = id;
  it->second.refs.store(refs, std::memory_order_relaxed);
  return &it->second;
}

std::pair<ObjectEntry*, bool> ObjectStore::find_or_create(ObjectId id) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = entries_.try_emplace(id);
  // An existing entry whose count just reached zero is kept: `release` checks again under mu_.
  it->second.refs.fetch_add(1, std::memory_order_relaxed);
  if (inserted) it->second.id = id;
  return {&it->second, inserted};
}

bool ObjectStore::contains(ObjectId id) const {
  std::lock_guard lock(mu_);
  return entries_.contains(id);
}

bool ObjectStore::reserve(std::uint64_t bytes) noexcept {
  std::uint64_t used = bytes_.load(std::memory_order_relaxed);
  do {
    if (bytes > capacity_ || used > capacity_ - bytes) return false;
  } while (!bytes_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  return true;
}

ObjectStore::SealResult ObjectStore::seal(ObjectEntry* e, detail::Payload value) {
  const std::uint64_t size = value.size_bytes();
  if (!reserve(size)) {
    std::string message = "object store full: a value of " + std::to_string(size) +
                          " bytes does not fit (" + std::to_string(bytes_used()) + " of " +
                          std::to_string(capacity_) + " bytes in use)";
    return fail(e, make_error(ErrorKind::store_full, std::move(message)))
               ? SealResult::full
               : SealResult::already_resolved;
  }
  Waiter* waiters;
  {
    std::unique_lock lock(e->mu);
    if (e->state.load(std::memory_order_relaxed) != ObjectState::pending) {
      bytes_.fetch_sub(size, std::memory_order_relaxed);
      return SealResult::already_resolved;
    }
    e->value = std::move(value);
    e->state.store(ObjectState::ready, std::memory_order_release);
    waiters = std::exchange(e->waiters, nullptr);
  }
  while (waiters != nullptr) {
    Waiter* next = waiters->next;  // read first: on_ready may free the waiter
    waiters->on_ready();
    waiters = next;
  }
  return SealResult::sealed;
}

bool ObjectStore::fail(ObjectEntry* e, ErrorPtr error) {
  Waiter* waiters;
  {
    std::unique_lock lock(e->mu);
    if (e->state.load(std::memory_order_relaxed) != ObjectState::pending) return false;
    e->error = std::move(error);
    e->state.store(ObjectState::failed, std::memory_order_release);
    waiters = std::exchange(e->waiters, nullptr);
  }
  while (waiters != nullptr) {
    Waiter* next = waiters->next;
    waiters->on_ready();
    waiters = next;
  }
  return true;
}

bool ObjectStore::add_waiter(ObjectEntry* e, Waiter* w) {
  std::lock_guard lock(e->mu);
  if (e->state.load(std::memory_order_relaxed) != ObjectState::pending) return false;
  w->next = e->waiters;
  e->waiters = w;
  return true;
}

bool ObjectStore::remove_waiter(ObjectEntry* e, Waiter* w) {
  std::lock_guard lock(e->mu);
  for (Waiter** p = &e->waiters; *p != nullptr; p = &(*p)->next) {
    if (*p == w) {
      *p = w->next;
      return true;
    }
  }
  return false;
}

void ObjectStore::release(ObjectEntry* e) noexcept {
  // Read the id first: once the count drops, another releaser may erase the entry.
  const ObjectId id = e->id;
  if (e->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.refs.load(std::memory_order_acquire) != 0) return;
    if (it->second.state.load(std::memory_order_acquire) == ObjectState::ready)
      bytes_.fetch_sub(it->second.value.size_bytes(), std::memory_order_relaxed);
    entries_.erase(it);
  }
  if (on_erase_) on_erase_(id);
}

void ObjectStore::fail_all_pending(const ErrorPtr& error) {
  std::vector<ObjectEntry*> pending;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, e] : entries_) {
      if (e.resolved()) continue;
      add_ref(&e);  // keep it alive while we fail it outside the lock
      pending.push_back(&e);
    }
  }
  for (ObjectEntry* e : pending) {
    fail(e, error);
    release(e);
  }
}

bool ObjectStore::has_room_for(std::uint64_t bytes) const noexcept {
  return bytes <= capacity_ && bytes_used() <= capacity_ - bytes;
}

std::uint64_t ObjectStore::object_count() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace atl::runtime
