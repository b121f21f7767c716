#include "transport/data_handshake.hpp"

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <memory>
#include <vector>

#include "transport/auth.hpp"
#include "transport/data_wire.hpp"

namespace atl::transport {

namespace {

namespace wire = data_wire;

class Handshake : public std::enable_shared_from_this<Handshake> {
 public:
  Handshake(asio::io_context& io, ByteStreamPtr stream, HandshakeParams params, HandshakeDone done)
      : timer_(io),
        stream_(std::move(stream)),
        params_(std::move(params)),
        done_(std::move(done)) {}

  void start_dialler(std::uint64_t channel_id, std::uint16_t index, std::uint16_t count) {
    arm_timer();
    hello_.channel_id = channel_id;
    hello_.window_bytes = params_.window_bytes;
    hello_.stream_index = index;
    hello_.stream_count = count;
    hello_.max_chunk_bytes = params_.max_chunk_bytes;
    hello_.nonce = make_nonce();
    hello_.name = params_.name;
    send(wire::encode(hello_),
         [this] { read_message([this](auto& h, auto body) { on_challenge(h, body); }); });
  }

  void start_listener() {
    arm_timer();
    read_message([this](auto& h, auto body) { on_hello(h, body); });
  }

 private:
  using OnMessage = std::function<void(const wire::Header&, std::span<const std::byte>)>;

  std::string peer() const { return "the data plane at " + stream_->remote(); }

