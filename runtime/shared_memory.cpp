#include "runtime/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "atoll/errors.hpp"
#include "runtime/buffer_pool.hpp"

namespace atl::detail {

struct BufferAccess {
  static const std::shared_ptr<const void>& owner(const Buffer& b) noexcept { return b.owner_; }
};

}  // namespace atl::detail

namespace atl::runtime {

// The deleter of every shared block's owner: `std::get_deleter` finds it again from any Buffer
// over the block, which is how `shared_span_of` tells shared memory from the heap.
struct SharedFile {
  int fd = -1;
  void* base = nullptr;                    // the mapping
  std::size_t length = 0;                  // of the mapping
  std::uint64_t file_offset = 0;           // where the mapping starts in the file
  std::shared_ptr<SharedMemoryPool> pool;  // set: the block goes back to it
  std::function<void()> on_unmap;

  void operator()(void*) noexcept {
    if (pool) {
      pool->give_back({fd, base, length});
    } else {
      ::munmap(base, length);
      ::close(fd);
    }
    if (on_unmap) on_unmap();
  }
};

namespace {

std::string system_error(const char* what) {
  int err = errno;
  std::string text = std::string(what) + ": " + std::strerror(err);
  if (err == EMFILE || err == ENFILE)
    text += " (each large object is an open file: raise the limit, e.g. `ulimit -n 65536`)";
  return text;
}

// A new memfd file of `capacity` bytes, its pages allocated now (so running out of memory is an
// error here rather than SIGBUS on a later write), mapped read-write, then sealed: its size can
// never change and no new writable mapping or write() is allowed, so a process given its
// descriptor (even one reopened read-write through /proc) can neither truncate it under this
// process's mapping (SIGBUS) nor change its bytes. This process writes through the mapping it
// already has.
SharedMemoryPool::Block create_block(std::size_t capacity) {
  int fd = ::memfd_create("atoll-object", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw Error(ErrorCategory::overloaded, system_error("shared memory: memfd_create"));
  auto fail = [fd](const char* what) {
    std::string why = system_error(what);
    ::close(fd);
    throw Error(ErrorCategory::overloaded, "shared memory for " + why);
  };
  if (::ftruncate(fd, static_cast<off_t>(capacity)) != 0) fail("ftruncate");
  if (::fallocate(fd, 0, 0, static_cast<off_t>(capacity)) != 0) fail("fallocate");
  void* base = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (base == MAP_FAILED) fail("mmap");
  if (::fcntl(fd, F_ADD_SEALS, kSharedSeals) != 0) {
    ::munmap(base, capacity);
    fail("sealing");
  }
  return {fd, base, capacity};
}
}  // namespace

std::shared_ptr<SharedMemoryPool> SharedMemoryPool::create(std::uint64_t max_cached_bytes) {
  return std::shared_ptr<SharedMemoryPool>(new SharedMemoryPool(max_cached_bytes));
}

SharedMemoryPool::~SharedMemoryPool() {
  for (auto& [capacity, block] : free_) {
    ::munmap(block.base, block.capacity);
    ::close(block.fd);
  }
}

MutableBuffer SharedMemoryPool::allocate(std::size_t size) {
  if (size == 0) throw Error(ErrorCategory::invalid_argument, "a shared block needs a size");
  const std::size_t capacity = pooled_capacity(size);
  std::optional<Block> block;
  {
    std::lock_guard lock(mu_);
    if (auto it = free_.find(capacity); it != free_.end()) {
      block = it->second;
      free_.erase(it);
      cached_ -= capacity;
    }
  }
  if (block) {
    // The block's bytes past `size` are still the last object's: a reader given the file must
    // not see them (it may belong to another job).
    std::memset(static_cast<std::byte*>(block->base) + size, 0, capacity - size);
  } else {
    try {
      block = create_block(capacity);
    } catch (const Error&) {
      drop_cached();  // blocks of other sizes may be what stands in the way
      block = create_block(capacity);
    }
  }
  auto* data = static_cast<std::byte*>(block->base);
  std::shared_ptr<void> owner(
      data, SharedFile{block->fd, block->base, block->capacity, 0, shared_from_this(), {}});
  return MutableBuffer(std::move(owner), data, size);
}

void SharedMemoryPool::give_back(Block block) noexcept {
  {
    std::lock_guard lock(mu_);
    if (cached_ + block.capacity <= max_cached_) {
      free_.emplace(block.capacity, block);
      cached_ += block.capacity;
      return;
    }
  }
  ::munmap(block.base, block.capacity);
  ::close(block.fd);
}

void SharedMemoryPool::drop_cached() noexcept {
  std::multimap<std::size_t, Block> cached;
  {
    std::lock_guard lock(mu_);
    cached.swap(free_);
    cached_ = 0;
  }
  for (auto& [capacity, block] : cached) {
    ::munmap(block.base, block.capacity);
    ::close(block.fd);
  }
}

bool is_sealed(int fd) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  return seals >= 0 && (seals & kSharedSeals) == kSharedSeals;
}

std::uint64_t SharedMemoryPool::cached_bytes() const {
  std::lock_guard lock(mu_);
  return cached_;
}

MutableBuffer allocate_shared(std::size_t size) {
  if (size == 0) throw Error(ErrorCategory::invalid_argument, "a shared block needs a size");
  auto block = create_block(size);
  auto* data = static_cast<std::byte*>(block.base);
  std::shared_ptr<void> owner(data, SharedFile{block.fd, block.base, block.capacity, 0, {}, {}});
  return MutableBuffer(std::move(owner), data, size);
}

std::optional<SharedSpan> shared_span_of(const Buffer& b) {
  const auto& owner = detail::BufferAccess::owner(b);
  const auto* file = std::get_deleter<SharedFile>(owner);
  if (file == nullptr || b.empty()) return std::nullopt;
  auto offset = static_cast<std::uint64_t>(b.data() - static_cast<const std::byte*>(file->base));
  return SharedSpan{file->fd, file->file_offset + offset, b.size()};
}

int reopen_read_only(int fd) {
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  int ro = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ro < 0) throw Error(ErrorCategory::failed, system_error(("opening " + path).c_str()));
  return ro;
}

Buffer map_shared(int fd, std::uint64_t offset, std::uint64_t size, bool populate,
                  std::function<void()> on_unmap) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorCategory::invalid_argument, "a shared value's descriptor is not a file");
  }
  auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (offset > file_size || size > file_size - offset) {
    ::close(fd);
    throw Error(ErrorCategory::invalid_argument, "a shared value's range (" + std::to_string(size) +
                                                     " bytes at " + std::to_string(offset) +
                                                     ") lies outside its file of " +
                                                     std::to_string(file_size) + " bytes");
  }
  if (size == 0) {
    ::close(fd);
    if (on_unmap) on_unmap();
    return Buffer();
  }
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t start = offset / page * page;
  const std::size_t length = static_cast<std::size_t>(offset - start + size);
  void* base = ::mmap(nullptr, length, PROT_READ, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd,
                      static_cast<off_t>(start));
  if (base == MAP_FAILED) {
    std::string why = system_error("mapping a shared value");
    ::close(fd);
    throw Error(ErrorCategory::failed, why);
  }
  auto* data = static_cast<std::byte*>(base) + (offset - start);
  std::shared_ptr<void> owner(data, SharedFile{fd, base, length, start, {}, std::move(on_unmap)});
  return MutableBuffer(std::move(owner), data, static_cast<std::size_t>(size)).freeze();
}

}  // namespace atl::runtime
