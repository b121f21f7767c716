#include "runtime/shared_memory.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "atoll/errors.hpp"
#include "atoll/serialization.hpp"
#include "runtime/wire_values.hpp"

namespace {

using namespace atl::runtime;

TEST(SharedMemoryPoolTest, a_freed_block_is_reused_for_the_same_size) {
  auto pool = SharedMemoryPool::create(8 << 20);
  const std::byte* first;
  {
    atl::MutableBuffer block = pool->allocate(1 << 20);
    std::memset(block.data(), 7, block.size());
    first = block.data();
  }
  EXPECT_EQ(pool->cached_bytes(), 1u << 20);
  atl::MutableBuffer again = pool->allocate((1 << 20) - 100);  // rounds to the same capacity
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(pool->cached_bytes(), 0u);
  atl::MutableBuffer other = pool->allocate(1 << 20);  // the cached one is taken: a new file
  EXPECT_NE(other.data(), first);
}

TEST(SharedMemoryPoolTest, blocks_beyond_the_cache_limit_are_freed) {
  auto pool = SharedMemoryPool::create(1 << 20);
  {
    atl::MutableBuffer a = pool->allocate(1 << 20);
    atl::MutableBuffer b = pool->allocate(1 << 20);
  }
  EXPECT_EQ(pool->cached_bytes(), 1u << 20);
  EXPECT_THROW(pool->allocate(0), atl::Error);
}

TEST(SharedMemoryTest, a_slice_knows_where_it_lies_in_its_file) {
  auto pool = SharedMemoryPool::create(0);
  atl::MutableBuffer block = pool->allocate(64 << 10);
  for (std::size_t i = 0; i < block.size(); ++i) block.data()[i] = std::byte(i % 251);
  atl::Buffer whole = std::move(block).freeze();
  atl::Buffer part = whole.slice(5000, 1000);
  auto span = shared_span_of(part);
  ASSERT_TRUE(span.has_value());
  EXPECT_EQ(span->offset, 5000u);
  EXPECT_EQ(span->size, 1000u);
  EXPECT_FALSE(shared_span_of(atl::Buffer::copy_of("heap", 4)).has_value());
  EXPECT_FALSE(shared_span_of(atl::Buffer()).has_value());

  // Another mapping of the same file (as a worker makes) sees the same bytes.
  atl::Buffer mapped = map_shared(reopen_read_only(span->fd), span->offset, span->size);
  ASSERT_EQ(mapped.size(), 1000u);
  EXPECT_EQ(std::memcmp(mapped.data(), part.data(), 1000), 0);
  auto remapped = shared_span_of(mapped);
  ASSERT_TRUE(remapped.has_value());
  EXPECT_EQ(remapped->offset, 5000u);
}

TEST(SharedMemoryTest, a_process_given_a_block_can_neither_write_nor_truncate_it) {
  auto pool = SharedMemoryPool::create(1 << 20);
  for (int pooled = 0; pooled < 2; ++pooled) {
    atl::MutableBuffer block = pooled ? pool->allocate(4096) : allocate_shared(4096);
    std::memset(block.data(), 1, block.size());  // its creator still writes through its mapping
    atl::Buffer value = std::move(block).freeze();
    int fd = shared_span_of(value)->fd;
    EXPECT_TRUE(is_sealed(fd));
    int ro = reopen_read_only(fd);
    EXPECT_EQ(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0), MAP_FAILED);
    EXPECT_EQ(::write(ro, "x", 1), -1);
    // Reopened read-write through /proc, as job code could: still no writes, no truncation (which
    // would make the creator's next read fault with SIGBUS).
    std::string path = "/proc/self/fd/" + std::to_string(ro);
    int rw = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(rw, 0);
    EXPECT_EQ(::ftruncate(rw, 0), -1);
    EXPECT_EQ(::pwrite(rw, "x", 1, 0), -1);
    EXPECT_EQ(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0), MAP_FAILED);
    EXPECT_EQ(value.data()[0], std::byte{1});
    ::close(rw);
    ::close(ro);
  }
  int plain = ::memfd_create("unsealed", MFD_CLOEXEC);
  EXPECT_FALSE(is_sealed(plain));
  ::close(plain);
}

TEST(SharedMemoryPoolTest, a_reused_block_shows_nothing_of_its_last_object) {
  auto pool = SharedMemoryPool::create(8 << 20);
  {
    atl::MutableBuffer secret = pool->allocate(1 << 20);
    std::memset(secret.data(), 's', secret.size());
  }
  atl::MutableBuffer smaller = pool->allocate((1 << 20) - 8192);  // the same block, reused
  atl::Buffer value = std::move(smaller).freeze();
  auto span = shared_span_of(value);
  atl::Buffer whole = map_shared(reopen_read_only(span->fd), 0, 1 << 20);  // as a reader could
  for (std::size_t i = value.size(); i < whole.size(); ++i)
    ASSERT_EQ(whole.data()[i], std::byte{0}) << i;
}

