// The data plane's wire format: every message round-trips, and every field a peer could get wrong
// is refused by the decoder with a reason.
#include "transport/data_wire.hpp"

#include <gtest/gtest.h>

namespace atl::transport::data_wire {
namespace {

std::optional<Header> decode(const HeaderBytes& bytes, Phase phase, std::string& why) {
  return decode_header(bytes, phase, 1u << 20, why);
}

// The header of an encoded message, decoded.
Header head_of(const std::vector<std::byte>& message, Phase phase) {
  HeaderBytes bytes;
  std::copy_n(message.begin(), kHeaderBytes, bytes.begin());
  std::string why;
  auto h = decode(bytes, phase, why);
  EXPECT_TRUE(h) << why;
  return h.value_or(Header{});
}

std::span<const std::byte> body_of(const std::vector<std::byte>& message) {
  return std::span(message).subspan(kHeaderBytes);
}

Hello sample_hello() {
  Hello h;
  h.channel_id = 42;
  h.window_bytes = 1u << 20;
  h.stream_index = 1;
  h.stream_count = 3;
  h.max_chunk_bytes = 64 * 1024;
  h.nonce = make_nonce();
  h.name = "node-7";
  return h;
}

TEST(DataWire, HeadersRoundTrip) {
  Header h{.type = MessageType::chunk, .body_length = 4096, .id = 7, .value = 1u << 20};
  std::string why;
  auto back = decode(encode_header(h), Phase::open, why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->type, MessageType::chunk);
  EXPECT_EQ(back->body_length, 4096u);
  EXPECT_EQ(back->id, 7u);
  EXPECT_EQ(back->value, 1u << 20);
}

TEST(DataWire, HeadersWithAnythingOutOfPlaceAreRefused) {
  struct Case {
    const char* what;
    Header header;
    Phase phase;
    std::function<void(HeaderBytes&)> tamper;
  };
  const std::vector<Case> cases = {
      {"unknown type",
       {.type = MessageType::credit, .value = 1},
       Phase::open,
       [](HeaderBytes& b) { b[0] = std::byte{99}; }},
      {"transfer message during the handshake",
       {.type = MessageType::credit, .value = 1},
       Phase::handshake,
       {}},
      {"handshake message after it", {.type = MessageType::welcome}, Phase::open, {}},
      {"reserved bytes",
       {.type = MessageType::credit, .value = 1},
       Phase::open,
       [](HeaderBytes& b) { b[3] = std::byte{1}; }},
      {"unknown flag",
       {.type = MessageType::offer, .flags = 2, .body_length = 24},
       Phase::open,
       {}},
      {"eager flag outside OFFER",
       {.type = MessageType::accept, .flags = kFlagEager, .id = 1},
       Phase::open,
       {}},
      {"chunk above the limit",
       {.type = MessageType::chunk, .body_length = (1u << 20) + 1},
       Phase::open,
       {}},
      {"empty chunk", {.type = MessageType::chunk, .body_length = 0}, Phase::open, {}},
      {"OFFER body too short", {.type = MessageType::offer, .body_length = 23}, Phase::open, {}},
      {"REJECT message too long",
       {.type = MessageType::reject, .body_length = 1025},
       Phase::open,
       {}},
      {"CREDIT with an id", {.type = MessageType::credit, .id = 3, .value = 1}, Phase::open, {}},
      {"ACCEPT with a value", {.type = MessageType::accept, .id = 3, .value = 1}, Phase::open, {}},
      {"HELLO without its fixed part",
       {.type = MessageType::hello, .body_length = 47},
       Phase::handshake,
       {}},
      {"HELLO with a long name",
       {.type = MessageType::hello, .body_length = 48 + 65},
       Phase::handshake,
       {}},
      {"PROOF of the wrong size",
       {.type = MessageType::proof, .body_length = 31},
       Phase::handshake,
       {}},
      {"REFUSED too long",
       {.type = MessageType::refused, .body_length = 257},
       Phase::handshake,
       {}},
  };
  for (const auto& c : cases) {
    HeaderBytes bytes = encode_header(c.header);
    if (c.tamper) c.tamper(bytes);
    std::string why;
    EXPECT_FALSE(decode(bytes, c.phase, why)) << c.what;
    EXPECT_FALSE(why.empty()) << c.what;
  }
}

TEST(DataWire, HelloRoundTripsAndIsChecked) {
  Hello h = sample_hello();
  auto message = encode(h);
  std::string why;
  auto back = decode_hello(head_of(message, Phase::handshake), body_of(message), why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->channel_id, 42u);
  EXPECT_EQ(back->window_bytes, 1u << 20);
  EXPECT_EQ(back->stream_index, 1);
  EXPECT_EQ(back->stream_count, 3);
  EXPECT_EQ(back->max_chunk_bytes, 64u * 1024);
  EXPECT_EQ(back->nonce, h.nonce);
  EXPECT_EQ(back->name, "node-7");

  auto refused = [&](Hello bad, const char* what) {
    auto m = encode(bad);
    std::string reason;
    EXPECT_FALSE(decode_hello(head_of(m, Phase::handshake), body_of(m), reason)) << what;
    EXPECT_FALSE(reason.empty()) << what;
  };
  Hello bad = h;
  bad.stream_index = 3;
  refused(bad, "stream index beyond the count");
  bad = h;
  bad.stream_count = kMaxStreams + 1;
  bad.stream_index = 0;
  refused(bad, "too many streams");
  bad = h;
  bad.window_bytes = kMinWindowBytes - 1;
  refused(bad, "tiny window");
  bad = h;
  bad.window_bytes = kMaxWindowBytes + 1;
  refused(bad, "huge window");
  bad = h;
  bad.max_chunk_bytes = kMaxChunkBytes + 1;
  refused(bad, "huge chunks");
  bad = h;
  bad.channel_id = 0;
  refused(bad, "channel 0");
  bad = h;
  bad.name = "bad\nname";
  refused(bad, "unprintable name");

  auto wrong_magic = encode(h);
  wrong_magic[kHeaderBytes] = std::byte{'X'};
  EXPECT_FALSE(decode_hello(head_of(wrong_magic, Phase::handshake), body_of(wrong_magic), why));
}

TEST(DataWire, AnotherVersionIsDecodedSoItCanBeRefusedByName) {
  Hello h = sample_hello();
  h.version = kProtocolVersion + 1;
  h.stream_index = 9;  // whatever else it says is not checked against this version's rules
  auto message = encode(h);
  std::string why;
  auto back = decode_hello(head_of(message, Phase::handshake), body_of(message), why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->version, kProtocolVersion + 1);
}

TEST(DataWire, ChallengeRoundTrips) {
  Challenge c{.window_bytes = 2u << 20,
              .max_chunk_bytes = 1u << 20,
              .nonce = make_nonce(),
              .proof = {},
              .name = "head"};
  c.proof[5] = std::byte{9};
  auto message = encode(c);
  std::string why;
  auto back = decode_challenge(head_of(message, Phase::handshake), body_of(message), why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->window_bytes, 2u << 20);
  EXPECT_EQ(back->max_chunk_bytes, 1u << 20);
  EXPECT_EQ(back->nonce, c.nonce);
  EXPECT_EQ(back->proof, c.proof);
  EXPECT_EQ(back->name, "head");
}

TEST(DataWire, BoundNoncesCoverEveryAnnouncedField) {
  const Hello h = sample_hello();
  const Nonce base = bind_client_nonce(h);
  EXPECT_NE(base, h.nonce);
  auto differs = [&](Hello changed) { return bind_client_nonce(changed) != base; };
  Hello c = h;
  c.channel_id++;
  EXPECT_TRUE(differs(c));
  c = h;
  c.window_bytes++;
  EXPECT_TRUE(differs(c));
  c = h;
  c.stream_index = 2;
  EXPECT_TRUE(differs(c));
  c = h;
  c.max_chunk_bytes *= 2;
  EXPECT_TRUE(differs(c));
  c = h;
  c.name = "node-8";
  EXPECT_TRUE(differs(c));
  Challenge ch{.window_bytes = 1u << 20, .max_chunk_bytes = 1u << 20, .nonce = h.nonce};
  EXPECT_NE(bind_server_nonce(ch), base) << "client and server bindings share a label";
}

TEST(DataWire, OffersRoundTripAndAreChecked) {
  std::vector<std::byte> out;
  append_offer(out, {.transfer_id = 5,
                     .size = 3000,
                     .object = {.owner = 11, .sequence = 12},
                     .chunk_bytes = 4096,
                     .eager = true});
  ASSERT_EQ(out.size(), kHeaderBytes + 24);
  std::string why;
  auto offer = decode_offer(head_of(out, Phase::open), body_of(out), why);
  ASSERT_TRUE(offer) << why;
  EXPECT_EQ(offer->transfer_id, 5u);
  EXPECT_EQ(offer->size, 3000u);
  EXPECT_EQ(offer->object.owner, 11u);
  EXPECT_EQ(offer->object.sequence, 12u);
  EXPECT_EQ(offer->chunk_bytes, 4096u);
  EXPECT_TRUE(offer->eager);

  auto refused = [&](Offer o, const char* what) {
    std::vector<std::byte> m;
    append_offer(m, o);
    std::string reason;
    EXPECT_FALSE(decode_offer(head_of(m, Phase::open), body_of(m), reason)) << what;
  };
  refused({.transfer_id = 1, .size = 5000, .chunk_bytes = 4096, .eager = true},
          "eager object larger than a chunk");
  refused({.transfer_id = 1, .size = 0, .chunk_bytes = 4096, .eager = true}, "eager and empty");
  refused({.transfer_id = 1, .size = 10, .chunk_bytes = 100}, "tiny chunks");
  refused({.transfer_id = 1, .size = 10, .chunk_bytes = kMaxChunkBytes + 1}, "huge chunks");
}

TEST(DataWire, RejectsCarryAKnownCategory) {
  std::vector<std::byte> out;
  append_reject(out, 3, ErrorCategory::overloaded, "the store is full");
  const Header h = head_of(out, Phase::open);
  std::string why;
  EXPECT_EQ(decode_reject_category(h, why), ErrorCategory::overloaded);
  EXPECT_EQ(decode_reject_message(body_of(out)), "the store is full");
  Header unknown = h;
  unknown.value = 7;
  EXPECT_FALSE(decode_reject_category(unknown, why));
  const std::byte odd[] = {std::byte{'o'}, std::byte{0x07}, std::byte{'k'}};
  EXPECT_EQ(decode_reject_message(odd), "o?k");
}

}  // namespace
}  // namespace atl::transport::data_wire
