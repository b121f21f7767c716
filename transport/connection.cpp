#include "transport/connection.hpp"

#include <capnp/message.h>

#include "atoll/errors.hpp"

namespace atl::transport {

namespace {

std::span<const std::byte> bytes_of(capnp::Data::Reader d) {
  return {reinterpret_cast<const std::byte*>(d.begin()), d.size()};
}

capnp::Data::Reader data_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const kj::byte*>(b.data()), b.size()};
}

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace

Connection::Connection(asio::ip::tcp::socket socket, Side side, std::string token,
                       std::uint32_t protocol_version, std::size_t max_frame_bytes,
                       Handlers handlers)
    : socket_(std::move(socket)),
      handshake_timer_(socket_.get_executor()),
      side_(side),
      token_(std::move(token)),
      protocol_version_(protocol_version),
      handlers_(std::move(handlers)),
      max_frame_bytes_(max_frame_bytes),
      decoder_(std::min(max_frame_bytes, kMaxHandshakeFrameBytes)),
      stage_(side == Side::server ? Stage::awaiting_hello : Stage::awaiting_challenge) {}

Connection::~Connection() = default;

void Connection::start_server(std::chrono::milliseconds timeout,
                              std::function<void(ConnectionPtr)> ready,
                              std::shared_ptr<std::atomic<std::size_t>> pending_handshakes) {
  on_ready_ = std::move(ready);
  pending_handshakes_ = std::move(pending_handshakes);
  arm_handshake_timer(timeout);
  read_more();
}

void Connection::start_client(wire::Role role, std::string name, std::chrono::milliseconds timeout,
                              std::function<void(ConnectionPtr, std::string)> done) {
  on_dialled_ = std::move(done);
  role_ = role;
  client_nonce_ = make_nonce();
  ControlMessage msg;
  auto hello = msg.initRoot<wire::Handshake>().initHello();
  hello.setProtocolVersion(protocol_version_);
  hello.setRole(role);
  hello.setName(name);
  hello.setClientNonce(data_of(client_nonce_));
  write(encode(msg));
  arm_handshake_timer(timeout);
  read_more();
}

void Connection::arm_handshake_timer(std::chrono::milliseconds timeout) {
  handshake_timer_.expires_after(timeout);
  handshake_timer_.async_wait([self = shared_from_this(), timeout](const asio::error_code& ec) {
    if (ec || self->stage_ == Stage::open || self->closed()) return;
    self->fail_handshake("the handshake did not complete within " +
                         std::to_string(timeout.count()) + " ms");
  });
}

void Connection::read_more() {
  socket_.async_read_some(asio::buffer(read_buffer_),
                          [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
                            if (self->closed()) return;
                            if (ec) {
                              std::string why = ec == asio::error::eof
                                                    ? "the peer closed the connection"
                                                    : "read failed: " + ec.message();
                              if (self->stage_ == Stage::open)
                                self->close_now(why);
                              else
                                self->fail_handshake(why);
                              return;
                            }
                            if (!self->decoder_.feed({self->read_buffer_.data(), n})) {
                              self->close_now("protocol error: " + self->decoder_.error());
                              return;
                            }
                            // After a refusal nothing more from this peer is processed.
                            while (!self->closed() && !self->close_after_flush_) {
                              std::optional<Frame> frame = self->decoder_.next();
                              if (!frame) break;
                              self->on_frame(std::move(*frame));
                            }
                            if (self->decoder_.failed())
                              self->close_now("protocol error: " + self->decoder_.error());
                            if (!self->closed() && !self->close_after_flush_) self->read_more();
                          });
}

void Connection::on_frame(Frame frame) {
  if (stage_ != Stage::open) {
    auto decoded = decode_handshake(std::move(frame));
    if (!decoded.message) {
      if (side_ == Side::server)
        // Unauthenticated: say only that it was refused, not what the decoder saw.
        refuse(wire::RefusalReason::MALFORMED, "malformed handshake");
      else
        fail_handshake("the head sent a malformed handshake: " + decoded.error);
      return;
    }
    on_handshake(decoded.message->root());
    return;
  }
  auto decoded = decode_envelope(std::move(frame));
  if (!decoded.message) {
    close_now("protocol error: " + decoded.error);
    return;
  }
  on_envelope(*decoded.message);
}

