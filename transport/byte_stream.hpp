// A reliable, ordered byte stream to one peer: what each data-plane backend provides (a TCP socket
// through Asio, a UCX endpoint through ucp's stream API) and all the data plane's protocol needs.
// The handshake and the transfer protocol are written once against this interface.
//
// Every completion handler runs on the data plane's thread, never inside the call that started
// the operation. At most one read and one write may be outstanding at a time. Memory passed to an
// operation must stay valid until its handler runs. After `close()`, outstanding operations
// complete with an error (or not at all, if the backend is being torn down) and new ones fail.
//
// Thread-safety: a stream is used from the data plane's thread only.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "atoll/errors.hpp"

namespace atl::transport {

enum class DataBackend : std::uint8_t { tcp, ucx };

std::string_view to_string(DataBackend backend) noexcept;

using IoError = std::optional<Error>;
using ReadHandler = std::function<void(IoError error, std::size_t bytes)>;
using WriteHandler = std::function<void(IoError error)>;

class ByteStream {
 public:
  virtual ~ByteStream() = default;

  // Reads between 1 and `into.size()` bytes (whatever has arrived).
  virtual void read_some(std::span<std::byte> into, ReadHandler done) = 0;
  // Reads exactly `into.size()` bytes.
  virtual void read_exact(std::span<std::byte> into, ReadHandler done) = 0;
  // Writes every byte of `first` then `second` (either may be empty), in one gathered write.
  virtual void write(std::span<const std::byte> first, std::span<const std::byte> second,
                     WriteHandler done) = 0;
  // Closes the stream; idempotent.
  virtual void close() = 0;

  virtual DataBackend backend() const noexcept = 0;
  // The peer's address, for messages ("127.0.0.1:40112").
  virtual std::string remote() const = 0;
};

using ByteStreamPtr = std::shared_ptr<ByteStream>;

}  // namespace atl::transport
