#include "transport/frame.hpp"

#include <sys/socket.h>

#include <sys/uio.h>

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

bool send_all_with_fds(int fd, std::span<const std::byte> bytes, std::span<const int> fds) {
  if (fds.empty()) return send_all(fd, bytes);
  if (bytes.empty() || fds.size() > kMaxFdsPerSend) return false;
  std::vector<std::byte> control(CMSG_SPACE(sizeof(int) * fds.size()));
  iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  // The descriptors went with the first byte; the rest of the frame follows as plain bytes.
  return send_all(fd, bytes.subspan(static_cast<std::size_t>(n)));
}

ssize_t receive_with_fds(int fd, std::span<std::byte> buffer, std::deque<int>& fds) {
  alignas(cmsghdr) std::byte control[CMSG_SPACE(sizeof(int) * kMaxFdsPerSend)] = {};
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return n;  // the control buffer was not written
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.push_back(received);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) errno = EMSGSIZE;
  return (msg.msg_flags & MSG_CTRUNC) ? -1 : n;
}

}  // namespace atl::transport
