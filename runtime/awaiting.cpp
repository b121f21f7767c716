#include "runtime/awaiting.hpp"

#include <limits>
#include <vector>

namespace atl::runtime {

namespace {

// Notifies under its own mutex, so the sleeping thread cannot return (and destroy the waiter)
// before on_ready has finished touching it.
struct BlockingWaiter final : Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;

  void on_ready() noexcept override {
    std::lock_guard lock(mu);
    done = true;
    cv.notify_one();
  }
  bool wait_until(detail::Deadline deadline) {
    std::unique_lock lock(mu);
    if (deadline == detail::no_deadline) {
      cv.wait(lock, [&] { return done; });
      return true;
    }
    return cv.wait_until(lock, deadline, [&] { return done; });
  }
};

// The caller sleeps until `needed` waiters have fired (or, with stop_on_failure, one saw its entry
// fail): on_ready notifies only then, so a batch of results costs the caller one wake-up.
// `needed` is unreachable while waiters are being registered; `cleaning` makes every firing
// notify, for the caller waiting out the on_ready calls already under way.
struct WaitGroup {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t fired = 0;
  std::size_t needed = std::numeric_limits<std::size_t>::max();
  bool stop_on_failure = false;
  bool failed = false;
  bool cleaning = false;

  bool done() const { return fired >= needed || failed; }
};

struct GroupWaiter final : Waiter {
  WaitGroup* group = nullptr;
  const ObjectEntry* entry = nullptr;
  bool fired = false;  // guarded by group->mu

  void on_ready() noexcept override {
    std::lock_guard lock(group->mu);
    fired = true;
    ++group->fired;
    if (group->stop_on_failure &&
        entry->state.load(std::memory_order_acquire) == ObjectState::failed)
      group->failed = true;
    if (group->done() || group->cleaning) group->cv.notify_one();
  }
};

bool has_failed(const ObjectEntry* e) {
  return e->state.load(std::memory_order_acquire) == ObjectState::failed;
}

// Registers a waiter on each entry and sleeps until `num_ready` are resolved (counting those
// resolved already), one has failed (with stop_on_failure), or the deadline passes.
void sleep_on_group(ObjectStore& store, std::span<ObjectEntry* const> entries,
                    std::size_t num_ready, bool stop_on_failure, detail::Deadline deadline,
                    BlockHooks* hooks) {
  WaitGroup group;
  group.stop_on_failure = stop_on_failure;
  std::vector<GroupWaiter> waiters(entries.size());
  std::vector<bool> registered(entries.size(), false);
  std::size_t already = 0;
  bool failed_already = false;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    waiters[i].group = &group;
    waiters[i].entry = entries[i];
    registered[i] = store.add_waiter(entries[i], &waiters[i]);
    if (!registered[i]) {
      ++already;
      failed_already = failed_already || (stop_on_failure && has_failed(entries[i]));
    }
  }
  bool blocked = false;
  {
    std::unique_lock lock(group.mu);
    group.needed = already >= num_ready ? 0 : num_ready - already;
    group.failed = group.failed || failed_already;
    if (!group.done()) {
      // Lends the caller's CPU slot only when it really sleeps.
      blocked = hooks != nullptr;
      if (blocked) {
        lock.unlock();
        hooks->on_block();
        lock.lock();
      }
      auto done = [&] { return group.done(); };
      if (deadline == detail::no_deadline)
        group.cv.wait(lock, done);
      else
        group.cv.wait_until(lock, deadline, done);
    }
    group.cleaning = true;
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!registered[i] || store.remove_waiter(entries[i], &waiters[i])) continue;
    std::unique_lock lock(group.mu);  // unlinked by resolution: let its on_ready finish
    group.cv.wait(lock, [&] { return waiters[i].fired; });
  }
  if (blocked) hooks->on_resume();
}

}  // namespace

bool await_resolved(ObjectStore& store, ObjectEntry* e, detail::Deadline deadline,
                    BlockHooks* hooks, int spin_us) {
  if (e->resolved()) return true;
  if (spin_until([&] { return e->resolved() || detail::Clock::now() >= deadline; }, spin_us))
    return e->resolved();
  BlockingWaiter w;
  if (!store.add_waiter(e, &w)) return true;
  if (hooks != nullptr) hooks->on_block();
  bool ok = w.wait_until(deadline);
  // A resolution racing the deadline has already unlinked the waiter: wait for its on_ready.
  if (!ok && !store.remove_waiter(e, &w)) ok = w.wait_until(detail::no_deadline);
  if (hooks != nullptr) hooks->on_resume();
  return ok;
}

void await_some(ObjectStore& store, std::span<ObjectEntry* const> entries, std::size_t num_ready,
                detail::Deadline deadline, BlockHooks* hooks) {
  auto count_ready = [&] {
    std::size_t n = 0;
    for (ObjectEntry* e : entries) n += e->resolved() ? 1 : 0;
    return n;
  };
  if (count_ready() >= num_ready) return;
  if (spin_until([&] { return count_ready() >= num_ready || detail::Clock::now() >= deadline; },
                 kSpinMicros))
    return;

  sleep_on_group(store, entries, num_ready, false, deadline, hooks);
}

void await_all(ObjectStore& store, std::span<ObjectEntry* const> entries, detail::Deadline deadline,
               BlockHooks* hooks, int spin_us) {
  std::size_t pending = 0;
  ObjectEntry* last_pending = nullptr;
  for (ObjectEntry* e : entries) {
    if (!e->resolved()) {
      ++pending;
      last_pending = e;
    } else if (has_failed(e)) {
      return;
    }
  }
  if (pending == 0) return;
  if (pending == 1) {
    await_resolved(store, last_pending, deadline, hooks, spin_us);
    return;
  }
  sleep_on_group(store, entries, entries.size(), true, deadline, hooks);
}

}  // namespace atl::runtime