void Connection::on_handshake(wire::Handshake::Reader m) {
  using H = wire::Handshake;
  if (stage_ == Stage::awaiting_hello && m.which() == H::HELLO) {
    auto hello = m.getHello();
    if (hello.getProtocolVersion() != protocol_version_) {
      refuse(wire::RefusalReason::VERSION_MISMATCH,
             "protocol version mismatch: this head speaks atoll protocol " +
                 std::to_string(protocol_version_) + ", the peer speaks " +
                 std::to_string(hello.getProtocolVersion()));
      return;
    }
    std::memcpy(client_nonce_.data(), hello.getClientNonce().begin(), kNonceBytes);
    role_ = hello.getRole();
    peer_role_ = role_;
    peer_name_ = hello.getName();
    server_nonce_ = make_nonce();
    ControlMessage msg;
    auto challenge = msg.initRoot<H>().initChallenge();
    challenge.setProtocolVersion(protocol_version_);
    challenge.setServerNonce(data_of(server_nonce_));
    challenge.setServerProof(data_of(server_proof(token_, client_nonce_, server_nonce_)));
    write(encode(msg));
    stage_ = Stage::awaiting_proof;
  } else if (stage_ == Stage::awaiting_proof && m.which() == H::PROOF) {
    auto expected =
        client_proof(token_, client_nonce_, server_nonce_, static_cast<std::uint16_t>(role_));
    if (!proofs_match(bytes_of(m.getProof().getClientProof()), expected)) {
      refuse(wire::RefusalReason::AUTHENTICATION_FAILED,
             "authentication failed: the peer does not hold this cluster's token");
      return;
    }
    ControlMessage msg;
    auto welcome = msg.initRoot<H>().initWelcome();
    welcome.setSessionId(session_id_);
    welcome.setDataAddress(head_data_address_);
    write(encode(msg));
    become_open();
  } else if (stage_ == Stage::awaiting_challenge && m.which() == H::CHALLENGE) {
    auto challenge = m.getChallenge();
    if (challenge.getProtocolVersion() != protocol_version_) {
      fail_handshake("protocol version mismatch: the head speaks atoll protocol " +
                     std::to_string(challenge.getProtocolVersion()) + ", this build speaks " +
                     std::to_string(protocol_version_));
      return;
    }
    std::memcpy(server_nonce_.data(), challenge.getServerNonce().begin(), kNonceBytes);
    if (!proofs_match(bytes_of(challenge.getServerProof()),
                      server_proof(token_, client_nonce_, server_nonce_))) {
      fail_handshake(
          "authentication failed: the head does not hold this cluster token (wrong --token?)");
      return;
    }
    ControlMessage msg;
    msg.initRoot<H>().initProof().setClientProof(data_of(
        client_proof(token_, client_nonce_, server_nonce_, static_cast<std::uint16_t>(role_))));
    write(encode(msg));
    stage_ = Stage::awaiting_welcome;
  } else if (stage_ == Stage::awaiting_welcome && m.which() == H::WELCOME) {
    session_id_ = m.getWelcome().getSessionId();
    head_data_address_ = m.getWelcome().getDataAddress();
    become_open();
  } else if (side_ == Side::client && m.which() == H::REFUSAL) {
    fail_handshake("the head refused the connection: " + std::string(m.getRefusal().getMessage()));
  } else if (side_ == Side::server) {
    refuse(wire::RefusalReason::MALFORMED, "unexpected handshake message");
  } else {
    fail_handshake("unexpected handshake message from the head");
  }
}

void Connection::become_open() {
  if (auto pending = std::exchange(pending_handshakes_, nullptr)) pending->fetch_sub(1);
  stage_ = Stage::open;
  decoder_.set_max_frame_bytes(max_frame_bytes_);
  handshake_timer_.cancel();
  established_.store(true);
  if (side_ == Side::server) {
    if (auto ready = std::exchange(on_ready_, {})) ready(shared_from_this());
  } else if (auto done = std::exchange(on_dialled_, {})) {
    done(shared_from_this(), "");
  }
}

