#include "runtime/buffer_pool.hpp"

#include <cstdlib>
#include <new>

namespace atl::runtime {

namespace {
constexpr std::size_t kAlignment = 4096;
}  // namespace

std::size_t pooled_capacity(std::size_t size) {
  std::size_t step = kAlignment;
  while (step * 16 < size) step *= 2;
  return (size + step - 1) / step * step;
}

std::shared_ptr<BufferPool> BufferPool::create(std::uint64_t max_cached_bytes) {
  return std::shared_ptr<BufferPool>(new BufferPool(max_cached_bytes));
}

BufferPool::~BufferPool() {
  for (auto& [capacity, block] : free_) std::free(block);
}

MutableBuffer BufferPool::allocate(std::size_t size) {
  if (size < min_pooled_size) return MutableBuffer::allocate(size);
  const std::size_t capacity = pooled_capacity(size);
  void* block = nullptr;
  {
    std::lock_guard lock(mu_);
    if (auto it = free_.find(capacity); it != free_.end()) {
      block = it->second;
      free_.erase(it);
      cached_ -= capacity;
    }
  }
  if (block == nullptr) {
    block = std::aligned_alloc(kAlignment, capacity);
    if (block == nullptr) throw std::bad_alloc();
  }
  std::shared_ptr<void> owner(
      block, [pool = shared_from_this(), capacity](void* p) { pool->give_back(p, capacity); });
  return MutableBuffer(std::move(owner), static_cast<std::byte*>(block), size);
}

void BufferPool::give_back(void* block, std::size_t capacity) noexcept {
  {
    std::lock_guard lock(mu_);
    if (cached_ + capacity <= max_cached_) {
      free_.emplace(capacity, block);
      cached_ += capacity;
      return;
    }
  }
  std::free(block);
}

std::uint64_t BufferPool::cached_bytes() const {
  std::lock_guard lock(mu_);
  return cached_;
}

}  // namespace atl::runtime
