// Hostile peers against a data plane, speaking the wire format by hand over a plain socket: junk
// before the handshake, an oversized handshake frame, and authenticated peers that announce an
// absurd object or break the transfer protocol. Each loses its own connection and nothing else:
// nothing is allocated for them and other channels keep working. The transfer protocol is the
// same code over every backend, so TCP covers it.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tests/transport/data_test_support.hpp"
#include "transport/data_wire.hpp"
#include "transport/frame.hpp"

namespace atl::data_test {
namespace {

namespace wire = transport::data_wire;

// A blocking client socket with a receive timeout, speaking raw bytes.
class RawPeer {
 public:
  explicit RawPeer(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{.tv_sec = 10, .tv_usec = 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawPeer() { ::close(fd_); }

  bool connected() const { return connected_; }
  bool send(std::span<const std::byte> bytes) { return transport::send_all(fd_, bytes); }
  bool recv(std::span<std::byte> into) {
    std::size_t got = 0;
    while (got < into.size()) {
      ssize_t n = ::recv(fd_, into.data() + got, into.size() - got, 0);
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    return true;
  }
  // The next message, or nullopt once the peer closed (or after the timeout).
  std::optional<std::pair<wire::Header, std::vector<std::byte>>> message(wire::Phase phase) {
    wire::HeaderBytes head;
    if (!recv(head)) return std::nullopt;
    std::string why;
    auto h = wire::decode_header(head, phase, wire::kMaxChunkBytes, why);
    EXPECT_TRUE(h) << why;
    if (!h) return std::nullopt;
    std::vector<std::byte> body(h->body_length);
    if (!recv(body)) return std::nullopt;
    return std::pair{*h, std::move(body)};
  }
  // True when the peer closes the connection (reads end) within the timeout.
  bool closed_by_peer() {
    std::byte b[4096];
    for (int i = 0; i < 10000; ++i) {
      ssize_t n = ::recv(fd_, b, sizeof b, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
    return false;
  }

  // Runs the dialler's side of the handshake; the listener's window per stream, or 0.
  std::uint64_t handshake(const std::string& token) {
    wire::Hello hello;
    hello.channel_id = 77;
    hello.window_bytes = 1u << 20;
    hello.max_chunk_bytes = 64 * 1024;
    hello.nonce = transport::make_nonce();
    hello.name = "hostile";
    if (!send(wire::encode(hello))) return 0;
    auto m = message(wire::Phase::handshake);
    if (!m) return 0;
    std::string why;
    auto challenge = wire::decode_challenge(m->first, m->second, why);
    if (!challenge) return 0;
    auto proof = transport::client_proof(token, wire::bind_client_nonce(hello),
                                         wire::bind_server_nonce(*challenge), wire::kProofRole);
    if (!send(wire::encode_proof(proof))) return 0;
    auto welcome = message(wire::Phase::handshake);
    if (!welcome || welcome->first.type != wire::MessageType::welcome) return 0;
    return challenge->window_bytes;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::vector<std::byte> header(wire::Header h) {
  auto b = wire::encode_header(h);
  return {b.begin(), b.end()};
}

std::vector<std::byte> offer(std::uint64_t id, std::uint64_t size, bool eager,
                             std::uint32_t chunk = 64 * 1024) {
  std::vector<std::byte> out;
  wire::append_offer(out, {.transfer_id = id,
                           .size = size,
                           .object = {.owner = 5, .sequence = id},
                           .chunk_bytes = chunk,
                           .eager = eager});
  return out;
}

std::vector<std::byte> chunk(std::uint64_t id, std::uint64_t offset, std::uint32_t length) {
  auto h = wire::chunk_header(id, offset, length);
  std::vector<std::byte> out(h.begin(), h.end());
  out.resize(out.size() + length, std::byte{0x5a});
  return out;
}

class DataHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    token_ = transport::generate_token();
    plane_ = std::make_unique<transport::DataPlane>(options_for(DataBackend::tcp, token_, "target"),
                                                    receiver_.handlers());
  }

  std::uint16_t port() const { return plane_->address().tcp_port; }

  // A well-behaved peer still gets an object through.
  void expect_others_unaffected() {
    Receiver r;
    transport::DataPlane other(options_for(DataBackend::tcp, token_, "honest"), r.handlers());
    auto channel = other.connect(plane_->address(), {}, kWait);
    const auto before = receiver_.objects().size();
    expect_sent(PendingSend(*channel, {.owner = 1, .sequence = 1000}, patterned(3u << 20, 1000)));
    EXPECT_TRUE(receiver_.wait_objects(before + 1));
  }

  std::string token_;
  Receiver receiver_;
  std::unique_ptr<transport::DataPlane> plane_;
};

TEST_F(DataHostileTest, JunkBeforeTheHandshakeClosesThatConnectionOnly) {
  RawPeer junk(port());
  ASSERT_TRUE(junk.connected());
  std::vector<std::byte> bytes(64, std::byte{0xee});
  junk.send(bytes);
  EXPECT_TRUE(junk.closed_by_peer());
  EXPECT_TRUE(eventually([&] { return plane_->stats().handshakes_refused >= 1; }));
  EXPECT_EQ(plane_->stats().channels_opened, 0u);
  expect_others_unaffected();
}

TEST_F(DataHostileTest, AnOversizedHandshakeMessageIsNeverRead) {
  RawPeer big(port());
  ASSERT_TRUE(big.connected());
  // A HELLO header announcing a 16 MiB body: refused on the header alone.
  auto h = wire::encode_header({.type = wire::MessageType::hello, .body_length = 16u << 20});
  big.send(h);
  EXPECT_TRUE(big.closed_by_peer());
  EXPECT_EQ(plane_->stats().channels_opened, 0u);
}

TEST_F(DataHostileTest, AProofWithoutTheTokenIsRefused) {
  RawPeer impostor(port());
  ASSERT_TRUE(impostor.connected());
  EXPECT_EQ(impostor.handshake(transport::generate_token()), 0u);
  EXPECT_EQ(plane_->stats().channels_opened, 0u);
  EXPECT_EQ(receiver_.allocations(), 0u);
}

TEST_F(DataHostileTest, AnAbsurdObjectIsRefusedAndNothingIsAllocated) {
  RawPeer peer(port());
  ASSERT_NE(peer.handshake(token_), 0u);
  ASSERT_TRUE(peer.send(offer(1, std::uint64_t{1} << 62, false)));
  auto m = peer.message(wire::Phase::open);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->first.type, wire::MessageType::reject);
  EXPECT_EQ(m->first.id, 1u);
  std::string why;
  EXPECT_EQ(wire::decode_reject_category(m->first, why), ErrorCategory::invalid_argument);
  EXPECT_NE(wire::decode_reject_message(m->second).find("exceeds"), std::string::npos);
  EXPECT_EQ(receiver_.allocations(), 0u);
  // The channel survives a refusal: an honest eager object on it completes.
  auto small = offer(2, 100, true);
  auto data = chunk(2, 0, 100);
  small.insert(small.end(), data.begin(), data.end());
  ASSERT_TRUE(peer.send(small));
  bool completed = false;
  for (int i = 0; i < 4 && !completed; ++i) {
    auto reply = peer.message(wire::Phase::open);
    ASSERT_TRUE(reply);
    completed = reply->first.type == wire::MessageType::complete && reply->first.id == 2;
  }
  EXPECT_TRUE(completed);
  EXPECT_EQ(receiver_.allocations(), 1u);
  ASSERT_TRUE(receiver_.wait_objects(1));
  EXPECT_EQ(receiver_.objects()[0].bytes.size(), 100u);
}

// Each breaks the protocol after an honest handshake (and, where it needs one, an accepted
// offer of 1 MiB in 64 KiB chunks as transfer 1): the target closes that channel, fails the
// object it had accepted, and serves everyone else.
struct Violation {
  const char* name;
  bool needs_offer;
  std::function<std::vector<std::byte>(std::uint64_t window)> bytes;
};

class DataViolationTest : public DataHostileTest,
                          public ::testing::WithParamInterface<Violation> {};

TEST_P(DataViolationTest, ClosesThatChannelOnly) {
  RawPeer peer(port());
  const std::uint64_t window = peer.handshake(token_);
  ASSERT_NE(window, 0u);
  if (GetParam().needs_offer) {
    ASSERT_TRUE(peer.send(offer(1, 1u << 20, false)));
    auto accept = peer.message(wire::Phase::open);
    ASSERT_TRUE(accept);
    ASSERT_EQ(accept->first.type, wire::MessageType::accept);
  }
  peer.send(GetParam().bytes(window));
  EXPECT_TRUE(peer.closed_by_peer()) << GetParam().name;
  if (GetParam().needs_offer) {
    ASSERT_TRUE(receiver_.wait_failures(1));
    EXPECT_EQ(receiver_.failures()[0].second.category(), ErrorCategory::failed);
    EXPECT_NE(std::string(receiver_.failures()[0].second.what()).find("broke the protocol"),
              std::string::npos);
  }
  expect_others_unaffected();
}

std::vector<std::byte> concat(std::vector<std::byte> a, const std::vector<std::byte>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

INSTANTIATE_TEST_SUITE_P(
    Hostile, DataViolationTest,
    ::testing::Values(
        Violation{"unknown_type", false,
                  [](std::uint64_t) {
                    auto h = header({.type = wire::MessageType::credit, .value = 1});
                    h[0] = std::byte{200};
                    return h;
                  }},
        Violation{"handshake_message_after_it", false,
                  [](std::uint64_t) { return wire::encode_refused("again"); }},
        Violation{"chunk_for_unknown_transfer", false,
                  [](std::uint64_t) { return chunk(9, 0, 100); }},
        Violation{"reused_transfer_id", true, [](std::uint64_t) { return offer(1, 100, true); }},
        Violation{"misaligned_chunk", true, [](std::uint64_t) { return chunk(1, 100, 64 * 1024); }},
        Violation{"short_chunk", true, [](std::uint64_t) { return chunk(1, 0, 1000); }},
        Violation{"chunk_beyond_the_object", true,
                  [](std::uint64_t) { return chunk(1, 1u << 20, 64 * 1024); }},
        Violation{"chunk_sent_twice", true,
                  [](std::uint64_t) { return concat(chunk(1, 0, 65536), chunk(1, 0, 65536)); }},
        Violation{
            "credit_never_owed", false,
            [](std::uint64_t) { return header({.type = wire::MessageType::credit, .value = 1}); }},
        Violation{
            "complete_for_nothing", false,
            [](std::uint64_t) { return header({.type = wire::MessageType::complete, .id = 4}); }},
        Violation{"oversized_chunk_header", false,
                  [](std::uint64_t) {
                    return header(
                        {.type = wire::MessageType::chunk, .body_length = 256u << 20, .id = 1});
                  }}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace atl::data_test
