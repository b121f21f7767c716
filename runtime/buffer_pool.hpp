// Reusable memory for large buffers. Freed blocks of 64 KiB and more go back to the pool (up to a
// byte limit) and are handed out again for the same rounded size, so a program that puts large
// values repeatedly does not pay page faults for fresh memory every time — the role Plasma's
// pre-mapped arena plays in Ray. Thread-safe; blocks keep the pool alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "atoll/buffer.hpp"

namespace atl::runtime {

// The capacity a pooled block of `size` bytes gets: `size` rounded up to 1/16 of its power of
// two, so near sizes share blocks with little waste.
std::size_t pooled_capacity(std::size_t size);

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  static std::shared_ptr<BufferPool> create(std::uint64_t max_cached_bytes);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Contents are unspecified (a reused block keeps its old bytes).
  MutableBuffer allocate(std::size_t size);
  std::uint64_t cached_bytes() const;

  static constexpr std::size_t min_pooled_size = 64 * 1024;

 private:
  explicit BufferPool(std::uint64_t max_cached_bytes) : max_cached_(max_cached_bytes) {}
  void give_back(void* block, std::size_t capacity) noexcept;

  const std::uint64_t max_cached_;
  mutable std::mutex mu_;
  std::multimap<std::size_t, void*> free_;
  std::uint64_t cached_ = 0;
};

}  // namespace atl::runtime