TEST(SharedMemoryTest, a_range_outside_the_file_or_a_non_file_is_refused) {
  atl::Buffer value = allocate_shared(4096).freeze();
  int fd = shared_span_of(value)->fd;
  try {
    map_shared(::dup(fd), 4000, 200);
    FAIL() << "a range past the end was mapped";
  } catch (const atl::Error& e) {
    EXPECT_EQ(e.category(), atl::ErrorCategory::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("outside its file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(map_shared(::dup(fd), ~0ull, 2), atl::Error);  // no overflow past the check
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ::close(pipe_fds[1]);
  EXPECT_THROW(map_shared(pipe_fds[0], 0, 1), atl::Error);  // closed by map_shared
  bool unmapped = false;
  {
    atl::Buffer b = map_shared(::dup(fd), 0, 100, true, [&] { unmapped = true; });
    EXPECT_FALSE(unmapped);
  }
  EXPECT_TRUE(unmapped);
}

TEST(WireValuesTest, a_buffer_is_a_msgpack_bin_between_processes) {
  atl::Buffer bytes = atl::Buffer::copy_of("hello", 5);
  atl::detail::Payload p = atl::detail::serialize(bytes);
  ASSERT_TRUE(p.out_of_band);
  std::string wire = wire_string(p);
  ASSERT_EQ(wire.size(), wire_size(p));
  // Any msgpack reader sees a bin: here, as a std::string parameter would.
  atl::detail::Payload as_msgpack;
  as_msgpack.bytes = wire;
  EXPECT_EQ(atl::detail::deserialize<std::string>(as_msgpack), "hello");

  // Read back from a block, the Buffer is a slice of that block, not a copy.
  atl::Buffer block = atl::Buffer::copy_of(wire.data(), wire.size());
  atl::detail::Payload back = payload_of(block);
  ASSERT_TRUE(back.out_of_band);
  EXPECT_EQ(back.buffer.data(), block.data() + 5);
  EXPECT_EQ(atl::detail::deserialize<atl::Buffer>(back).size(), 5u);
  // Types that read a bin read an out-of-band Buffer too; others refuse it clearly.
  EXPECT_EQ(atl::detail::deserialize<std::vector<char>>(back).size(), 5u);
  EXPECT_THROW(atl::detail::deserialize<int>(back), atl::SerializationError);

  // A short bin header (bin8) is a Buffer as well; other values stay msgpack bytes.
  const char bin8[] = {static_cast<char>(0xc4), 2, 'o', 'k'};
  EXPECT_TRUE(payload_of(atl::Buffer::copy_of(bin8, 4)).out_of_band);
  EXPECT_FALSE(payload_of(atl::Buffer::copy_of(bin8, 3)).out_of_band);  // truncated: not a bin
  std::string number = atl::detail::serialize(42).bytes;
  atl::detail::Payload n = payload_of(atl::Buffer::copy_of(number.data(), number.size()));
  EXPECT_FALSE(n.out_of_band);
  EXPECT_EQ(atl::detail::deserialize<int>(n), 42);
}

TEST(WireValuesTest, a_bindings_value_with_a_block_travels_as_its_ext_then_the_block) {
  // A binding's value: one msgpack ext 32 (here 3 body bytes) plus an out-of-band block.
  atl::detail::Payload p;
  p.bytes = std::string("\xc9\x00\x00\x00\x03\x50\x01\x02\x03", 9);
  p.buffer = atl::Buffer::copy_of("block!", 6);
  p.out_of_band = true;
  std::string wire = wire_string(p);
  ASSERT_EQ(wire.size(), wire_size(p));
  EXPECT_EQ(wire, p.bytes + "block!");

  // From a block (shared memory, the data plane): the block part is a slice, not a copy.
  atl::Buffer block = atl::Buffer::copy_of(wire.data(), wire.size());
  atl::detail::Payload back = payload_of(block);
  ASSERT_TRUE(back.out_of_band);
  EXPECT_EQ(back.bytes, p.bytes);
  EXPECT_EQ(back.buffer.data(), block.data() + 9);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(back.buffer.data()), back.buffer.size()),
            "block!");
  // Inline (a control message, a worker's frame): the same split, copied.
  atl::detail::Payload inline_back = payload_of(wire.data(), wire.size());
  ASSERT_TRUE(inline_back.out_of_band);
  EXPECT_EQ(inline_back.bytes, p.bytes);
  EXPECT_EQ(inline_back.buffer.size(), 6u);

  // An ext alone stays msgpack bytes; one whose length runs past the end is not split.
  atl::detail::Payload lone = payload_of(p.bytes.data(), p.bytes.size());
  EXPECT_FALSE(lone.out_of_band);
  EXPECT_EQ(lone.bytes, p.bytes);
  std::string truncated("\xc9\x00\x00\x01\x00\x50\x01", 7);
  EXPECT_FALSE(payload_of(truncated.data(), truncated.size()).out_of_band);
  // Bytes with a block that are not one ext value cannot be split again: refused when written.
  atl::detail::Payload bad = p;
  bad.bytes = atl::detail::serialize(7).bytes;
  EXPECT_THROW(wire_string(bad), atl::Error);
}

}  // namespace
