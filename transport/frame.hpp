// Length-prefixed frames: a 4-byte little-endian payload length, then the payload (a Cap'n Proto
// message in its standard flat encoding, a whole number of 8-byte words).
//
// FrameDecoder is fed bytes as they arrive and yields complete frames. It never trusts the length:
// a frame above the limit, an empty frame, or one that is not a whole number of words is an error,
// after which the decoder accepts nothing more (the connection must close).
//
// Thread-safety: a FrameDecoder belongs to one connection's reading side.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace atl::transport {

inline constexpr std::size_t kFrameHeaderBytes = 4;
inline constexpr std::size_t kDefaultMaxFrameBytes = 16u << 20;

// One payload, copied into 8-byte-aligned storage so Cap'n Proto can read it in place.
struct Frame {
  std::vector<std::uint64_t> words;
  std::size_t size_bytes() const noexcept { return words.size() * sizeof(std::uint64_t); }
};

class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_frame_bytes = kDefaultMaxFrameBytes)
      : max_frame_bytes_(max_frame_bytes) {}

  // Appends received bytes. Returns false (and remembers the error) on a bad length.
  bool feed(std::span<const std::byte> bytes);
  // The next complete frame, if one has arrived.
  std::optional<Frame> next();

  // Changes the limit for frames not yet started (the handshake uses a small one).
  void set_max_frame_bytes(std::size_t max) noexcept { max_frame_bytes_ = max; }
  bool failed() const noexcept { return !error_.empty(); }
  const std::string& error() const noexcept { return error_; }
  std::size_t buffered_bytes() const noexcept { return buffer_.size() - read_pos_; }

 private:
  bool check_header();

  std::size_t max_frame_bytes_;
  std::vector<std::byte> buffer_;
  std::size_t read_pos_ = 0;
  std::optional<std::size_t> pending_length_;
  std::string error_;
};

// Prefixes `payload` (a whole number of words) with its length.
std::vector<std::byte> encode_frame(std::span<const std::byte> payload);

// Writes all of `bytes` to a blocking stream socket (retrying on EINTR, never raising SIGPIPE).
// False when the peer is gone.
bool send_all(int fd, std::span<const std::byte> bytes);

// Unix sockets only: descriptors travel with a frame (SCM_RIGHTS), at most this many per frame.
inline constexpr std::size_t kMaxFdsPerSend = 250;
// `send_all`, passing `fds` (duplicated into the peer; still owned by the caller) with the first
// byte. False when the peer is gone or there are too many descriptors.
bool send_all_with_fds(int fd, std::span<const std::byte> bytes, std::span<const int> fds);
// One recvmsg: bytes into `buffer`, descriptors that came with them appended to `fds` (owned by
// the caller from then on, close-on-exec). Returns like recv; -1 with EMSGSIZE when descriptors
// were dropped because too many came at once (the stream can no longer be trusted).
ssize_t receive_with_fds(int fd, std::span<std::byte> buffer, std::deque<int>& fds);

}  // namespace atl::transport