void Connection::on_envelope(const Decoded<wire::Envelope>& message) {
  auto e = message.root();
  auto body = e.getBody();
  if (body.which() == wire::Envelope::Body::PING) {
    ControlMessage reply;
    auto env = reply.initRoot<wire::Envelope>();
    env.setRequestId(e.getRequestId());
    env.getBody().initPong().setSentNs(body.getPing().getSentNs());
    write(encode(reply));
    return;
  }
  if (body.which() == wire::Envelope::Body::PONG) {
    auto sent = body.getPong().getSentNs();
    auto now = now_ns();
    if (sent <= now) {
      std::lock_guard lock(rtt_mu_);
      last_rtt_ = std::chrono::nanoseconds(now - sent);
    }
  }
  if (handlers_.on_message) handlers_.on_message(shared_from_this(), message);
}

void Connection::refuse(wire::RefusalReason reason, const std::string& message) {
  ControlMessage msg;
  auto refusal = msg.initRoot<wire::Handshake>().initRefusal();
  refusal.setReason(reason);
  refusal.setMessage(message);
  close_after_flush_ = true;
  close_reason_ = message;
  write(encode(msg));
}

void Connection::fail_handshake(const std::string& error) {
  if (auto done = std::exchange(on_dialled_, {})) done(nullptr, error);
  close_now(error);
}

void Connection::send(capnp::MessageBuilder& message) {
  if (closed()) return;
  asio::post(socket_.get_executor(),
             [self = shared_from_this(), frame = encode(message)]() mutable {
               if (!self->closed()) self->write(std::move(frame));
             });
}

void Connection::ping() {
  ControlMessage msg;
  msg.initRoot<wire::Envelope>().getBody().initPing().setSentNs(now_ns());
  send(msg);
}

void Connection::write(std::vector<std::byte> frame) {
  queued_bytes_ += frame.size();
  if (queued_bytes_ > kMaxQueuedWriteBytes) {
    close_now("the peer does not read: more than " + std::to_string(kMaxQueuedWriteBytes) +
              " bytes queued");
    return;
  }
  write_queue_.push_back(std::move(frame));
  if (!writing_) write_next();
}

void Connection::write_next() {
  if (write_queue_.empty()) {
    writing_ = false;
    if (close_after_flush_) close_now(close_reason_);
    return;
  }
  writing_ = true;
  // Everything queued so far leaves in one gather write: under load, one system call carries
  // many small messages instead of one each. (A deque's elements stay put while it grows.)
  gather_.clear();
  std::size_t bytes = 0;
  for (const auto& frame : write_queue_) {
    if (gather_.size() == kMaxGatherFrames || (bytes > 0 && bytes + frame.size() > kMaxGatherBytes))
      break;
    gather_.push_back(asio::buffer(frame));
    bytes += frame.size();
  }
  asio::async_write(socket_, gather_,
                    [self = shared_from_this(), frames = gather_.size(), bytes](
                        const asio::error_code& ec, std::size_t) {
                      if (self->closed()) return;
                      if (ec) {
                        self->close_now("write failed: " + ec.message());
                        return;
                      }
                      self->queued_bytes_ -= bytes;
                      self->write_queue_.erase(
                          self->write_queue_.begin(),
                          self->write_queue_.begin() + static_cast<std::ptrdiff_t>(frames));
                      self->write_next();
                    });
}

void Connection::close(const std::string& reason) {
  asio::post(socket_.get_executor(),
             [self = shared_from_this(), reason] { self->close_now(reason); });
}

void Connection::close_now(const std::string& reason) {
  if (closed_.exchange(true)) return;
  if (auto pending = std::exchange(pending_handshakes_, nullptr)) pending->fetch_sub(1);
  asio::error_code ignored;
  handshake_timer_.cancel();
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  write_queue_.clear();
  queued_bytes_ = 0;
  if (auto done = std::exchange(on_dialled_, {})) done(nullptr, reason);
  if (established_.load() && handlers_.on_closed) handlers_.on_closed(shared_from_this(), reason);
}

std::optional<std::chrono::nanoseconds> Connection::last_rtt() const {
  std::lock_guard lock(rtt_mu_);
  return last_rtt_;
}

