// The codec: well-formed Handshake and Envelope messages round-trip through encode() and the
// decoders, and every field the runtime reads is validated.
#include "tests/transport/codec_test_support.hpp"

namespace atl::transport {
namespace {

using namespace codec_test;

// ---- Handshake round trips -------------------------------------------------------------------

TEST(CodecTest, HelloRoundTrips) {
  const Nonce nonce = make_nonce();
  capnp::MallocMessageBuilder m;
  build_hello(m, nonce, "node-7", wire::Role::WORKER);
  auto result = decode_handshake(to_frame(m));
  ASSERT_TRUE(result.message.has_value()) << result.error;
  EXPECT_TRUE(result.error.empty());
  auto root = result.message->root();
  ASSERT_EQ(root.which(), wire::Handshake::HELLO);
  auto hello = root.getHello();
  EXPECT_EQ(hello.getProtocolVersion(), wire::PROTOCOL_VERSION);
  EXPECT_EQ(hello.getRole(), wire::Role::WORKER);
  EXPECT_EQ(std::string(hello.getName().cStr()), "node-7");
  auto got = bytes_of(hello.getClientNonce());
  EXPECT_EQ(got, std::vector<std::byte>(nonce.begin(), nonce.end()));
}

TEST(CodecTest, HelloWithEveryRoleAndEmptyName) {
  for (auto role : {wire::Role::DRIVER, wire::Role::NODE, wire::Role::WORKER}) {
    capnp::MallocMessageBuilder m;
    build_hello(m, make_nonce(), "", role);
    auto result = decode_handshake(to_frame(m));
    ASSERT_TRUE(result.message.has_value()) << result.error;
    EXPECT_EQ(result.message->root().getHello().getRole(), role);
    EXPECT_EQ(result.message->root().getHello().getName().size(), 0u);
  }
}

TEST(CodecTest, ChallengeRoundTrips) {
  const Nonce server = make_nonce();
  const AuthProof proof = server_proof("0123456789abcdef-token", make_nonce(), server);
  capnp::MallocMessageBuilder m;
  auto c = m.initRoot<wire::Handshake>().initChallenge();
  c.setProtocolVersion(wire::PROTOCOL_VERSION);
  c.setServerNonce(as_capnp(server));
  c.setServerProof(as_capnp(proof));
  auto result = decode_handshake(to_frame(m));
  ASSERT_TRUE(result.message.has_value()) << result.error;
  auto root = result.message->root();
  ASSERT_EQ(root.which(), wire::Handshake::CHALLENGE);
  EXPECT_EQ(root.getChallenge().getProtocolVersion(), wire::PROTOCOL_VERSION);
  EXPECT_EQ(bytes_of(root.getChallenge().getServerNonce()),
            std::vector<std::byte>(server.begin(), server.end()));
  EXPECT_EQ(bytes_of(root.getChallenge().getServerProof()),
            std::vector<std::byte>(proof.begin(), proof.end()));
}

TEST(CodecTest, ProofRoundTrips) {
  const auto proof = filled(kProofBytes, 3);
  capnp::MallocMessageBuilder m;
  m.initRoot<wire::Handshake>().initProof().setClientProof(as_capnp(proof));
  auto result = decode_handshake(to_frame(m));
  ASSERT_TRUE(result.message.has_value()) << result.error;
  ASSERT_EQ(result.message->root().which(), wire::Handshake::PROOF);
  EXPECT_EQ(bytes_of(result.message->root().getProof().getClientProof()), proof);
}

TEST(CodecTest, WelcomeRoundTrips) {
  capnp::MallocMessageBuilder m;
  m.initRoot<wire::Handshake>().initWelcome().setSessionId(0xfeedfacecafebeefull);
  auto result = decode_handshake(to_frame(m));
  ASSERT_TRUE(result.message.has_value()) << result.error;
  ASSERT_EQ(result.message->root().which(), wire::Handshake::WELCOME);
  EXPECT_EQ(result.message->root().getWelcome().getSessionId(), 0xfeedfacecafebeefull);
}

TEST(CodecTest, RefusalRoundTrips) {
  for (auto reason : {wire::RefusalReason::VERSION_MISMATCH,
                      wire::RefusalReason::AUTHENTICATION_FAILED, wire::RefusalReason::MALFORMED}) {
    capnp::MallocMessageBuilder m;
    auto r = m.initRoot<wire::Handshake>().initRefusal();
    r.setReason(reason);
    r.setMessage("go away");
    auto result = decode_handshake(to_frame(m));
    ASSERT_TRUE(result.message.has_value()) << result.error;
    ASSERT_EQ(result.message->root().which(), wire::Handshake::REFUSAL);
    EXPECT_EQ(result.message->root().getRefusal().getReason(), reason);
    EXPECT_EQ(std::string(result.message->root().getRefusal().getMessage().cStr()), "go away");
  }
}

TEST(CodecTest, DecodedMessageOutlivesTheResultMove) {
  capnp::MallocMessageBuilder m;
  build_hello(m, make_nonce(), "moved");
  auto result = decode_handshake(to_frame(m));
  ASSERT_TRUE(result.message.has_value()) << result.error;
  std::optional<Decoded<wire::Handshake>> moved = std::move(result.message);
  result = {};
  EXPECT_EQ(std::string(moved->root().getHello().getName().cStr()), "moved");
}

TEST(CodecTest, MultiSegmentMessageRoundTrips) {
  // A tiny fixed first segment forces the builder to spill into more segments (far pointers).
  capnp::MallocMessageBuilder m(1, capnp::AllocationStrategy::FIXED_SIZE);
  const Nonce nonce = make_nonce();
  build_hello(m, nonce, std::string(200, 'x'));
  ASSERT_GT(m.getSegmentsForOutput().size(), 1u);
  auto result = decode_handshake(to_frame(m));
  ASSERT_TRUE(result.message.has_value()) << result.error;
  EXPECT_EQ(result.message->root().getHello().getName().size(), 200u);
  EXPECT_EQ(bytes_of(result.message->root().getHello().getClientNonce()),
            std::vector<std::byte>(nonce.begin(), nonce.end()));
}

// ---- Envelope round trips --------------------------------------------------------------------

TEST(CodecTest, PingRoundTrips) {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire::Envelope>();
  e.setRequestId(77);
  e.setTimeoutMs(1500);
  e.getBody().initPing().setSentNs(123456789);
  auto result = decode_envelope(to_frame(m));
  ASSERT_TRUE(result.message.has_value()) << result.error;
  auto root = result.message->root();
  EXPECT_EQ(root.getRequestId(), 77u);
  EXPECT_EQ(root.getTimeoutMs(), 1500u);
  ASSERT_EQ(root.getBody().which(), wire::Envelope::Body::PING);
  EXPECT_EQ(root.getBody().getPing().getSentNs(), 123456789u);
}

TEST(CodecTest, PongRoundTrips) {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire::Envelope>();
  e.setRequestId(78);
  e.getBody().initPong().setSentNs(~0ull);
  auto result = decode_envelope(to_frame(m));
  ASSERT_TRUE(result.message.has_value()) << result.error;
  auto root = result.message->root();
  EXPECT_EQ(root.getRequestId(), 78u);
  EXPECT_EQ(root.getTimeoutMs(), 0u);
  ASSERT_EQ(root.getBody().which(), wire::Envelope::Body::PONG);
  EXPECT_EQ(root.getBody().getPong().getSentNs(), ~0ull);
}

TEST(CodecTest, ErrorReplyRoundTrips) {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire::Envelope>();
  e.setRequestId(5);
  auto err = e.getBody().initError();
  err.setCategory(wire::ErrorCategory::INVALID_ARGUMENT);
  err.setMessage("bad request");
  auto result = decode_envelope(to_frame(m));
  ASSERT_TRUE(result.message.has_value()) << result.error;
  auto body = result.message->root().getBody();
  ASSERT_EQ(body.which(), wire::Envelope::Body::ERROR);
  EXPECT_EQ(body.getError().getCategory(), wire::ErrorCategory::INVALID_ARGUMENT);
  EXPECT_EQ(std::string(body.getError().getMessage().cStr()), "bad request");
}

TEST(CodecTest, ErrorReplyWithLongestAllowedMessage) {
  capnp::MallocMessageBuilder m;
  auto err = m.initRoot<wire::Envelope>().getBody().initError();
  err.setCategory(wire::ErrorCategory::UNIMPLEMENTED);
  err.setMessage(std::string(kMaxMessageTextBytes, 'e'));
  auto result = decode_envelope(to_frame(m));
  ASSERT_TRUE(result.message.has_value()) << result.error;
  EXPECT_EQ(result.message->root().getBody().getError().getMessage().size(), kMaxMessageTextBytes);
}

// ---- Field validation ------------------------------------------------------------------------

TEST(CodecTest, HelloWithShortNonceIsRejected) {
  const auto nonce = filled(kNonceBytes - 1, 1);
  capnp::MallocMessageBuilder m;
  auto hello = m.initRoot<wire::Handshake>().initHello();
  hello.setRole(wire::Role::DRIVER);
  hello.setClientNonce(as_capnp(nonce));
  auto result = decode_handshake(to_frame(m));
  EXPECT_FALSE(result.message.has_value());
  EXPECT_NE(result.error.find("nonce"), std::string::npos) << result.error;
}

TEST(CodecTest, HelloWithLongOrMissingNonceIsRejected) {
  {
    const auto nonce = filled(kNonceBytes + 1, 1);
    capnp::MallocMessageBuilder m;
    m.initRoot<wire::Handshake>().initHello().setClientNonce(as_capnp(nonce));
    auto result = decode_handshake(to_frame(m));
    EXPECT_FALSE(result.message.has_value());
    EXPECT_NE(result.error.find("nonce"), std::string::npos) << result.error;
  }
  {
    capnp::MallocMessageBuilder m;
    m.initRoot<wire::Handshake>().initHello().setName("no nonce");
    auto result = decode_handshake(to_frame(m));
    EXPECT_FALSE(result.message.has_value());
    EXPECT_NE(result.error.find("nonce"), std::string::npos) << result.error;
  }
}

TEST(CodecTest, ProofOfWrongSizeIsRejected) {
  for (std::size_t size : {std::size_t{0}, kProofBytes - 1, kProofBytes + 1, std::size_t{64}}) {
    const auto proof = filled(size, 2);
    capnp::MallocMessageBuilder m;
    m.initRoot<wire::Handshake>().initProof().setClientProof(as_capnp(proof));
    auto result = decode_handshake(to_frame(m));
    EXPECT_FALSE(result.message.has_value()) << size;
    EXPECT_NE(result.error.find("proof"), std::string::npos) << result.error;
  }
}

TEST(CodecTest, ChallengeWithWrongSizedFieldsIsRejected) {
  {
    capnp::MallocMessageBuilder m;
    auto c = m.initRoot<wire::Handshake>().initChallenge();
    c.setServerNonce(as_capnp(filled(kNonceBytes - 1, 1)));
    c.setServerProof(as_capnp(filled(kProofBytes, 1)));
    auto result = decode_handshake(to_frame(m));
    EXPECT_FALSE(result.message.has_value());
    EXPECT_NE(result.error.find("server nonce"), std::string::npos) << result.error;
  }
  {
    capnp::MallocMessageBuilder m;
    auto c = m.initRoot<wire::Handshake>().initChallenge();
    c.setServerNonce(as_capnp(filled(kNonceBytes, 1)));
    c.setServerProof(as_capnp(filled(kProofBytes + 8, 1)));
    auto result = decode_handshake(to_frame(m));
    EXPECT_FALSE(result.message.has_value());
    EXPECT_NE(result.error.find("server proof"), std::string::npos) << result.error;
  }
}

TEST(CodecTest, NameAtTheLimitIsAcceptedAndLongerIsRejected) {
  {
    capnp::MallocMessageBuilder m;
    build_hello(m, make_nonce(), std::string(kMaxNameBytes, 'n'));
    auto result = decode_handshake(to_frame(m));
    ASSERT_TRUE(result.message.has_value()) << result.error;
  }
  {
    capnp::MallocMessageBuilder m;
    build_hello(m, make_nonce(), std::string(kMaxNameBytes + 1, 'n'));
    auto result = decode_handshake(to_frame(m));
    EXPECT_FALSE(result.message.has_value());
    EXPECT_NE(result.error.find("name"), std::string::npos) << result.error;
  }
}

TEST(CodecTest, OverlongRefusalAndErrorTextsAreRejected) {
  {
    capnp::MallocMessageBuilder m;
    auto r = m.initRoot<wire::Handshake>().initRefusal();
    r.setReason(wire::RefusalReason::MALFORMED);
    r.setMessage(std::string(kMaxMessageTextBytes + 1, 'r'));
    auto result = decode_handshake(to_frame(m));
    EXPECT_FALSE(result.message.has_value());
    EXPECT_NE(result.error.find("too long"), std::string::npos) << result.error;
  }
  {
    capnp::MallocMessageBuilder m;
    m.initRoot<wire::Envelope>().getBody().initError().setMessage(
        std::string(kMaxMessageTextBytes + 1, 'e'));
    auto result = decode_envelope(to_frame(m));
    EXPECT_FALSE(result.message.has_value());
    EXPECT_NE(result.error.find("too long"), std::string::npos) << result.error;
  }
}

TEST(CodecTest, UnknownEnumValuesAreRejected) {
  {
    capnp::MallocMessageBuilder m;
    build_hello(m, make_nonce(), "x", static_cast<wire::Role>(3));
    auto result = decode_handshake(to_frame(m));
    EXPECT_FALSE(result.message.has_value());
    EXPECT_NE(result.error.find("role"), std::string::npos) << result.error;
  }
  {
    capnp::MallocMessageBuilder m;
    m.initRoot<wire::Handshake>().initRefusal().setReason(static_cast<wire::RefusalReason>(0xffff));
    auto result = decode_handshake(to_frame(m));
    EXPECT_FALSE(result.message.has_value());
    EXPECT_NE(result.error.find("reason"), std::string::npos) << result.error;
  }
  {
    capnp::MallocMessageBuilder m;
    m.initRoot<wire::Envelope>().getBody().initError().setCategory(
        static_cast<wire::ErrorCategory>(7));
    auto result = decode_envelope(to_frame(m));
    EXPECT_FALSE(result.message.has_value());
    EXPECT_NE(result.error.find("category"), std::string::npos) << result.error;
  }
}

TEST(CodecTest, UnknownUnionMembersAreRejected) {
  // Handshake: 1 data word (discriminant at bits 0..15), 1 pointer.
  for (std::uint64_t member : {5u, 0xffffu}) {
    auto h = decode_handshake(words_frame({one_segment(3), struct_ptr(0, 1, 1), member, 0}));
    EXPECT_FALSE(h.message.has_value()) << member;
    EXPECT_NE(h.error.find("unknown"), std::string::npos) << h.error;
  }
  // Envelope: 2 data words (body discriminant at bits 32..47 of the second), 1 pointer.
  auto e = decode_envelope(
      words_frame({one_segment(4), struct_ptr(0, 2, 1), 1, std::uint64_t{0xffff} << 32, 0}));
  EXPECT_FALSE(e.message.has_value());
  EXPECT_NE(e.error.find("unknown"), std::string::npos) << e.error;
}

}  // namespace
}  // namespace atl::transport
