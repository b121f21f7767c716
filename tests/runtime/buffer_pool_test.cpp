// BufferPool: which sizes are pooled, reuse of freed blocks, the cap on cached bytes, and blocks
// that outlive the pool's last outside owner.
#include "runtime/buffer_pool.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

namespace {

using atl::Buffer;
using atl::MutableBuffer;
using atl::runtime::BufferPool;

constexpr std::size_t kMiB = 1 << 20;  // a size the pool does not round up

TEST(BufferPoolTest, small_buffers_are_not_pooled) {
  auto pool = BufferPool::create(16 * kMiB);
  {
    MutableBuffer small = pool->allocate(1024);
    EXPECT_EQ(small.size(), 1024u);
    ASSERT_NE(small.data(), nullptr);
    MutableBuffer just_below = pool->allocate(BufferPool::min_pooled_size - 1);
    EXPECT_EQ(just_below.size(), BufferPool::min_pooled_size - 1);
  }
  EXPECT_EQ(pool->cached_bytes(), 0u);
  {
    MutableBuffer at_threshold = pool->allocate(BufferPool::min_pooled_size);
    EXPECT_EQ(at_threshold.size(), BufferPool::min_pooled_size);
  }
  EXPECT_EQ(pool->cached_bytes(), BufferPool::min_pooled_size);
}

TEST(BufferPoolTest, freed_large_block_is_reused_for_the_same_size) {
  auto pool = BufferPool::create(16 * kMiB);
  std::byte* first = nullptr;
  {
    MutableBuffer mb = pool->allocate(kMiB);
    ASSERT_EQ(mb.size(), kMiB);
    first = mb.data();
    std::memset(first, 0x5a, mb.size());
    EXPECT_EQ(pool->cached_bytes(), 0u);
  }
  EXPECT_EQ(pool->cached_bytes(), kMiB);

  MutableBuffer again = pool->allocate(kMiB);
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(again.size(), kMiB);
  EXPECT_EQ(pool->cached_bytes(), 0u);

  // Through freeze(): the frozen Buffer returns the block when its last copy goes.
  Buffer frozen = std::move(again).freeze();
  Buffer copy = frozen;
  EXPECT_EQ(frozen.data(), first);
  frozen = Buffer();
  EXPECT_EQ(pool->cached_bytes(), 0u);
  copy = Buffer();
  EXPECT_EQ(pool->cached_bytes(), kMiB);
}

TEST(BufferPoolTest, cached_block_is_not_handed_out_for_another_size) {
  auto pool = BufferPool::create(16 * kMiB);
  std::byte* cached = nullptr;
  {
    MutableBuffer mb = pool->allocate(kMiB);
    cached = mb.data();
  }
  ASSERT_EQ(pool->cached_bytes(), kMiB);
  {
    MutableBuffer bigger = pool->allocate(2 * kMiB);
    EXPECT_NE(bigger.data(), cached);  // the cached block is still owned by the pool
    EXPECT_EQ(pool->cached_bytes(), kMiB);
  }
  EXPECT_EQ(pool->cached_bytes(), 3 * kMiB);

  // The cached block is handed out once; a second request of its size gets a fresh block.
  MutableBuffer a = pool->allocate(kMiB);
  MutableBuffer b = pool->allocate(kMiB);
  EXPECT_EQ(a.data(), cached);
  EXPECT_NE(b.data(), cached);
  EXPECT_EQ(pool->cached_bytes(), 2 * kMiB);
}

TEST(BufferPoolTest, cached_bytes_are_capped) {
  auto pool = BufferPool::create(kMiB + kMiB / 2);
  {
    MutableBuffer a = pool->allocate(kMiB);
    MutableBuffer b = pool->allocate(kMiB);
    std::memset(a.data(), 1, a.size());
    std::memset(b.data(), 2, b.size());
  }
  // The second block freed would exceed the cap: it is released instead of cached.
  EXPECT_EQ(pool->cached_bytes(), kMiB);
  {
    MutableBuffer a = pool->allocate(kMiB);
    MutableBuffer b = pool->allocate(kMiB);
    EXPECT_EQ(pool->cached_bytes(), 0u);
    EXPECT_NE(a.data(), b.data());
  }
  EXPECT_EQ(pool->cached_bytes(), kMiB);

  auto no_cache = BufferPool::create(0);
  { MutableBuffer mb = no_cache->allocate(kMiB); }
  EXPECT_EQ(no_cache->cached_bytes(), 0u);
}

TEST(BufferPoolTest, buffers_outlive_the_last_outside_owner_of_the_pool) {
  auto pool = BufferPool::create(16 * kMiB);
  std::weak_ptr<BufferPool> weak = pool;
  MutableBuffer mb = pool->allocate(kMiB);
  Buffer other = [&] {
    MutableBuffer m = pool->allocate(2 * kMiB);
    std::memset(m.data(), 0x33, m.size());
    return std::move(m).freeze();
  }();
  pool.reset();
  EXPECT_FALSE(weak.expired());  // the blocks keep it alive

  std::memset(mb.data(), 0x77, mb.size());
  Buffer frozen = std::move(mb).freeze();
  ASSERT_EQ(frozen.size(), kMiB);
  EXPECT_EQ(frozen.data()[0], std::byte{0x77});
  EXPECT_EQ(frozen.data()[kMiB - 1], std::byte{0x77});
  frozen = Buffer();
  EXPECT_FALSE(weak.expired());
  if (auto alive = weak.lock()) EXPECT_EQ(alive->cached_bytes(), kMiB);

  EXPECT_EQ(other.data()[2 * kMiB - 1], std::byte{0x33});
  other = Buffer();
  EXPECT_TRUE(weak.expired());
}

}  // namespace
