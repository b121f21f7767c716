// Shared memory for objects on one node: blocks are memfd files mapped into the node agent, so a
// worker process of that node reads an object by mapping the same file (its descriptor travels
// over the worker's socket with SCM_RIGHTS) instead of receiving a copy — the role Plasma's mmap'd
// store plays in Ray.
//
// Fresh shared pages are expensive to fault in (about 0.75 s per GiB on a small VM, more than a
// loopback transfer of the same bytes), so `SharedMemoryPool` keeps freed blocks, like
// BufferPool, and hands them out again for the same rounded size. A block lent to a worker only
// returns to the pool once the worker has unmapped it (the node keeps a reference until then), so
// reuse never changes bytes a reader still sees.
//
// Errors: Error(overloaded) when the system refuses memory for a block; Error(invalid_argument)
// when a descriptor handed to `map_shared` is not a file large enough for the range.
//
// Thread-safety: every function and the pool's methods may be called from any thread; blocks keep
// their pool alive.
//
// Example (a node agent lending an argument to its worker):
//   auto pool = SharedMemoryPool::create(1ull << 30);
//   MutableBuffer block = pool->allocate(size);    // filled by the data plane
//   Buffer value = std::move(block).freeze();
//   if (auto span = shared_span_of(value)) send_fd(reopen_read_only(span->fd));
//   // in the worker:  Buffer arg = map_shared(fd, offset, size);
#pragma once

#include <fcntl.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "atoll/buffer.hpp"

namespace atl::runtime {

class SharedMemoryPool : public std::enable_shared_from_this<SharedMemoryPool> {
 public:
  // Keeps up to `max_cached_bytes` of freed blocks for reuse.
  static std::shared_ptr<SharedMemoryPool> create(std::uint64_t max_cached_bytes);
  ~SharedMemoryPool();
  SharedMemoryPool(const SharedMemoryPool&) = delete;
  SharedMemoryPool& operator=(const SharedMemoryPool&) = delete;

  // A writable block of `size` bytes (> 0) in a memfd file. Contents are unspecified (a reused
  // block keeps its old bytes). Raises Error(overloaded) when no memory can be had.
  MutableBuffer allocate(std::size_t size);
  std::uint64_t cached_bytes() const;

  // A memfd file and its read-write mapping (internal to shared_memory.cpp).
  struct Block {
    int fd = -1;
    void* base = nullptr;
    std::size_t capacity = 0;
  };

 private:
  friend struct SharedFile;
  explicit SharedMemoryPool(std::uint64_t max_cached_bytes) : max_cached_(max_cached_bytes) {}
  // Takes the block back for reuse, or unmaps and closes it when the cache is full.
  void give_back(Block block) noexcept;
  void drop_cached() noexcept;

  const std::uint64_t max_cached_;
  mutable std::mutex mu_;
  std::multimap<std::size_t, Block> free_;  // by capacity
  std::uint64_t cached_ = 0;
};

// A block of its own (not pooled), as a worker makes for a large result it hands to its node.
// Raises Error(overloaded) when no memory can be had.
MutableBuffer allocate_shared(std::size_t size);

// Every block is sealed so: its size never changes, and no new writable mapping or write() is
// allowed (the creator keeps writing through the mapping it has).
inline constexpr int kSharedSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE;
// True when the file `fd` refers to carries kSharedSeals: another process cannot truncate it
// under a mapping of this one.
bool is_sealed(int fd);

// Where a buffer lies in a shared file: the block's descriptor (owned by the block, valid while
// the buffer lives), and the buffer's range in the file.
struct SharedSpan {
  int fd = -1;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};
// The shared file under `b`, or nothing when `b` is ordinary memory.
std::optional<SharedSpan> shared_span_of(const Buffer& b);

// A new read-only descriptor for the file `fd` refers to, so a process it is passed to can map
// the file but never write to it. Raises Error(failed) when it cannot be opened.
int reopen_read_only(int fd);

// Maps bytes [offset, offset + size) of the shared file `fd` read-only and takes ownership of
// `fd` (closed here on error too). `on_unmap` runs once the last Buffer over the mapping is gone.
// `populate` maps every page now, so later readers take no page faults. Raises
// Error(invalid_argument) when `fd` is not a regular file holding that range, Error(failed) when
// mapping fails.
Buffer map_shared(int fd, std::uint64_t offset, std::uint64_t size, bool populate = false,
                  std::function<void()> on_unmap = {});

}  // namespace atl::runtime
