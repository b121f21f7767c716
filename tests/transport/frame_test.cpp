// FrameDecoder and encode_frame: reassembly across arbitrary feed boundaries, and rejection of
// lengths that cannot be trusted (empty, above the limit, not a whole number of words).
#include "transport/frame.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace atl::transport {
namespace {

// A payload of `words` 8-byte words whose bytes encode `seed` and their position.
std::vector<std::byte> make_payload(std::size_t words, std::uint8_t seed) {
  std::vector<std::byte> out(words * sizeof(std::uint64_t));
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::byte>((seed * 31 + i) & 0xff);
  return out;
}

std::vector<std::byte> frame_bytes(const Frame& frame) {
  std::vector<std::byte> out(frame.size_bytes());
  std::memcpy(out.data(), frame.words.data(), out.size());
  return out;
}

// Just a header announcing `length` payload bytes.
std::vector<std::byte> header(std::uint32_t length) {
  std::vector<std::byte> out(kFrameHeaderBytes);
  for (int i = 0; i < 4; ++i) out[i] = static_cast<std::byte>((length >> (8 * i)) & 0xff);
  return out;
}

TEST(FrameTest, EncodeFramePrefixesLittleEndianLength) {
  auto payload = make_payload(3, 7);
  auto framed = encode_frame(payload);
  ASSERT_EQ(framed.size(), kFrameHeaderBytes + payload.size());
  EXPECT_EQ(framed[0], std::byte{24});
  EXPECT_EQ(framed[1], std::byte{0});
  EXPECT_EQ(framed[2], std::byte{0});
  EXPECT_EQ(framed[3], std::byte{0});
  EXPECT_EQ(std::memcmp(framed.data() + kFrameHeaderBytes, payload.data(), payload.size()), 0);

  auto big = make_payload(0x2021, 1);  // 0x10108 bytes: every header byte but the last is used
  auto big_framed = encode_frame(big);
  EXPECT_EQ(big_framed[0], std::byte{0x08});
  EXPECT_EQ(big_framed[1], std::byte{0x01});
  EXPECT_EQ(big_framed[2], std::byte{0x01});
  EXPECT_EQ(big_framed[3], std::byte{0x00});
}

TEST(FrameTest, EncodeFrameRoundTripsThroughDecoder) {
  auto payload = make_payload(5, 42);
  FrameDecoder decoder;
  ASSERT_TRUE(decoder.feed(encode_frame(payload)));
  auto frame = decoder.next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->words.size(), 5u);
  EXPECT_EQ(frame->size_bytes(), payload.size());
  EXPECT_EQ(frame_bytes(*frame), payload);
  EXPECT_FALSE(decoder.next().has_value());
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  EXPECT_FALSE(decoder.failed());
}

TEST(FrameTest, FrameFedOneByteAtATime) {
  auto payload = make_payload(4, 3);
  auto framed = encode_frame(payload);
  FrameDecoder decoder;
  for (std::size_t i = 0; i < framed.size(); ++i) {
    ASSERT_TRUE(decoder.feed(std::span(framed).subspan(i, 1))) << "byte " << i;
    auto frame = decoder.next();
    if (i + 1 < framed.size()) {
      ASSERT_FALSE(frame.has_value()) << "a frame after only " << i + 1 << " bytes";
      EXPECT_EQ(decoder.buffered_bytes(), i + 1);
    } else {
      ASSERT_TRUE(frame.has_value());
      EXPECT_EQ(frame_bytes(*frame), payload);
    }
  }
  EXPECT_FALSE(decoder.failed());
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameTest, SeveralFramesInOneFeed) {
  std::vector<std::vector<std::byte>> payloads = {make_payload(1, 1), make_payload(2, 2),
                                                  make_payload(7, 3)};
  std::vector<std::byte> stream;
  for (const auto& p : payloads) {
    auto framed = encode_frame(p);
    stream.insert(stream.end(), framed.begin(), framed.end());
  }
  FrameDecoder decoder;
  ASSERT_TRUE(decoder.feed(stream));
  for (const auto& p : payloads) {
    auto frame = decoder.next();
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(frame_bytes(*frame), p);
  }
  EXPECT_FALSE(decoder.next().has_value());
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  EXPECT_FALSE(decoder.failed());
}

TEST(FrameTest, HeaderSplitAcrossFeeds) {
  auto payload = make_payload(2, 9);
  auto framed = encode_frame(payload);
  for (std::size_t split = 1; split < kFrameHeaderBytes; ++split) {
    FrameDecoder decoder;
    ASSERT_TRUE(decoder.feed(std::span(framed).first(split)));
    EXPECT_FALSE(decoder.next().has_value());
    ASSERT_TRUE(decoder.feed(std::span(framed).subspan(split)));
    auto frame = decoder.next();
    ASSERT_TRUE(frame.has_value()) << "split at " << split;
    EXPECT_EQ(frame_bytes(*frame), payload);
  }
}

TEST(FrameTest, PartialFrameThenRestAndNextFrameTogether) {
  auto a = encode_frame(make_payload(3, 1));
  auto b = encode_frame(make_payload(2, 2));
  FrameDecoder decoder;
  ASSERT_TRUE(decoder.feed(std::span(a).first(10)));
  EXPECT_FALSE(decoder.next().has_value());
  std::vector<std::byte> rest(a.begin() + 10, a.end());
  rest.insert(rest.end(), b.begin(), b.end());
  ASSERT_TRUE(decoder.feed(rest));
  auto fa = decoder.next();
  auto fb = decoder.next();
  ASSERT_TRUE(fa.has_value());
  ASSERT_TRUE(fb.has_value());
  EXPECT_EQ(fa->words.size(), 3u);
  EXPECT_EQ(fb->words.size(), 2u);
  EXPECT_FALSE(decoder.next().has_value());
}

