// await_all and await_some (runtime/awaiting.*): a caller that waits for many objects sleeps until
// its goal is met (every one resolved, one failed, enough ready, or the deadline), however the
// resolutions race with its waiters being registered and unregistered.
#include "runtime/awaiting.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace {

using atl::ErrorKind;
using atl::ObjectId;
using atl::detail::Payload;
using atl::runtime::BlockHooks;
using atl::runtime::make_error;
using atl::runtime::ObjectEntry;
using atl::runtime::ObjectStore;

constexpr auto kWait = std::chrono::seconds(10);

Payload bytes(std::size_t n) {
  Payload p;
  p.bytes.assign(n, 'x');
  return p;
}

struct Entries {
  explicit Entries(ObjectStore& s, int n) : store(s) {
    for (int i = 0; i < n; ++i) list.push_back(store.create(ObjectId{3, std::uint64_t(i + 1)}, 1));
  }
  ~Entries() {
    for (ObjectEntry* e : list) store.release(e);
  }
  ObjectStore& store;
  std::vector<ObjectEntry*> list;
};

struct CountingHooks final : BlockHooks {
  std::atomic<int> blocked{0}, resumed{0};
  void on_block() noexcept override { blocked.fetch_add(1); }
  void on_resume() noexcept override { resumed.fetch_add(1); }
};

std::size_t resolved_count(const std::vector<ObjectEntry*>& list) {
  std::size_t n = 0;
  for (ObjectEntry* e : list) n += e->resolved() ? 1 : 0;
  return n;
}

TEST(AwaitingTest, await_all_returns_once_every_entry_is_resolved) {
  ObjectStore store(1 << 20);
  Entries entries(store, 64);
  std::thread sealer([&] {
    for (ObjectEntry* e : entries.list) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      store.seal(e, bytes(8));
    }
  });
  CountingHooks hooks;
  atl::runtime::await_all(store, entries.list, atl::detail::deadline_after(kWait), &hooks);
  EXPECT_EQ(resolved_count(entries.list), entries.list.size());
  sealer.join();
  EXPECT_EQ(hooks.blocked.load(), hooks.resumed.load());
}

TEST(AwaitingTest, await_all_returns_when_one_entry_fails_while_others_stay_pending) {
  ObjectStore store(1 << 20);
  Entries entries(store, 8);
  std::thread failer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    store.seal(entries.list[0], bytes(8));
    store.fail(entries.list[5], make_error(ErrorKind::cancelled, "cancelled"));
  });
  atl::runtime::await_all(store, entries.list, atl::detail::deadline_after(kWait), nullptr);
  EXPECT_TRUE(entries.list[5]->resolved());
  EXPECT_FALSE(entries.list[7]->resolved());
  failer.join();
  // The waiters of the entries still pending were unlinked: resolving them touches nothing freed.
  for (ObjectEntry* e : entries.list) store.seal(e, bytes(8));
}

TEST(AwaitingTest, await_all_returns_at_once_for_an_entry_failed_already) {
  ObjectStore store(1 << 20);
  Entries entries(store, 3);
  store.fail(entries.list[1], make_error(ErrorKind::cancelled, "cancelled"));
  CountingHooks hooks;
  atl::runtime::await_all(store, entries.list, atl::detail::deadline_after(kWait), &hooks);
  EXPECT_EQ(hooks.blocked.load(), 0);
  EXPECT_FALSE(entries.list[0]->resolved());
}

TEST(AwaitingTest, await_all_gives_up_at_the_deadline) {
  ObjectStore store(1 << 20);
  Entries entries(store, 4);
  store.seal(entries.list[2], bytes(8));
  atl::runtime::await_all(store, entries.list,
                          atl::detail::deadline_after(std::chrono::milliseconds(20)), nullptr);
  EXPECT_EQ(resolved_count(entries.list), 1u);
  for (ObjectEntry* e : entries.list) store.seal(e, bytes(8));  // no waiter left behind
}

TEST(AwaitingTest, await_all_with_one_pending_entry_waits_for_it) {
  ObjectStore store(1 << 20);
  Entries entries(store, 3);
  store.seal(entries.list[0], bytes(8));
  store.seal(entries.list[2], bytes(8));
  std::thread sealer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    store.seal(entries.list[1], bytes(8));
  });
  atl::runtime::await_all(store, entries.list, atl::detail::deadline_after(kWait), nullptr, 10);
  EXPECT_TRUE(entries.list[1]->resolved());
  sealer.join();
}

TEST(AwaitingTest, await_some_wakes_when_enough_are_ready) {
  ObjectStore store(1 << 20);
  Entries entries(store, 10);
  std::thread sealer([&] {
    for (int i = 0; i < 4; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      store.seal(entries.list[i * 2], bytes(8));
    }
  });
  atl::runtime::await_some(store, entries.list, 4, atl::detail::deadline_after(kWait), nullptr);
  EXPECT_GE(resolved_count(entries.list), 4u);
  sealer.join();
  for (ObjectEntry* e : entries.list) store.seal(e, bytes(8));
}

// Resolutions race the registration and the unregistration of the group's waiters, over and over
// (TSan and ASan builds check the hand-offs).
TEST(AwaitingTest, await_all_races_with_resolution) {
  for (int round = 0; round < 200; ++round) {
    ObjectStore store(1 << 20);
    Entries entries(store, 16);
    std::thread resolver([&] {
      for (std::size_t i = 0; i < entries.list.size(); ++i) {
        if (round % 4 == 3 && i == 9)
          store.fail(entries.list[i], make_error(ErrorKind::cancelled, "x"));
        else
          store.seal(entries.list[i], bytes(8));
      }
    });
    atl::runtime::await_all(store, entries.list, atl::detail::deadline_after(kWait), nullptr, 0);
    if (round % 4 != 3) EXPECT_EQ(resolved_count(entries.list), entries.list.size());
    resolver.join();
  }
}

}  // namespace
