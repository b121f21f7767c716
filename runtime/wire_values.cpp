#include "runtime/wire_values.hpp"

#include <cstdint>
#include <cstring>
#include <limits>

#include "atoll/errors.hpp"

namespace atl::runtime {

namespace {

// Always bin32: the header's size never depends on the value, so `wire_size` is exact.
constexpr std::size_t kBinHeaderBytes = 5;

void check_bin_size(std::size_t size) {
  if (size > std::numeric_limits<std::uint32_t>::max())
    throw Error(ErrorCategory::invalid_argument,
                "an atl::Buffer of " + std::to_string(size) +
                    " bytes cannot go to another process: the limit is 4 GiB - 1");
}

// An ext 32 value (the only form a binding's value with a block may take): how many bytes it has
// with its header, or 0 when `b` does not start with one that fits in `n`.
std::size_t ext32_bytes(const unsigned char* b, std::size_t n) {
  if (n < 6 || b[0] != 0xc9) return 0;
  std::size_t length =
      (std::size_t{b[1]} << 24) | (std::size_t{b[2]} << 16) | (std::size_t{b[3]} << 8) | b[4];
  return length <= n - 6 ? 6 + length : 0;
}

}  // namespace

std::size_t wire_size(const detail::Payload& p) noexcept {
  if (!p.out_of_band) return p.bytes.size();
  return (p.bytes.empty() ? kBinHeaderBytes : p.bytes.size()) + p.buffer.size();
}

void write_wire(const detail::Payload& p, std::byte* out) {
  if (p.out_of_band && !p.bytes.empty() &&
      ext32_bytes(reinterpret_cast<const unsigned char*>(p.bytes.data()), p.bytes.size()) !=
          p.bytes.size())
    throw Error(ErrorCategory::invalid_argument,
                "a value with out-of-band data must be one msgpack ext 32 value, then its block");
  if (!p.out_of_band || !p.bytes.empty()) {
    if (!p.bytes.empty()) std::memcpy(out, p.bytes.data(), p.bytes.size());
    if (p.out_of_band && p.buffer.size() > 0)
      std::memcpy(out + p.bytes.size(), p.buffer.data(), p.buffer.size());
    return;
  }
  check_bin_size(p.buffer.size());
  auto size = static_cast<std::uint32_t>(p.buffer.size());
  out[0] = std::byte{0xc6};
  for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<std::byte>(size >> (24 - 8 * i));
  if (size > 0) std::memcpy(out + kBinHeaderBytes, p.buffer.data(), size);
}

std::string wire_string(const detail::Payload& p) {
  if (!p.out_of_band) return p.bytes;
  std::string out(wire_size(p), '\0');
  write_wire(p, reinterpret_cast<std::byte*>(out.data()));
  return out;
}

const std::string& wire_bytes(const detail::Payload& p, std::string& scratch) {
  if (!p.out_of_band) return p.bytes;
  scratch = wire_string(p);
  return scratch;
}

detail::Payload payload_of(const Buffer& encoded) {
  const auto* b = reinterpret_cast<const unsigned char*>(encoded.data());
  const std::size_t n = encoded.size();
  std::size_t header = 0, length = 0;
  if (n >= 2 && b[0] == 0xc4) {
    header = 2;
    length = b[1];
  } else if (n >= 3 && b[0] == 0xc5) {
    header = 3;
    length = (std::size_t{b[1]} << 8) | b[2];
  } else if (n >= 5 && b[0] == 0xc6) {
    header = 5;
    length =
        (std::size_t{b[1]} << 24) | (std::size_t{b[2]} << 16) | (std::size_t{b[3]} << 8) | b[4];
  }
  detail::Payload p;
  if (header > 0 && header + length == n) {
    p.out_of_band = true;
    p.buffer = encoded.slice(header, length);
  } else if (std::size_t ext = ext32_bytes(b, n); ext > 0 && ext < n) {
    p.bytes.assign(reinterpret_cast<const char*>(b), ext);
    p.buffer = encoded.slice(ext, n - ext);
    p.out_of_band = true;
  } else {
    p.bytes.assign(reinterpret_cast<const char*>(b), n);
  }
  return p;
}

detail::Payload payload_of(const void* data, std::size_t size) {
  const auto* b = static_cast<const unsigned char*>(data);
  detail::Payload p;
  if (std::size_t ext = ext32_bytes(b, size); ext > 0 && ext < size) {
    p.bytes.assign(reinterpret_cast<const char*>(b), ext);
    p.buffer = Buffer::copy_of(b + ext, size - ext);
    p.out_of_band = true;
  } else {
    p.bytes.assign(reinterpret_cast<const char*>(b), size);
  }
  return p;
}

}  // namespace atl::runtime
