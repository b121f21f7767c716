#include "transport/frame.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace atl::transport {

bool FrameDecoder::feed(std::span<const std::byte> bytes) {
  if (failed()) return false;
  // Compact consumed bytes before growing, so a long-lived connection's buffer stays small.
  if (read_pos_ > 0 && read_pos_ == buffer_.size()) {
    buffer_.clear();
    read_pos_ = 0;
  } else if (read_pos_ > (64u << 10) && read_pos_ * 2 > buffer_.size()) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(read_pos_));
    read_pos_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  return check_header();
}

bool FrameDecoder::check_header() {
  if (pending_length_ || buffered_bytes() < kFrameHeaderBytes) return true;
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + read_pos_);
  std::size_t length = static_cast<std::size_t>(p[0]) | static_cast<std::size_t>(p[1]) << 8 |
                       static_cast<std::size_t>(p[2]) << 16 | static_cast<std::size_t>(p[3]) << 24;
  if (length == 0)
    error_ = "empty frame";
  else if (length > max_frame_bytes_)
    error_ = "frame of " + std::to_string(length) + " bytes exceeds the limit of " +
             std::to_string(max_frame_bytes_);
  else if (length % sizeof(std::uint64_t) != 0)
    error_ = "frame length " + std::to_string(length) + " is not a whole number of words";
  if (failed()) return false;
  pending_length_ = length;
  return true;
}

std::optional<Frame> FrameDecoder::next() {
  if (failed() || !check_header() || !pending_length_) return std::nullopt;
  const std::size_t length = *pending_length_;
  if (buffered_bytes() < kFrameHeaderBytes + length) return std::nullopt;
  Frame frame;
  frame.words.resize(length / sizeof(std::uint64_t));
  std::memcpy(frame.words.data(), buffer_.data() + read_pos_ + kFrameHeaderBytes, length);
  read_pos_ += kFrameHeaderBytes + length;
  pending_length_.reset();
  return frame;
}

std::vector<std::byte> encode_frame(std::span<const std::byte> payload) {
  std::vector<std::byte> out(kFrameHeaderBytes + payload.size());
  auto n = static_cast<std::uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) out[i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  std::memcpy(out.data() + kFrameHeaderBytes, payload.data(), payload.size());
  return out;
}

bool send_all(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace atl::transport
