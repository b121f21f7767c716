// Helpers shared by the codec tests: frames from builders and hand-built words, pointer encoders,
// and the error check for hostile input.
#pragma once

#include "transport/codec.hpp"

#include <capnp/message.h>
#include <capnp/schema.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "tests/transport/wire_walk.hpp"
#include "transport/auth.hpp"
#include "transport/frame.hpp"
#include "transport/schema/control.capnp.h"

namespace atl::transport::codec_test {

// ---- Helpers -------------------------------------------------------------------------------

// The single frame in `framed` (an encode() result), through a FrameDecoder as a peer would.
inline Frame to_frame(const std::vector<std::byte>& framed) {
  FrameDecoder decoder;
  EXPECT_TRUE(decoder.feed(framed)) << decoder.error();
  auto frame = decoder.next();
  EXPECT_TRUE(frame.has_value());
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  return frame ? std::move(*frame) : Frame{};
}

inline Frame to_frame(capnp::MessageBuilder& message) {
  return to_frame(encode(message));
}

inline Frame words_frame(std::vector<std::uint64_t> words) {
  return Frame{std::move(words)};
}

inline std::vector<std::byte> bytes_of(capnp::Data::Reader d) {
  std::vector<std::byte> out(d.size());
  if (!out.empty()) std::memcpy(out.data(), d.begin(), d.size());
  return out;
}

inline kj::ArrayPtr<const kj::byte> as_capnp(std::span<const std::byte> b) {
  return {reinterpret_cast<const kj::byte*>(b.data()), b.size()};
}

inline std::vector<std::byte> filled(std::size_t n, std::uint8_t seed) {
  std::vector<std::byte> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>((seed + 13 * i) & 0xff);
  return out;
}

// Hand-built Cap'n Proto words (little-endian host).
// Segment table of a one-segment message whose segment holds `words` words.
inline std::uint64_t one_segment(std::uint32_t words) {
  return std::uint64_t{words} << 32;
}

inline std::uint64_t struct_ptr(std::int32_t offset, std::uint16_t data_words, std::uint16_t ptrs) {
  return (std::uint64_t{static_cast<std::uint32_t>(offset)} << 2 & 0xffffffffu) |
         std::uint64_t{data_words} << 32 | std::uint64_t{ptrs} << 48;
}

enum ElementSize : std::uint64_t { kVoid = 0, kByte = 2, kPointer = 6, kComposite = 7 };

// `count` is the element count, or the word count for kComposite.
inline std::uint64_t list_ptr(std::int32_t offset, ElementSize size, std::uint32_t count) {
  return 1u | (std::uint64_t{static_cast<std::uint32_t>(offset)} << 2 & 0xffffffffu) |
         std::uint64_t{size} << 32 | std::uint64_t{count} << 35;
}

// The tag word of an inline-composite list: `count` elements of the given struct size.
inline std::uint64_t composite_tag(std::uint32_t count, std::uint16_t data_words,
                                   std::uint16_t ptrs) {
  return (std::uint64_t{count} << 2) | std::uint64_t{data_words} << 32 | std::uint64_t{ptrs} << 48;
}

inline void expect_limit_or_malformed(const std::string& error) {
  EXPECT_TRUE(error.find("limit") != std::string::npos ||
              error.find("malformed") != std::string::npos)
      << error;
}

// Builders for valid messages.
inline void build_hello(capnp::MallocMessageBuilder& m, const Nonce& nonce, const std::string& name,
                        wire::Role role = wire::Role::NODE) {
  auto hello = m.initRoot<wire::Handshake>().initHello();
  hello.setProtocolVersion(wire::PROTOCOL_VERSION);
  hello.setRole(role);
  hello.setName(name);
  hello.setClientNonce(as_capnp(nonce));
}

}  // namespace atl::transport::codec_test
