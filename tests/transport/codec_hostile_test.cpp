// The codec against hostile and malformed input: bad segment tables, truncation, out-of-bounds and
// mistyped pointers, amplification, random garbage, the wrong root type, and repeated reads of
// accepted messages (regressions found by the wire fuzzer).
#include "tests/transport/codec_test_support.hpp"

namespace atl::transport {
namespace {

using namespace codec_test;

// ---- Structurally malformed frames -----------------------------------------------------------

TEST(CodecTest, EmptyAndRootlessFramesAreErrors) {
  for (auto* decode : {+[](Frame f) { return decode_envelope(std::move(f)).error; },
                       +[](Frame f) { return decode_handshake(std::move(f)).error; }}) {
    EXPECT_FALSE(decode(Frame{}).empty());
    EXPECT_FALSE(decode(words_frame({one_segment(0)})).empty());
    EXPECT_FALSE(decode(words_frame({0})).empty());
  }
}

TEST(CodecTest, SegmentTablesClaimingHugeCountsOrSizesAreErrors) {
  const std::vector<std::vector<std::uint64_t>> cases = {
      {0xffffffffull, 0, 0, 0},                    // 2^32 segments
      {0x00000400ull | 0xffffffff00000000ull, 0},  // 1025 segments of huge size
      {one_segment(0xffffffffu), 0, 0},            // one segment of 2^32-1 words
      {one_segment(0x7fffffffu), struct_ptr(0, 1, 1)},
      {1ull | one_segment(1), 0xffffffffull, 0},  // 2nd segment of 2^32-1 words
      {511ull, 0, 0, 0},                          // 512 segments, table runs past the frame
  };
  for (const auto& words : cases) {
    DecodeResult<wire::Envelope> e;
    DecodeResult<wire::Handshake> h;
    EXPECT_NO_THROW(e = decode_envelope(words_frame(words)));
    EXPECT_NO_THROW(h = decode_handshake(words_frame(words)));
    EXPECT_FALSE(e.message.has_value());
    EXPECT_FALSE(h.message.has_value());
    EXPECT_FALSE(e.error.empty());
    EXPECT_FALSE(h.error.empty());
  }
}

TEST(CodecTest, TrailingWordsAfterTheMessageAreRejected) {
  capnp::MallocMessageBuilder m;
  m.initRoot<wire::Envelope>().getBody().initPing().setSentNs(1);
  Frame frame = to_frame(m);
  ASSERT_TRUE(decode_envelope(frame).message.has_value());
  frame.words.push_back(0);
  auto result = decode_envelope(std::move(frame));
  EXPECT_FALSE(result.message.has_value());
  EXPECT_NE(result.error.find("trailing"), std::string::npos) << result.error;
}

TEST(CodecTest, TruncatedMessageIsAnError) {
  capnp::MallocMessageBuilder m;
  build_hello(m, make_nonce(), "truncated");
  Frame frame = to_frame(m);
  while (frame.words.size() > 1) {
    frame.words.pop_back();
    auto result = decode_handshake(frame);
    EXPECT_FALSE(result.message.has_value()) << frame.words.size() << " words";
    EXPECT_FALSE(result.error.empty());
  }
}

TEST(CodecTest, PointersOutOfBoundsAreErrors) {
  // Root pointer past the segment's end.
  auto a = decode_handshake(words_frame({one_segment(2), struct_ptr(1000, 1, 1), 0}));
  EXPECT_FALSE(a.message.has_value());
  expect_limit_or_malformed(a.error);
  // Root pointer before the segment's start.
  auto b = decode_envelope(words_frame({one_segment(2), struct_ptr(-10, 2, 1), 0}));
  EXPECT_FALSE(b.message.has_value());
  expect_limit_or_malformed(b.error);
  // Far pointer to a segment that does not exist.
  auto c = decode_envelope(words_frame({one_segment(2), 2u | (7ull << 32), 0}));
  EXPECT_FALSE(c.message.has_value());
  expect_limit_or_malformed(c.error);
}

TEST(CodecTest, AmplifyingListPointersAreErrors) {
  // Handshake{hello = <inline-composite list of 2^28 elements of a 0x7fff-word struct>}: the list
  // claims about 2^29 words though the frame holds 6.
  auto a = decode_handshake(words_frame({
      one_segment(5),
      struct_ptr(0, 1, 1),                      // root: Handshake, 1 data word, 1 pointer
      0,                                        // discriminant: hello
      list_ptr(0, kComposite, (1u << 29) - 1),  // "hello" as a huge composite list
      composite_tag(1u << 28, 0x7fff, 0),
      0,
  }));
  EXPECT_FALSE(a.message.has_value());
  expect_limit_or_malformed(a.error);

  // Hello.clientNonce as a byte list of 2^28 bytes.
  auto b = decode_handshake(words_frame({
      one_segment(6), struct_ptr(0, 1, 1), 0, struct_ptr(0, 1, 2),  // Hello
      0,                             // protocol version 0, role driver
      0,                             // name: null
      list_ptr(0, kByte, 1u << 28),  // clientNonce: 2^28 bytes
  }));
  EXPECT_FALSE(b.message.has_value());
  expect_limit_or_malformed(b.error);

  // Hello.name as 2^28 zero-sized structs: occupies one word but costs 2^28 to traverse.
  auto c = decode_handshake(words_frame({
      one_segment(7), struct_ptr(0, 1, 1), 0, struct_ptr(0, 1, 2),
      std::uint64_t{1} << 32,         // role node
      list_ptr(1, kComposite, 0),     // name: composite list of 0 words...
      0,                              // clientNonce: null
      composite_tag(1u << 28, 0, 0),  // ...holding 2^28 empty structs
  }));
  EXPECT_FALSE(c.message.has_value());
  expect_limit_or_malformed(c.error);

  // Envelope{ping = <list of 2^29-1 pointers>}.
  auto d = decode_envelope(words_frame({
      one_segment(4),
      struct_ptr(0, 2, 1),
      0,
      0,  // discriminant: ping
      list_ptr(0, kPointer, (1u << 29) - 1),
  }));
  EXPECT_FALSE(d.message.has_value());
  expect_limit_or_malformed(d.error);
}

TEST(CodecTest, RandomGarbageIsAnErrorNeverACrash) {
  std::mt19937_64 rng(20240531);
  int decoded = 0;
  for (int i = 0; i < 5000; ++i) {
    std::vector<std::uint64_t> words(1 + rng() % 40);
    for (auto& w : words) w = rng();
    // Half the time, a plausible one-segment table so the decoder gets past it.
    if (i % 2 == 0) words[0] = one_segment(static_cast<std::uint32_t>(words.size() - 1));
    DecodeResult<wire::Handshake> h;
    DecodeResult<wire::Envelope> e;
    ASSERT_NO_THROW(h = decode_handshake(words_frame(words)));
    ASSERT_NO_THROW(e = decode_envelope(words_frame(words)));
    EXPECT_NE(h.message.has_value(), !h.error.empty());
    EXPECT_NE(e.message.has_value(), !e.error.empty());
    decoded += h.message.has_value() + e.message.has_value();
  }
  // Nearly everything random is rejected; the count is just reported.
  RecordProperty("accepted", decoded);
}

// ---- Decoding as the wrong root --------------------------------------------------------------

std::vector<Frame> sample_envelopes() {
  std::vector<Frame> out;
  for (int kind = 0; kind < 3; ++kind) {
    for (std::uint64_t request : {0ull, 1ull, 2ull, 3ull, 4ull, 0x10004ull}) {
      capnp::MallocMessageBuilder m;
      auto e = m.initRoot<wire::Envelope>();
      e.setRequestId(request);  // its low 16 bits read as the Handshake discriminant
      e.setTimeoutMs(32);
      if (kind == 0) e.getBody().initPing().setSentNs(32);
      if (kind == 1) e.getBody().initPong().setSentNs(0x100000002ull);
      if (kind == 2) e.getBody().initError().setMessage(std::string(32, 'z'));
      out.push_back(to_frame(m));
    }
  }
  return out;
}

std::vector<Frame> sample_handshakes() {
  std::vector<Frame> out;
  {
    capnp::MallocMessageBuilder m;
    build_hello(m, make_nonce(), "hello");
    out.push_back(to_frame(m));
  }
  {
    capnp::MallocMessageBuilder m;
    auto c = m.initRoot<wire::Handshake>().initChallenge();
    c.setServerNonce(as_capnp(make_nonce()));
    c.setServerProof(as_capnp(make_nonce()));
    out.push_back(to_frame(m));
  }
  {
    capnp::MallocMessageBuilder m;
    m.initRoot<wire::Handshake>().initProof().setClientProof(as_capnp(make_nonce()));
    out.push_back(to_frame(m));
  }
  {
    capnp::MallocMessageBuilder m;
    m.initRoot<wire::Handshake>().initWelcome().setSessionId(2);
    out.push_back(to_frame(m));
  }
  {
    capnp::MallocMessageBuilder m;
    m.initRoot<wire::Handshake>().initRefusal().setMessage("no");
    out.push_back(to_frame(m));
  }
  return out;
}

TEST(CodecTest, EnvelopeDecodedAsHandshakeIsSane) {
  for (Frame& frame : sample_envelopes()) {
    DecodeResult<wire::Handshake> r;
    ASSERT_NO_THROW(r = decode_handshake(std::move(frame)));
    ASSERT_NE(r.message.has_value(), !r.error.empty()) << r.error;
    if (!r.message) continue;
    // Whatever was accepted must be readable without throwing.
    EXPECT_NO_THROW(wire_test::walk_message(r.message->root()));
    auto root = r.message->root();
    EXPECT_NO_THROW({
      switch (root.which()) {
        case wire::Handshake::HELLO:
          EXPECT_EQ(root.getHello().getClientNonce().size(), kNonceBytes);
          break;
        case wire::Handshake::CHALLENGE:
          EXPECT_EQ(root.getChallenge().getServerProof().size(), kProofBytes);
          break;
        case wire::Handshake::PROOF:
          EXPECT_EQ(root.getProof().getClientProof().size(), kProofBytes);
          break;
        case wire::Handshake::WELCOME:
          (void)root.getWelcome().getSessionId();
          break;
        case wire::Handshake::REFUSAL:
          EXPECT_LE(root.getRefusal().getMessage().size(), kMaxMessageTextBytes);
          break;
        default:
          ADD_FAILURE() << "accepted an unknown handshake member";
      }
    });
  }
}

TEST(CodecTest, HandshakeDecodedAsEnvelopeIsSane) {
  for (Frame& frame : sample_handshakes()) {
    DecodeResult<wire::Envelope> r;
    ASSERT_NO_THROW(r = decode_envelope(std::move(frame)));
    ASSERT_NE(r.message.has_value(), !r.error.empty()) << r.error;
    if (!r.message) continue;
    EXPECT_NO_THROW(wire_test::walk_message(r.message->root()));
    auto root = r.message->root();
    EXPECT_NO_THROW({
      (void)root.getRequestId();
      (void)root.getTimeoutMs();
      auto body = root.getBody();
      switch (body.which()) {
        case wire::Envelope::Body::PING:
          (void)body.getPing().getSentNs();
          break;
        case wire::Envelope::Body::PONG:
          (void)body.getPong().getSentNs();
          break;
        case wire::Envelope::Body::ERROR:
          EXPECT_LE(body.getError().getMessage().size(), kMaxMessageTextBytes);
          break;
        default:  // other members: covered by the walk above
          break;
      }
    });
  }
}

TEST(CodecTest, AcceptedMessagesCanBeWalkedCompletely) {
  for (Frame& frame : sample_handshakes()) {
    auto r = decode_handshake(std::move(frame));
    ASSERT_TRUE(r.message.has_value()) << r.error;
    EXPECT_NO_THROW(wire_test::walk_message(r.message->root()));
  }
  for (Frame& frame : sample_envelopes()) {
    auto r = decode_envelope(std::move(frame));
    ASSERT_TRUE(r.message.has_value()) << r.error;
    EXPECT_NO_THROW(wire_test::walk_message(r.message->root()));
  }
}

// For every pointer-typed member of `Union` (the root's union, or a group of it), a hand-built
// Root whose union holds that member with the pointer word `bad_pointer(type, offset)` returns,
// where `offset` makes a pointer reach a spare zero word at the segment's end. Returns the members
// whose message was accepted and then threw when read.
template <class Root, class Union, class MakePointer>
std::vector<std::string> accepted_but_unreadable_members(DecodeResult<Root> (*decode)(Frame),
                                                         MakePointer bad_pointer) {
  const auto root = capnp::Schema::from<Root>().getProto().getStruct();
  const auto group = capnp::Schema::from<Union>();
  const unsigned discriminant = group.getProto().getStruct().getDiscriminantOffset();  // 16-bit
  const std::uint16_t data_words = root.getDataWordCount();
  const std::uint16_t ptrs = root.getPointerCount();
  std::vector<std::string> bad;
  for (auto field : group.getUnionFields()) {
    const auto proto = field.getProto();
    if (!proto.isSlot()) continue;
    const auto type = field.getType().which();
    if (type != capnp::schema::Type::STRUCT && type != capnp::schema::Type::LIST &&
        type != capnp::schema::Type::TEXT && type != capnp::schema::Type::DATA)
      continue;
    std::vector<std::uint64_t> words(2 + data_words + ptrs + 1, 0);
    words[0] = one_segment(static_cast<std::uint32_t>(words.size() - 1));
    words[1] = struct_ptr(0, data_words, ptrs);
    words[2 + discriminant / 4] |= std::uint64_t{proto.getDiscriminantValue()}
                                   << (16 * (discriminant % 4));
    const std::size_t at = 2 + data_words + proto.getSlot().getOffset();
    words[at] = bad_pointer(type, static_cast<std::int32_t>(words.size() - 1 - (at + 1)));
    auto result = decode(words_frame(words));
    if (!result.message) continue;
    try {
      wire_test::walk_message(result.message->root());
    } catch (const kj::Exception& e) {
      bad.push_back(std::string(proto.getName().cStr()) + " (" + e.getDescription().cStr() + ")");
    }
  }
  return bad;
}

std::uint64_t out_of_bounds_pointer(capnp::schema::Type::Which, std::int32_t) {
  return struct_ptr(1000, 1, 0);
}

// In bounds, but of the wrong kind: an empty byte list where a struct is expected, a one-word
// struct where a list (or text or data) is.
std::uint64_t mistyped_pointer(capnp::schema::Type::Which type, std::int32_t offset) {
  return type == capnp::schema::Type::STRUCT ? list_ptr(offset, kByte, 0)
                                             : struct_ptr(offset, 1, 0);
}

TEST(CodecTest, OutOfBoundsPointersInValidatedMembersAreRejected) {
  // Members whose contents validation reads are rejected, not accepted.
  for (std::uint16_t member : {std::uint16_t{0}, std::uint16_t{1}, std::uint16_t{2},
                               std::uint16_t{4}}) {  // hello, challenge, proof, refusal
    auto r = decode_handshake(
        words_frame({one_segment(3), struct_ptr(0, 1, 1), member, struct_ptr(1000, 1, 0)}));
    EXPECT_FALSE(r.message.has_value()) << member;
    expect_limit_or_malformed(r.error);
  }
  for (std::uint16_t member : {std::uint16_t{0}, std::uint16_t{1}, std::uint16_t{2}}) {
    auto r = decode_envelope(words_frame({one_segment(4), struct_ptr(0, 2, 1), 0,
                                          std::uint64_t{member} << 32, struct_ptr(1000, 1, 0)}));
    EXPECT_FALSE(r.message.has_value()) << member;  // ping, pong, error
    expect_limit_or_malformed(r.error);
  }
}

// Regression: validate(Handshake) returned "" for WELCOME without following the welcome pointer,
// so decode_handshake() accepted Handshake{welcome = <out-of-bounds struct pointer>}, and the first
// read of root().getWelcome() then threw kj::Exception ("Message contained out-of-bounds struct
// pointer") out of an accepted message. Found by atoll_wire_fuzz within seconds.
TEST(CodecTest, WelcomeWithOutOfBoundsPointerIsRejected) {
  auto r = decode_handshake(words_frame(
      {one_segment(3), struct_ptr(0, 1, 1), wire::Handshake::WELCOME, struct_ptr(1000, 1, 0)}));
  if (!r.message) {
    expect_limit_or_malformed(r.error);
    return;
  }
  EXPECT_NO_THROW((void)r.message->root().getWelcome().getSessionId())
      << "decode_handshake accepted a Welcome it cannot read";
}

// Regression (same class): every union member whose contents validate() did not read was accepted
// even when its pointer was out of bounds, and reading it later threw: Handshake.welcome and
// Envelope.body.{nodeRegistered, heartbeat, statusRequest}. Schema-driven, so members added later
// are checked too.
TEST(CodecTest, NoUnionMemberWithAnOutOfBoundsPointerIsAccepted) {
  auto handshake = accepted_but_unreadable_members<wire::Handshake, wire::Handshake>(
      +[](Frame f) { return decode_handshake(std::move(f)); }, out_of_bounds_pointer);
  auto envelope = accepted_but_unreadable_members<wire::Envelope, wire::Envelope::Body>(
      +[](Frame f) { return decode_envelope(std::move(f)); }, out_of_bounds_pointer);
  for (const auto& m : handshake) ADD_FAILURE() << "Handshake." << m;
  for (const auto& m : envelope) ADD_FAILURE() << "Envelope.body." << m;
}

// Regression: totalSize() follows every pointer but does not know the schema, so a pointer of
// the wrong kind (a list where Handshake.welcome's struct belongs) used to be accepted and then
// threw on first read. decode_as() now also reads every field through the schema.
TEST(CodecTest, WelcomeWithAListPointerIsRejected) {
  auto r = decode_handshake(words_frame(
      {one_segment(3), struct_ptr(0, 1, 1), wire::Handshake::WELCOME, list_ptr(0, kByte, 0)}));
  if (!r.message) {
    expect_limit_or_malformed(r.error);
    return;
  }
  EXPECT_NO_THROW((void)r.message->root().getWelcome().getSessionId())
      << "decode_handshake accepted a Welcome it cannot read";
}

// Regression (same class), schema-driven so members added later are covered too.
TEST(CodecTest, NoUnionMemberWithAMistypedPointerIsAccepted) {
  auto handshake = accepted_but_unreadable_members<wire::Handshake, wire::Handshake>(
      +[](Frame f) { return decode_handshake(std::move(f)); }, mistyped_pointer);
  auto envelope = accepted_but_unreadable_members<wire::Envelope, wire::Envelope::Body>(
      +[](Frame f) { return decode_envelope(std::move(f)); }, mistyped_pointer);
  for (const auto& m : handshake) ADD_FAILURE() << "Handshake." << m;
  for (const auto& m : envelope) ADD_FAILURE() << "Envelope.body." << m;
}

// ---- Reading a decoded message ---------------------------------------------------------------

// Regression: decode_as() gave the FlatArrayMessageReader a traversal limit of 4x the frame's words
// (+64) and Decoded::root() read through that same reader, so every read of a field was charged
// against that budget for good. A valid Ping accepted by decode_envelope() could be read 13 times;
// the 14th read threw kj::Exception ("Exceeded message traversal limit") out of the accessors —
// from a message the decoder accepted and whose header says it "may be read from any thread".
TEST(CodecTest, DecodedMessageCanBeReadRepeatedly) {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire::Envelope>();
  e.setRequestId(9);
  e.getBody().initPing().setSentNs(42);
  auto result = decode_envelope(to_frame(m));
  ASSERT_TRUE(result.message.has_value()) << result.error;
  for (int i = 0; i < 1000; ++i) {
    std::uint64_t sent = 0;
    ASSERT_NO_THROW(sent = result.message->root().getBody().getPing().getSentNs()) << "read " << i;
    ASSERT_EQ(sent, 42u);
  }
}

// Same bug, with realistic use: an accepted ErrorReply with a 64 KiB message could be read three
// times; the fourth read of the text threw.
TEST(CodecTest, DecodedLongErrorTextCanBeReadSeveralTimes) {
  capnp::MallocMessageBuilder m;
  auto err = m.initRoot<wire::Envelope>().getBody().initError();
  err.setCategory(wire::ErrorCategory::FAILED);
  err.setMessage(std::string(kMaxMessageTextBytes, 'e'));
  auto result = decode_envelope(to_frame(m));
  ASSERT_TRUE(result.message.has_value()) << result.error;
  for (int i = 0; i < 8; ++i) {
    std::size_t size = 0;
    ASSERT_NO_THROW(size = result.message->root().getBody().getError().getMessage().size())
        << "read " << i;
    ASSERT_EQ(size, kMaxMessageTextBytes);
  }
}

}  // namespace
}  // namespace atl::transport