TEST(FrameTest, EmptyFrameFails) {
  FrameDecoder decoder;
  EXPECT_FALSE(decoder.feed(header(0)));
  EXPECT_TRUE(decoder.failed());
  EXPECT_NE(decoder.error().find("empty"), std::string::npos) << decoder.error();
  EXPECT_FALSE(decoder.next().has_value());
}

TEST(FrameTest, EmptyFrameAfterAGoodOneFailsOnNext) {
  auto good = encode_frame(make_payload(1, 1));
  auto bad = header(0);
  std::vector<std::byte> stream(good.begin(), good.end());
  stream.insert(stream.end(), bad.begin(), bad.end());
  FrameDecoder decoder;
  ASSERT_TRUE(decoder.feed(stream));  // only the first header is looked at here
  EXPECT_TRUE(decoder.next().has_value());
  EXPECT_FALSE(decoder.next().has_value());
  EXPECT_TRUE(decoder.failed());
  EXPECT_NE(decoder.error().find("empty"), std::string::npos) << decoder.error();
}

TEST(FrameTest, LengthOverLimitFailsAndDecoderStaysFailed) {
  constexpr std::size_t kLimit = 1024;
  FrameDecoder decoder(kLimit);
  EXPECT_FALSE(decoder.feed(header(kLimit + 8)));
  EXPECT_TRUE(decoder.failed());
  EXPECT_NE(decoder.error().find("1024"), std::string::npos) << decoder.error();
  EXPECT_NE(decoder.error().find("limit"), std::string::npos) << decoder.error();
  EXPECT_FALSE(decoder.next().has_value());

  // Nothing is accepted afterwards, not even a well-formed frame.
  const std::string error = decoder.error();
  EXPECT_FALSE(decoder.feed(encode_frame(make_payload(1, 1))));
  EXPECT_FALSE(decoder.next().has_value());
  EXPECT_TRUE(decoder.failed());
  EXPECT_EQ(decoder.error(), error);
}

TEST(FrameTest, LengthAtLimitIsAccepted) {
  constexpr std::size_t kLimit = 64;
  FrameDecoder decoder(kLimit);
  auto payload = make_payload(kLimit / 8, 5);
  ASSERT_TRUE(decoder.feed(encode_frame(payload)));
  auto frame = decoder.next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame_bytes(*frame), payload);
}

TEST(FrameTest, HugeLengthFailsBeforeThePayloadArrives) {
  FrameDecoder decoder;  // default limit
  EXPECT_FALSE(decoder.feed(header(0xFFFFFFF8u)));
  EXPECT_TRUE(decoder.failed());
  EXPECT_NE(decoder.error().find(std::to_string(kDefaultMaxFrameBytes)), std::string::npos)
      << decoder.error();
}

TEST(FrameTest, LengthNotAMultipleOfEightFails) {
  for (std::uint32_t length : {1u, 4u, 7u, 9u, 15u, 17u}) {
    FrameDecoder decoder;
    EXPECT_FALSE(decoder.feed(header(length))) << length;
    EXPECT_TRUE(decoder.failed()) << length;
    EXPECT_NE(decoder.error().find("word"), std::string::npos) << decoder.error();
    EXPECT_FALSE(decoder.next().has_value());
  }
}

TEST(FrameTest, ManyFramesDoNotGrowTheBuffer) {
  // 20000 frames of 48 payload bytes (about 1 MB in all), fed in 77-byte chunks that never line
  // up with frame boundaries, so the consumed prefix is never the whole buffer.
  constexpr std::size_t kFrames = 20000;
  constexpr std::size_t kChunk = 77;
  const std::vector<std::byte> framed = encode_frame(make_payload(6, 11));
  std::vector<std::byte> stream;
  stream.reserve(kFrames * framed.size());
  for (std::size_t i = 0; i < kFrames; ++i)
    stream.insert(stream.end(), framed.begin(), framed.end());

  FrameDecoder decoder;
  std::size_t received = 0;
  std::size_t max_buffered = 0;
  for (std::size_t pos = 0; pos < stream.size(); pos += kChunk) {
    const std::size_t take = std::min(kChunk, stream.size() - pos);
    ASSERT_TRUE(decoder.feed(std::span(stream).subspan(pos, take)));
    while (auto frame = decoder.next()) {
      ++received;
      ASSERT_EQ(frame->words.size(), 6u);
    }
    max_buffered = std::max(max_buffered, decoder.buffered_bytes());
  }
  EXPECT_EQ(received, kFrames);
  EXPECT_FALSE(decoder.failed());
  // Only the tail of an incomplete frame ever stays buffered.
  EXPECT_LT(max_buffered, framed.size() + kChunk);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameTest, ManyWholeFramesOneAtATimeLeaveNothingBuffered) {
  FrameDecoder decoder;
  const auto framed = encode_frame(make_payload(128, 3));  // 1 KiB frames, 4 MiB in all
  for (int i = 0; i < 4096; ++i) {
    ASSERT_TRUE(decoder.feed(framed));
    ASSERT_TRUE(decoder.next().has_value());
    ASSERT_EQ(decoder.buffered_bytes(), 0u);
  }
}

}  // namespace
}  // namespace atl::transport
