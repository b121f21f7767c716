// atoll/buffer.hpp — immutable, reference-counted bytes that travel without copies.
//
// `Buffer` is the type for large binary data and tensors. Copies of a Buffer share one block;
// a Buffer stored with `put` or returned by a task is handed to every `get` in the same process
// without a copy. `MutableBuffer` is the writable, uniquely owned form: fill it, then `freeze()`
// it (or pass it to `put`). `RuntimeRef::create_buffer` allocates from the object store's pool so
// that repeated large puts reuse memory instead of faulting in fresh pages.
//
// Thread-safety: a Buffer is immutable and may be read from any number of threads. A
// MutableBuffer is owned by one thread at a time.
//
// Example:
//   atl::MutableBuffer mb = rt.create_buffer(1 << 20);
//   std::memset(mb.data(), 7, mb.size());
//   atl::ObjectRef<atl::Buffer> ref = rt.put(std::move(mb).freeze());
//   atl::Buffer b = ref.get();        // same bytes, no copy
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>

namespace atl {

namespace detail {
struct BufferAccess;  // the runtime's view of a block's owner (shared memory)
}  // namespace detail

class Buffer {
 public:
  Buffer() = default;

  // Copies `bytes` into a new block.
  static Buffer copy_of(std::span<const std::byte> bytes);
  static Buffer copy_of(const void* data, std::size_t size);
  // Wraps memory the caller owns; `release` runs once when the last Buffer sharing it is gone.
  static Buffer adopt(const void* data, std::size_t size, std::function<void()> release);

  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  // A Buffer over bytes [offset, offset + length) of this one, sharing the block.
  // Throws std::out_of_range when the range does not fit.
  Buffer slice(std::size_t offset, std::size_t length) const;
  // True when both name the same bytes of the same block (not a content comparison).
  bool shares_memory_with(const Buffer& other) const noexcept {
    return data_ == other.data_ && size_ == other.size_;
  }

 private:
  friend class MutableBuffer;
  friend struct detail::BufferAccess;
  Buffer(std::shared_ptr<const void> owner, const std::byte* data, std::size_t size)
      : owner_(std::move(owner)), data_(data), size_(size) {}

  std::shared_ptr<const void> owner_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

class MutableBuffer {
 public:
  MutableBuffer() = default;
  // A zero-filled block from the heap (not pooled).
  static MutableBuffer allocate(std::size_t size);
  // A block whose storage is kept alive by `owner` (used by pools).
  MutableBuffer(std::shared_ptr<void> owner, std::byte* data, std::size_t size)
      : owner_(std::move(owner)), data_(data), size_(size) {}

  MutableBuffer(MutableBuffer&&) noexcept = default;
  MutableBuffer& operator=(MutableBuffer&&) noexcept = default;
  MutableBuffer(const MutableBuffer&) = delete;
  MutableBuffer& operator=(const MutableBuffer&) = delete;

  std::byte* data() noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::span<std::byte> bytes() noexcept { return {data_, size_}; }
  // Seals the bytes: the result is immutable and this MutableBuffer is left empty.
  Buffer freeze() &&;

 private:
  friend struct detail::BufferAccess;
  std::shared_ptr<void> owner_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace atl
