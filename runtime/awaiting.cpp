#include "runtime/awaiting.hpp"

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

struct WaitGroup {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t fired = 0;
};

struct GroupWaiter final : Waiter {
  WaitGroup* group = nullptr;
  bool fired = false;  // guarded by group->mu

  void on_ready() noexcept override {
    std::lock_guard lock(group->mu);
    fired = true;
    ++group->fired;
    group->cv.notify_one();
  }
};

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

  WaitGroup group;
  std::vector<GroupWaiter> waiters(entries.size());
  std::vector<bool> registered(entries.size(), false);
  std::size_t already = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    waiters[i].group = &group;
    registered[i] = store.add_waiter(entries[i], &waiters[i]);
    if (!registered[i]) ++already;
  }
  if (hooks != nullptr) hooks->on_block();
  {
    std::unique_lock lock(group.mu);
    auto enough = [&] { return already + group.fired >= num_ready; };
    if (deadline == detail::no_deadline)
      group.cv.wait(lock, enough);
    else
      group.cv.wait_until(lock, deadline, enough);
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!registered[i] || store.remove_waiter(entries[i], &waiters[i])) continue;
    std::unique_lock lock(group.mu);  // unlinked by resolution: let its on_ready finish
    group.cv.wait(lock, [&] { return waiters[i].fired; });
  }
  if (hooks != nullptr) hooks->on_resume();
}

}  // namespace atl::runtime