std::string Connection::remote_endpoint() const {
  asio::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  return ec ? std::string("(disconnected)")
            : ep.address().to_string() + ":" + std::to_string(ep.port());
}

Listener::Listener(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint,
                   ListenerOptions options, Handlers handlers,
                   std::function<void(ConnectionPtr)> on_established)
    : io_(io),
      acceptor_(io),
      retry_timer_(io),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      on_established_(std::move(on_established)) {
  validate_token(options_.token);
  asio::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw Error(ErrorCategory::failed, "cannot listen on " + endpoint.address().to_string() + ":" +
                                           std::to_string(endpoint.port()) + ": " + ec.message());
  accept_next();
}

Listener::~Listener() {
  close();
}

std::uint16_t Listener::port() const {
  asio::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void Listener::close() {
  asio::error_code ignored;
  acceptor_.close(ignored);
  retry_timer_.cancel();
}

void Listener::accept_next() {
  acceptor_.async_accept(
      asio::make_strand(io_), [this](const asio::error_code& ec, asio::ip::tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
        if (ec) {
          // Out of descriptors or memory: retrying at once would spin. Try again shortly.
          retry_timer_.expires_after(std::chrono::milliseconds(100));
          retry_timer_.async_wait([this](const asio::error_code& e) {
            if (!e && acceptor_.is_open()) accept_next();
          });
          return;
        }
        {
          socket.set_option(asio::ip::tcp::no_delay(true));
          ConnectionPtr conn(new Connection(std::move(socket), Connection::Side::server,
                                            options_.token, options_.protocol_version,
                                            options_.max_frame_bytes, handlers_));
          conn->session_id_ = next_session_.fetch_add(1);
          conn->head_data_address_ = options_.data_address;
          if (pending_handshakes_->fetch_add(1) >= options_.max_pending_handshakes) {
            pending_handshakes_->fetch_sub(1);
            asio::error_code ignored;
            conn->socket_.close(ignored);  // too many peers mid-handshake: drop this one
          } else {
            asio::dispatch(conn->socket_.get_executor(), [conn, this] {
              conn->start_server(options_.handshake_timeout, on_established_, pending_handshakes_);
            });
          }
        }
        accept_next();
      });
}

void dial(asio::io_context& io, const std::string& host, std::uint16_t port, DialOptions options,
          Handlers handlers, std::function<void(ConnectionPtr, std::string)> done) {
  validate_token(options.token);
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(io);
  auto where = host + ":" + std::to_string(port);
  resolver->async_resolve(
      host, std::to_string(port),
      [&io, resolver, where, options = std::move(options), handlers = std::move(handlers),
       done = std::move(done)](const asio::error_code& ec,
                               asio::ip::tcp::resolver::results_type results) mutable {
        if (ec) {
          done(nullptr, "cannot resolve " + where + ": " + ec.message());
          return;
        }
        auto socket = std::make_shared<asio::ip::tcp::socket>(asio::make_strand(io));
        // A black-holed address would otherwise take the kernel's minutes to give up.
        auto deadline = std::make_shared<asio::steady_timer>(socket->get_executor());
        deadline->expires_after(options.handshake_timeout);
        deadline->async_wait([socket](const asio::error_code& ec) {
          if (!ec) socket->close();
        });
        asio::async_connect(
            *socket, results,
            [socket, deadline, where, options = std::move(options), handlers = std::move(handlers),
             done = std::move(done)](const asio::error_code& ec, const auto&) mutable {
              deadline->cancel();
              if (ec == asio::error::operation_aborted || (!ec && !socket->is_open())) {
                done(nullptr, "cannot connect to " + where + ": timed out after " +
                                  std::to_string(options.handshake_timeout.count()) + " ms");
                return;
              }
              if (ec) {
                done(nullptr, "cannot connect to " + where + ": " + ec.message());
                return;
              }
              socket->set_option(asio::ip::tcp::no_delay(true));
              ConnectionPtr conn(new Connection(std::move(*socket), Connection::Side::client,
                                                options.token, options.protocol_version,
                                                options.max_frame_bytes, std::move(handlers)));
              conn->start_client(options.role, options.name, options.handshake_timeout,
                                 std::move(done));
            });
      });
}

}  // namespace atl::transport
