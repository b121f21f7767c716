// libFuzzer target for every decoder of data-plane input. The first byte picks the path, the rest
// is what a peer sent:
//   0  the stateless decoders: headers (both phases) and every body decoder, message by message
//   1  the listener's handshake (HELLO, then PROOF) over an in-memory stream
//   2  the dialler's handshake (CHALLENGE, then WELCOME or REFUSED)
//   3  an open channel's receive path (offers, chunks into allocated buffers, credits, accepts,
//      rejects, completes for two objects this side is sending) with every stateful check
// Paths 1-3 run the real code on an io_context with the bytes arriving in pieces whose sizes the
// input also chooses. Nothing here catches exceptions: decoders report errors, never throw.
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <cstddef>
#include <cstdint>
#include <span>

#include "transport/data_channel.hpp"
#include "transport/data_handshake.hpp"
#include "transport/data_wire.hpp"

namespace {

using namespace atl;
using namespace atl::transport;
namespace wire = atl::transport::data_wire;

const std::string kToken(64, 'k');

// Replays the input as a peer: reads take what is left, in pieces; writes vanish.
class MemoryStream final : public ByteStream, public std::enable_shared_from_this<MemoryStream> {
 public:
  MemoryStream(asio::io_context& io, std::span<const std::uint8_t> input) : io_(io), in_(input) {}

  void read_some(std::span<std::byte> into, ReadHandler done) override {
    std::size_t n = std::min({into.size(), in_.size(), piece()});
    deliver(into.first(n), std::move(done));
  }
  void read_exact(std::span<std::byte> into, ReadHandler done) override {
    if (in_.size() < into.size()) return deliver({}, std::move(done));
    deliver(into, std::move(done));
  }
  void write(std::span<const std::byte>, std::span<const std::byte>, WriteHandler done) override {
    asio::post(io_, [done = std::move(done), closed = closed_] {
      if (closed) return done(Error(ErrorCategory::disconnected, "closed"));
      done(std::nullopt);
    });
  }
  void close() override { closed_ = true; }
  DataBackend backend() const noexcept override { return DataBackend::tcp; }
  std::string remote() const override { return "fuzz"; }

 private:
  std::size_t piece() {
    // The next byte of input sizes this piece (1 to 4096); it is still delivered as data.
    return in_.empty() ? 0 : 1 + (std::size_t{in_[0]} * 16);
  }
  void deliver(std::span<std::byte> into, ReadHandler done) {
    if (closed_ || into.empty()) {
      asio::post(io_, [done = std::move(done)] {
        done(Error(ErrorCategory::disconnected, "the peer closed the connection"), 0);
      });
      return;
    }
    std::memcpy(into.data(), in_.data(), into.size());
    in_ = in_.subspan(into.size());
    asio::post(io_, [done = std::move(done), n = into.size()] { done(std::nullopt, n); });
  }

  asio::io_context& io_;
  std::span<const std::uint8_t> in_;
  bool closed_ = false;
};

volatile std::uint64_t g_sink;

void decode_messages(std::span<const std::uint8_t> data) {
  auto bytes = std::as_bytes(data);
  while (bytes.size() >= wire::kHeaderBytes) {
    auto head = bytes.first<wire::kHeaderBytes>();
    bytes = bytes.subspan(wire::kHeaderBytes);
    for (auto phase : {wire::Phase::handshake, wire::Phase::open}) {
      std::string why;
      auto h = wire::decode_header(head, phase, 1u << 20, why);
      if (!h) continue;
      auto body = bytes.first(std::min<std::size_t>(bytes.size(), h->body_length));
      if (auto m = wire::decode_hello(*h, body, why)) g_sink = g_sink + m->name.size();
      if (auto m = wire::decode_challenge(*h, body, why)) g_sink = g_sink + m->name.size();
      if (auto m = wire::decode_proof(*h, body, why)) g_sink = g_sink + ((*m)[0] != std::byte{0});
      if (auto m = wire::decode_offer(*h, body, why)) g_sink = g_sink + m->size;
      if (auto c = wire::decode_reject_category(*h, why)) g_sink = g_sink + int(*c);
      g_sink =
          g_sink + wire::decode_reject_message(body).size() + wire::decode_refused(body).size();
    }
    std::size_t skip = std::to_integer<std::size_t>(head[4]) % 64;
    bytes = bytes.subspan(std::min(skip, bytes.size()));
  }
}

void handshake(std::span<const std::uint8_t> data, bool as_listener) {
  asio::io_context io;
  auto stream = std::make_shared<MemoryStream>(io, data);
  HandshakeParams params{.token = kToken,
                         .name = "fuzz",
                         .window_bytes = 1u << 20,
                         .max_chunk_bytes = 64 * 1024,
                         .timeout = std::chrono::milliseconds(600'000)};
  bool done = false;
  auto finish = [&](std::optional<StreamAgreement> a, IoError) {
    done = true;
    if (a) g_sink = g_sink + a->peer_window_bytes;
  };
  if (as_listener)
    handshake_as_listener(io, stream, params, finish);
  else
    handshake_as_dialler(io, stream, params, 7, 0, 1, finish);
  // Completions are posted at once, so a handshake that neither finishes nor has work queued is
  // stuck: a liveness bug, reported as a crash.
  while (!done && io.poll_one() > 0) {
  }
  if (!done) __builtin_trap();
}

void channel(std::span<const std::uint8_t> data) {
  asio::io_context io;
  auto gate = std::make_shared<PlaneGate>(io);
  auto handlers = std::make_shared<ReceiveHandlers>();
  handlers->allocate = [](const IncomingObject& o) {
    if (o.size > (1u << 20)) return Allocation::refuse(Error(ErrorCategory::overloaded, "full"));
    return Allocation::accept(MutableBuffer::allocate(o.size));
  };
  handlers->on_received = [](const IncomingObject& o, MutableBuffer b) {
    g_sink = g_sink + o.size + (b.size() ? std::to_integer<unsigned>(b.data()[0]) : 0);
  };
  ChannelConfig config{.peer_name = "fuzz",
                       .remote = "fuzz",
                       .send_chunk_bytes = 64 * 1024,
                       .send_window_bytes = 1u << 20,
                       .recv_window_bytes = 1u << 20,
                       .recv_max_chunk_bytes = 64 * 1024,
                       .max_object_bytes = 1u << 20};
  std::vector<ByteStreamPtr> streams{std::make_shared<MemoryStream>(io, data)};
  auto c = std::make_shared<ChannelImpl>(gate, std::move(streams), config, handlers,
                                         [](ChannelImpl*) {});
  static const Buffer small = Buffer::copy_of(std::string(100, 's').data(), 100);
  static const Buffer large =
      Buffer::copy_of(std::vector<char>(200 * 1024, 'l').data(), 200 * 1024);
  asio::post(io, [c] {
    c->start();
    c->send({1, 1}, small, [](IoError) {});  // transfer 1: eager
    c->send({1, 2}, large, [](IoError) {});  // transfer 2: waits for ACCEPT
  });
  // The stream ends in an error once the input is used up, which closes the channel; a channel
  // with nothing queued before that is stuck (a liveness bug, reported as a crash).
  while (!c->closed() && io.poll_one() > 0) {
  }
  if (!c->closed()) __builtin_trap();
  gate->shut();
  io.poll();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  auto input = std::span(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      decode_messages(input);
      break;
    case 1:
      handshake(input, true);
      break;
    case 2:
      handshake(input, false);
      break;
    case 3:
      channel(input);
      break;
  }
  return 0;
}