  void arm_timer() {
    timer_.expires_after(params_.timeout);
    timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec) return;
      self->fail(Error(ErrorCategory::timed_out,
                       "the data-plane handshake with " + self->stream_->remote() +
                           " did not complete within " +
                           std::to_string(self->params_.timeout.count()) + " ms"));
    });
  }

  void send(std::vector<std::byte> message, std::function<void()> then) {
    out_ = std::move(message);
    stream_->write(out_, {}, [self = shared_from_this(), then = std::move(then)](IoError error) {
      if (self->finished_) return;
      if (error) return self->fail(std::move(*error));
      then();
    });
  }

  void read_message(OnMessage then) {
    stream_->read_exact(header_, [self = shared_from_this(), then = std::move(then)](
                                     IoError error, std::size_t) mutable {
      if (self->finished_) return;
      if (error) return self->fail(std::move(*error));
      std::string why;
      auto h = wire::decode_header(self->header_, wire::Phase::handshake, 0, why);
      if (!h) return self->fail(Error(ErrorCategory::failed, self->peer() + " sent " + why));
      self->body_.resize(h->body_length);
      if (h->body_length == 0) return then(*h, {});
      self->stream_->read_exact(self->body_,
                                [self, h = *h, then = std::move(then)](IoError e, std::size_t) {
                                  if (self->finished_) return;
                                  if (e) return self->fail(std::move(*e));
                                  then(h, self->body_);
                                });
    });
  }

  // Dialler side.
  void on_challenge(const wire::Header& h, std::span<const std::byte> body) {
    if (h.type == wire::MessageType::refused) return refused(body);
    std::string why;
    auto challenge = wire::decode_challenge(h, body, why);
    if (!challenge) return fail(Error(ErrorCategory::failed, peer() + " sent " + why));
    const Nonce client = wire::bind_client_nonce(hello_);
    const Nonce server = wire::bind_server_nonce(*challenge);
    if (!proofs_match(challenge->proof, server_proof(params_.token, client, server)))
      return fail(Error(ErrorCategory::failed,
                        peer() + " could not prove it holds the cluster token (a different "
                                 "cluster's token, or not an atoll data plane)"));
    agreement_.peer_window_bytes = challenge->window_bytes;
    agreement_.peer_max_chunk_bytes = challenge->max_chunk_bytes;
    agreement_.peer_name = challenge->name;
    agreement_.channel_id = hello_.channel_id;
    agreement_.stream_index = hello_.stream_index;
    agreement_.stream_count = hello_.stream_count;
    send(wire::encode_proof(client_proof(params_.token, client, server, wire::kProofRole)), [this] {
      read_message([this](const wire::Header& m, std::span<const std::byte> b) {
        if (m.type == wire::MessageType::refused) return refused(b);
        if (m.type != wire::MessageType::welcome)
          return fail(Error(ErrorCategory::failed, peer() + " broke the handshake"));
        succeed();
      });
    });
  }

  void refused(std::span<const std::byte> body) {
    fail(Error(ErrorCategory::failed,
               peer() + " refused the connection: " + wire::decode_refused(body)));
  }

  // Listener side.
  void on_hello(const wire::Header& h, std::span<const std::byte> body) {
    std::string why;
    auto hello =
        h.type == wire::MessageType::hello ? wire::decode_hello(h, body, why) : std::nullopt;
    if (!hello)
      return fail(Error(ErrorCategory::failed,
                        "a peer at " + stream_->remote() +
                            " sent a bad HELLO: " + (why.empty() ? "another message first" : why)));
    if (hello->version != wire::kProtocolVersion) {
      auto text = "data-plane protocol version " + std::to_string(hello->version) +
                  " is not supported; this node speaks version " +
                  std::to_string(wire::kProtocolVersion);
      return refuse(text, Error(ErrorCategory::failed,
                                "a peer at " + stream_->remote() + " offered " + text));
    }
    hello_ = *hello;
    challenge_.window_bytes = params_.window_bytes;
    challenge_.max_chunk_bytes = params_.max_chunk_bytes;
    challenge_.nonce = make_nonce();
    challenge_.name = params_.name;
    challenge_.proof = server_proof(params_.token, wire::bind_client_nonce(hello_),
                                    wire::bind_server_nonce(challenge_));
    send(wire::encode(challenge_), [this] {
      read_message([this](const wire::Header& m, std::span<const std::byte> b) { on_proof(m, b); });
    });
  }

  void on_proof(const wire::Header& h, std::span<const std::byte> body) {
    std::string why;
    auto proof = wire::decode_proof(h, body, why);
    const auto expected = client_proof(params_.token, wire::bind_client_nonce(hello_),
                                       wire::bind_server_nonce(challenge_), wire::kProofRole);
    if (!proof || !proofs_match(*proof, expected))
      return refuse("authentication failed",
                    Error(ErrorCategory::failed, "a peer at " + stream_->remote() +
                                                     " failed authentication (it does not hold "
                                                     "the cluster token)"));
    agreement_.peer_window_bytes = hello_.window_bytes;
    agreement_.peer_max_chunk_bytes = hello_.max_chunk_bytes;
    agreement_.peer_name = hello_.name;
    agreement_.channel_id = hello_.channel_id;
    agreement_.stream_index = hello_.stream_index;
    agreement_.stream_count = hello_.stream_count;
    send(wire::encode_welcome(), [this] { succeed(); });
  }

  // Tells the peer `text`, then closes and reports `error`.
  void refuse(const std::string& text, Error error) {
    send(wire::encode_refused(text), [this, error] { fail(error); });
  }

  void succeed() {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    agreement_.stream = stream_;
    auto done = std::move(done_);
    done(std::move(agreement_), std::nullopt);
  }

  void fail(Error error) {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    stream_->close();
    auto done = std::move(done_);
    done(std::nullopt, std::move(error));
  }

  asio::steady_timer timer_;
  ByteStreamPtr stream_;
  HandshakeParams params_;
  HandshakeDone done_;
  bool finished_ = false;
  wire::HeaderBytes header_{};
  std::vector<std::byte> body_;
  std::vector<std::byte> out_;
  wire::Hello hello_;
  wire::Challenge challenge_;
  StreamAgreement agreement_;
};

}  // namespace

void handshake_as_dialler(asio::io_context& io, ByteStreamPtr stream, const HandshakeParams& params,
                          std::uint64_t channel_id, std::uint16_t stream_index,
                          std::uint16_t stream_count, HandshakeDone done) {
  std::make_shared<Handshake>(io, std::move(stream), params, std::move(done))
      ->start_dialler(channel_id, stream_index, stream_count);
}

void handshake_as_listener(asio::io_context& io, ByteStreamPtr stream,
                           const HandshakeParams& params, HandshakeDone done) {
  std::make_shared<Handshake>(io, std::move(stream), params, std::move(done))->start_listener();
}

}  // namespace atl::transport
