// ObjectStore: resolve-once semantics, waiters, reference counts, capacity, shutdown failure, and
// concurrent sealing and awaiting.
#include "runtime/object_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "runtime/awaiting.hpp"

namespace {

using atl::ErrorKind;
using atl::ObjectId;
using atl::detail::Payload;
using atl::runtime::BlockHooks;
using atl::runtime::ErrorPtr;
using atl::runtime::make_error;
using atl::runtime::ObjectEntry;
using atl::runtime::ObjectState;
using atl::runtime::ObjectStore;
using atl::runtime::Waiter;
using SealResult = ObjectStore::SealResult;

constexpr auto kWait = std::chrono::seconds(10);

Payload bytes(std::size_t n, char fill = 'x') {
  Payload p;
  p.bytes.assign(n, fill);
  return p;
}

ObjectId id(std::uint64_t sequence) {
  return ObjectId{7, sequence};
}

struct CountingWaiter final : Waiter {
  std::atomic<int> calls{0};
  void on_ready() noexcept override { calls.fetch_add(1); }
};

TEST(ObjectStoreTest, seal_then_fail_is_refused) {
  ObjectStore store(1024);
  ObjectEntry* e = store.create(id(1), 1);
  EXPECT_FALSE(e->resolved());
  EXPECT_EQ(store.seal(e, bytes(10, 'a')), SealResult::sealed);
  EXPECT_FALSE(store.fail(e, make_error(ErrorKind::cancelled, "too late")));
  EXPECT_EQ(store.seal(e, bytes(20, 'b')), SealResult::already_resolved);
  EXPECT_EQ(e->state.load(), ObjectState::ready);
  EXPECT_EQ(e->value.bytes, std::string(10, 'a'));
  EXPECT_EQ(e->error, nullptr);
  EXPECT_EQ(store.bytes_used(), 10u);
}

TEST(ObjectStoreTest, fail_then_seal_is_refused) {
  ObjectStore store(1024);
  ObjectEntry* e = store.create(id(1), 1);
  ErrorPtr first = make_error(ErrorKind::cancelled, "cancelled");
  EXPECT_TRUE(store.fail(e, first));
  EXPECT_FALSE(store.fail(e, make_error(ErrorKind::object_lost, "lost")));
  EXPECT_EQ(store.seal(e, bytes(10)), SealResult::already_resolved);
  EXPECT_EQ(e->state.load(), ObjectState::failed);
  EXPECT_EQ(e->error, first);
  EXPECT_TRUE(e->value.bytes.empty());
  EXPECT_EQ(store.bytes_used(), 0u);
}

TEST(ObjectStoreTest, create_refuses_an_existing_id) {
  ObjectStore store(1024);
  store.create(id(1), 1);
  EXPECT_THROW(store.create(id(1), 1), atl::Error);
  EXPECT_EQ(store.object_count(), 1u);
}

TEST(ObjectStoreTest, waiters_are_told_once_on_seal) {
  ObjectStore store(1024);
  ObjectEntry* e = store.create(id(1), 1);
  CountingWaiter a, b, late;
  EXPECT_TRUE(store.add_waiter(e, &a));
  EXPECT_TRUE(store.add_waiter(e, &b));
  EXPECT_EQ(a.calls.load(), 0);
  ASSERT_EQ(store.seal(e, bytes(4)), SealResult::sealed);
  EXPECT_EQ(a.calls.load(), 1);
  EXPECT_EQ(b.calls.load(), 1);
  EXPECT_FALSE(store.add_waiter(e, &late));
  EXPECT_FALSE(store.fail(e, make_error(ErrorKind::cancelled, "x")));
  EXPECT_EQ(a.calls.load(), 1);
  EXPECT_EQ(b.calls.load(), 1);
  EXPECT_EQ(late.calls.load(), 0);
}

TEST(ObjectStoreTest, waiters_are_told_once_on_fail) {
  ObjectStore store(1024);
  ObjectEntry* e = store.create(id(1), 1);
  CountingWaiter a, late;
  EXPECT_TRUE(store.add_waiter(e, &a));
  ASSERT_TRUE(store.fail(e, make_error(ErrorKind::cancelled, "x")));
  EXPECT_EQ(a.calls.load(), 1);
  EXPECT_FALSE(store.add_waiter(e, &late));
  EXPECT_EQ(store.seal(e, bytes(4)), SealResult::already_resolved);
  EXPECT_EQ(a.calls.load(), 1);
  EXPECT_EQ(late.calls.load(), 0);
}

TEST(ObjectStoreTest, removed_waiter_is_not_told) {
  ObjectStore store(1024);
  ObjectEntry* e = store.create(id(1), 1);
  CountingWaiter a, b, c;
  ASSERT_TRUE(store.add_waiter(e, &a));
  ASSERT_TRUE(store.add_waiter(e, &b));
  ASSERT_TRUE(store.add_waiter(e, &c));
  EXPECT_TRUE(store.remove_waiter(e, &b));  // from the middle of the list
  EXPECT_FALSE(store.remove_waiter(e, &b));
  ASSERT_EQ(store.seal(e, bytes(4)), SealResult::sealed);
  EXPECT_EQ(a.calls.load(), 1);
  EXPECT_EQ(b.calls.load(), 0);
  EXPECT_EQ(c.calls.load(), 1);
  // Resolution already unlinked the others.
  EXPECT_FALSE(store.remove_waiter(e, &a));
  EXPECT_FALSE(store.remove_waiter(e, &c));
}

TEST(ObjectStoreTest, last_release_erases_the_entry_and_its_bytes) {
  ObjectStore store(1024);
  ObjectEntry* e = store.create(id(1), 2);
  ObjectEntry* other = store.create(id(2), 1);
  ASSERT_EQ(store.seal(e, bytes(100)), SealResult::sealed);
  ASSERT_EQ(store.seal(other, bytes(30)), SealResult::sealed);
  EXPECT_EQ(store.object_count(), 2u);
  EXPECT_EQ(store.bytes_used(), 130u);

  store.release(e);
  EXPECT_EQ(store.object_count(), 2u);
  store.add_ref(e);
  store.release(e);
  EXPECT_EQ(store.object_count(), 2u);
  store.release(e);
  EXPECT_EQ(store.object_count(), 1u);
  EXPECT_EQ(store.bytes_used(), 30u);
  store.release(other);
  EXPECT_EQ(store.object_count(), 0u);
  EXPECT_EQ(store.bytes_used(), 0u);

  // The id is free again once erased; pending and failed entries are erased as well.
  ObjectEntry* again = store.create(id(1), 1);
  store.release(again);
  ObjectEntry* failed = store.create(id(3), 1);
  ASSERT_TRUE(store.fail(failed, make_error(ErrorKind::cancelled, "x")));
  store.release(failed);
  EXPECT_EQ(store.object_count(), 0u);
  EXPECT_EQ(store.bytes_used(), 0u);
}

TEST(ObjectStoreTest, value_larger_than_free_space_fails_with_store_full) {
  ObjectStore store(100);
  ObjectEntry* a = store.create(id(1), 1);
  ObjectEntry* b = store.create(id(2), 1);
  ObjectEntry* c = store.create(id(3), 1);
  ASSERT_EQ(store.seal(a, bytes(60)), SealResult::sealed);
  EXPECT_FALSE(store.has_room_for(41));
  EXPECT_TRUE(store.has_room_for(40));

  CountingWaiter w;
  ASSERT_TRUE(store.add_waiter(b, &w));
  EXPECT_EQ(store.seal(b, bytes(41)), SealResult::full);
  EXPECT_EQ(b->state.load(), ObjectState::failed);
  ASSERT_NE(b->error, nullptr);
  EXPECT_EQ(b->error->kind, ErrorKind::store_full);
  EXPECT_EQ(w.calls.load(), 1);
  EXPECT_EQ(store.bytes_used(), 60u);
  // A full store does not turn an already resolved entry into a failure.
  EXPECT_EQ(store.seal(b, bytes(41)), SealResult::already_resolved);

  EXPECT_EQ(store.seal(c, bytes(40)), SealResult::sealed);  // exactly fills the store
  EXPECT_EQ(store.bytes_used(), 100u);
  EXPECT_FALSE(store.has_room_for(1));

  store.release(a);
  ObjectEntry* d = store.create(id(4), 1);
  EXPECT_EQ(store.seal(d, bytes(60)), SealResult::sealed);
  ObjectEntry* huge = store.create(id(5), 1);
  EXPECT_EQ(store.seal(huge, bytes(101)), SealResult::full);
}

TEST(ObjectStoreTest, fail_all_pending_fails_only_pending_entries) {
  ObjectStore store(1024);
  ObjectEntry* pending = store.create(id(1), 1);
  ObjectEntry* sealed = store.create(id(2), 1);
  ObjectEntry* failed = store.create(id(3), 1);
  ASSERT_EQ(store.seal(sealed, bytes(8)), SealResult::sealed);
  ErrorPtr earlier = make_error(ErrorKind::cancelled, "cancelled");
  ASSERT_TRUE(store.fail(failed, earlier));
  CountingWaiter w;
  ASSERT_TRUE(store.add_waiter(pending, &w));

  ErrorPtr shutdown = make_error(ErrorKind::shutdown, "shutting down");
  store.fail_all_pending(shutdown);
  EXPECT_EQ(pending->state.load(), ObjectState::failed);
  EXPECT_EQ(pending->error, shutdown);
  EXPECT_EQ(w.calls.load(), 1);
  EXPECT_EQ(sealed->state.load(), ObjectState::ready);
  EXPECT_EQ(sealed->error, nullptr);
  EXPECT_EQ(failed->error, earlier);
  // The references it took while failing are given back; the entries are still there.
  EXPECT_EQ(store.object_count(), 3u);
  EXPECT_EQ(pending->refs.load(), 1);
  EXPECT_EQ(store.bytes_used(), 8u);
}

struct CountingHooks final : BlockHooks {
  std::atomic<int> blocked{0}, resumed{0};
  void on_block() noexcept override { blocked.fetch_add(1); }
  void on_resume() noexcept override { resumed.fetch_add(1); }
};

TEST(ObjectStoreTest, await_resolved_returns_false_at_the_deadline) {
  ObjectStore store(1024);
  ObjectEntry* e = store.create(id(1), 1);
  CountingHooks hooks;
  auto deadline = atl::detail::deadline_after(std::chrono::milliseconds(20));
  EXPECT_FALSE(atl::runtime::await_resolved(store, e, deadline, &hooks));
  EXPECT_EQ(hooks.blocked.load(), hooks.resumed.load());
  EXPECT_LE(hooks.blocked.load(), 1);
  // The timed-out waiter was unlinked: resolving now must not touch it.
  EXPECT_EQ(store.seal(e, bytes(4)), SealResult::sealed);
  EXPECT_TRUE(atl::runtime::await_resolved(store, e, deadline, nullptr));
}

// Sealers, failers, awaiters and raw waiters race on the same entries: every await succeeds and
// every registered waiter is told exactly once.
TEST(ObjectStoreTest, concurrent_seal_fail_and_await) {
  constexpr int kEntries = 256;
  constexpr int kResolvers = 4;
  constexpr int kAwaiters = 4;
  ObjectStore store(1 << 20);
  std::vector<ObjectEntry*> entries;
  for (int i = 0; i < kEntries; ++i) entries.push_back(store.create(id(i + 1), 1));
  std::vector<CountingWaiter> waiters(kEntries);
  std::vector<char> registered(kEntries, 0);
  std::atomic<int> awaited{0}, sealed{0}, failed{0};
  std::latch start(kResolvers + kAwaiters + 1);
  std::vector<std::thread> threads;

  for (int r = 0; r < kResolvers; ++r) {
    threads.emplace_back([&, r] {
      start.arrive_and_wait();
      // Every entry is raced by two resolvers, one sealing and one failing.
      for (int i = r / 2; i < kEntries; i += kResolvers / 2) {
        if (r % 2 == 0) {
          if (store.seal(entries[i], bytes(16)) == SealResult::sealed) sealed.fetch_add(1);
        } else if (store.fail(entries[i], make_error(ErrorKind::cancelled, "x"))) {
          failed.fetch_add(1);
        }
      }
    });
  }
  for (int a = 0; a < kAwaiters; ++a) {
    threads.emplace_back([&, a] {
      start.arrive_and_wait();
      for (int i = 0; i < kEntries; ++i) {
        ObjectEntry* e = entries[(i + a * 37) % kEntries];
        auto deadline = atl::detail::deadline_after(kWait);
        if (atl::runtime::await_resolved(store, e, deadline, nullptr)) awaited.fetch_add(1);
      }
    });
  }
  threads.emplace_back([&] {
    start.arrive_and_wait();
    for (int i = 0; i < kEntries; ++i) registered[i] = store.add_waiter(entries[i], &waiters[i]);
  });
  for (auto& t : threads) t.join();

  EXPECT_EQ(awaited.load(), kEntries * kAwaiters);
  EXPECT_EQ(sealed.load() + failed.load(), kEntries);  // each entry resolved exactly once
  EXPECT_EQ(store.bytes_used(), static_cast<std::uint64_t>(sealed.load()) * 16);
  for (int i = 0; i < kEntries; ++i) {
    EXPECT_TRUE(entries[i]->resolved());
    EXPECT_EQ(waiters[i].calls.load(), registered[i] ? 1 : 0) << "entry " << i;
  }
  for (ObjectEntry* e : entries) store.release(e);
  EXPECT_EQ(store.object_count(), 0u);
  EXPECT_EQ(store.bytes_used(), 0u);
}

}  // namespace
