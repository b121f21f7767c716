#include "atoll/buffer.hpp"

#include <cstring>
#include <stdexcept>

namespace atl {

Buffer Buffer::copy_of(std::span<const std::byte> bytes) {
  return copy_of(bytes.data(), bytes.size());
}

Buffer Buffer::copy_of(const void* data, std::size_t size) {
  if (size == 0) return Buffer();
  std::shared_ptr<std::byte[]> block(new std::byte[size]);
  std::memcpy(block.get(), data, size);
  const std::byte* p = block.get();
  return Buffer(std::shared_ptr<const void>(std::move(block), p), p, size);
}

Buffer Buffer::adopt(const void* data, std::size_t size, std::function<void()> release) {
  std::shared_ptr<const void> owner(data, [release = std::move(release)](const void*) {
    if (release) release();
  });
  return Buffer(std::move(owner), static_cast<const std::byte*>(data), size);
}

Buffer Buffer::slice(std::size_t offset, std::size_t length) const {
  if (offset > size_ || length > size_ - offset)
    throw std::out_of_range("Buffer::slice: range outside the buffer");
  return Buffer(owner_, data_ + offset, length);
}

MutableBuffer MutableBuffer::allocate(std::size_t size) {
  if (size == 0) return MutableBuffer();
  std::shared_ptr<std::byte[]> block(new std::byte[size]());
  std::byte* p = block.get();
  return MutableBuffer(std::shared_ptr<void>(std::move(block), p), p, size);
}

Buffer MutableBuffer::freeze() && {
  Buffer out(std::shared_ptr<const void>(std::move(owner_)), data_, size_);
  data_ = nullptr;
  size_ = 0;
  return out;
}

}  // namespace atl
