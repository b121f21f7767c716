// Blocking until objects resolve: spin briefly (most results arrive within microseconds), then
// sleep on a waiter. Optional hooks run around the sleep, so a worker can lend its CPU slot.
#pragma once

#include <condition_variable>
#include <mutex>
#include <span>

#include "atoll/detail/core.hpp"
#include "runtime/object_store.hpp"

namespace atl::runtime {

class BlockHooks {
 public:
  virtual void on_block() noexcept = 0;
  virtual void on_resume() noexcept = 0;

 protected:
  ~BlockHooks() = default;
};

// Spins, yielding the core, until `ready()` or about `budget_us` microseconds have passed.
template <class Ready>
bool spin_until(Ready ready, int budget_us);

// How long a blocked caller spins (yielding its core) before sleeping. In one process an answer
// comes within microseconds; a cluster driver's comes back over several process hops (~150-200
// µs on loopback), so it spins long enough to catch it without a futex sleep and wake-up.
inline constexpr int kSpinMicros = 50;
inline constexpr int kClusterSpinMicros = 300;

// True once `e` is resolved; false when the deadline passed first.
bool await_resolved(ObjectStore& store, ObjectEntry* e, detail::Deadline deadline,
                    BlockHooks* hooks, int spin_us = kSpinMicros);

// Waits until `num_ready` of `entries` are resolved or the deadline passes. Never returns early.
void await_some(ObjectStore& store, std::span<ObjectEntry* const> entries, std::size_t num_ready,
                detail::Deadline deadline, BlockHooks* hooks);

// Waits until every entry is resolved, one of them has failed, or the deadline passes. It spins
// only while a single entry is pending: when many are, results arrive one by one, and a caller
// that sleeps and wakes once costs the processes producing them less CPU than one that yields
// its core for each.
void await_all(ObjectStore& store, std::span<ObjectEntry* const> entries, detail::Deadline deadline,
               BlockHooks* hooks, int spin_us = kSpinMicros);

}  // namespace atl::runtime

#include <chrono>
#include <thread>

namespace atl::runtime {

template <class Ready>
bool spin_until(Ready ready, int budget_us) {
  for (int i = 0; i < 64; ++i) {
    if (ready()) return true;
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
  auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(budget_us);
  while (std::chrono::steady_clock::now() < end) {
    if (ready()) return true;
    std::this_thread::yield();
  }
  return ready();
}

}  // namespace atl::runtime
