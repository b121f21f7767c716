// Authenticated control connections over TCP (Asio).
//
// A `Listener` accepts connections and runs the server side of the handshake; `dial` runs the
// client side. The handshake checks the protocol version (a mismatch is refused with a message
// naming both versions) and proves both sides hold the cluster token (HMAC challenge-response; the
// token never crosses the wire). Until it completes no Envelope is decoded, and it must complete
// within the handshake timeout.
//
// An established `Connection` delivers each Envelope to its message handler and sends messages
// from any thread. Pings are answered automatically; `ping()` measures the round-trip time. A
// malformed or oversized frame, or an invalid message, closes that connection only.
//
// Thread-safety: `send`, `ping`, `close` and the accessors may be called from any thread; handlers
// run on the io_context's threads, one at a time per connection.
//
// Example:
//   asio::io_context io;
//   Listener head(io, {asio::ip::make_address("127.0.0.1"), 0}, {.token = token}, handlers);
//   dial(io, "127.0.0.1", head.port(), {.token = token, .role = wire::Role::NODE, .name = "n1"},
//        handlers, [](std::shared_ptr<Connection> c, std::string error) { ... });
//   io.run();
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "transport/auth.hpp"
#include "transport/codec.hpp"
#include "transport/frame.hpp"

namespace atl::transport {

class Connection;
using ConnectionPtr = std::shared_ptr<Connection>;

// Handshake messages are small: an unauthenticated peer gets no large buffers.
inline constexpr std::size_t kMaxHandshakeFrameBytes = 8 * 1024;
// A peer that lets this much pile up unread is closed rather than allowed to exhaust memory.
inline constexpr std::size_t kMaxQueuedWriteBytes = 64u << 20;

struct Handlers {
  std::function<void(const ConnectionPtr&, const Decoded<wire::Envelope>&)> on_message;
  // Once per established connection, with the reason it closed.
  std::function<void(const ConnectionPtr&, const std::string& reason)> on_closed;
};

struct ListenerOptions {
  std::string token;
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;
  std::chrono::milliseconds handshake_timeout{10'000};
  // Connections still in their handshake beyond this are closed at once, so silent or slow peers
  // cannot hold the head's descriptors and memory.
  std::size_t max_pending_handshakes = 256;
  std::uint32_t protocol_version = wire::PROTOCOL_VERSION;
  // Told to every peer in its Welcome: where the head's data plane listens ("" for none).
  std::string data_address;
};

struct DialOptions {
  std::string token;
  wire::Role role = wire::Role::DRIVER;
  std::string name;
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;
  std::chrono::milliseconds handshake_timeout{10'000};
  std::uint32_t protocol_version = wire::PROTOCOL_VERSION;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class Side { server, client };

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Queues the message; dropped silently once the connection is closed.
  void send(capnp::MessageBuilder& message);
  // Sends a Ping; the matching Pong updates last_rtt().
  void ping();
  void close(const std::string& reason);

  bool established() const noexcept { return established_.load(); }
  bool closed() const noexcept { return closed_.load(); }
  wire::Role peer_role() const noexcept { return peer_role_; }
  const std::string& peer_name() const noexcept { return peer_name_; }
  std::uint64_t session_id() const noexcept { return session_id_; }
  // Client side: the head's data plane address from its Welcome ("" when it has none).
  const std::string& head_data_address() const noexcept { return head_data_address_; }
  std::optional<std::chrono::nanoseconds> last_rtt() const;
  std::string remote_endpoint() const;

 private:
  friend class Listener;
  friend void dial(asio::io_context&, const std::string&, std::uint16_t, DialOptions, Handlers,
                   std::function<void(ConnectionPtr, std::string)>);
  enum class Stage { awaiting_hello, awaiting_challenge, awaiting_proof, awaiting_welcome, open };

  Connection(asio::ip::tcp::socket socket, Side side, std::string token,
             std::uint32_t protocol_version, std::size_t max_frame_bytes, Handlers handlers);

  void start_server(std::chrono::milliseconds timeout, std::function<void(ConnectionPtr)> ready,
                    std::shared_ptr<std::atomic<std::size_t>> pending_handshakes);
  void start_client(wire::Role role, std::string name, std::chrono::milliseconds timeout,
                    std::function<void(ConnectionPtr, std::string)> done);
  void arm_handshake_timer(std::chrono::milliseconds timeout);
  void read_more();
  void on_frame(Frame frame);
  void on_handshake(wire::Handshake::Reader message);
  void on_envelope(const Decoded<wire::Envelope>& message);
  void refuse(wire::RefusalReason reason, const std::string& message);
  void fail_handshake(const std::string& error);
  void become_open();
  void write(std::vector<std::byte> frame);
  void write_next();
  void close_now(const std::string& reason);

  asio::ip::tcp::socket socket_;
  asio::steady_timer handshake_timer_;
  const Side side_;
  const std::string token_;
  const std::uint32_t protocol_version_;
  Handlers handlers_;
  const std::size_t max_frame_bytes_;
  FrameDecoder decoder_;
  std::array<std::byte, 64 * 1024> read_buffer_;

  // Handshake state (io thread only).
  Stage stage_;
  Nonce client_nonce_{};
  Nonce server_nonce_{};
  wire::Role role_ = wire::Role::DRIVER;                          // the client's role
  std::function<void(ConnectionPtr)> on_ready_;                   // server
  std::shared_ptr<std::atomic<std::size_t>> pending_handshakes_;  // server: released once
  std::function<void(ConnectionPtr, std::string)> on_dialled_;    // client

  wire::Role peer_role_ = wire::Role::DRIVER;
  std::string peer_name_;
  std::uint64_t session_id_ = 0;
  std::string head_data_address_;  // server side: what the Welcome says; client side: what it said
  std::atomic<bool> established_{false};
  std::atomic<bool> closed_{false};
  bool close_after_flush_ = false;
  std::string close_reason_;

  std::deque<std::vector<std::byte>> write_queue_;  // io thread only
  std::vector<asio::const_buffer> gather_;          // the frames being written now
  static constexpr std::size_t kMaxGatherFrames = 64;
  static constexpr std::size_t kMaxGatherBytes = 1u << 20;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;

  mutable std::mutex rtt_mu_;
  std::optional<std::chrono::nanoseconds> last_rtt_;
};

class Listener {
 public:
  // Raises Error(invalid_argument) for a short token and Error(failed) when the address cannot be
  // bound (the message names the address and the system's reason, e.g. "Address already in use").
  Listener(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint, ListenerOptions options,
           Handlers handlers, std::function<void(ConnectionPtr)> on_established = {});
  ~Listener();

  std::uint16_t port() const;
  void close();

 private:
  void accept_next();

  asio::io_context& io_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;  // backs off after accept errors (e.g. out of descriptors)
  ListenerOptions options_;
  Handlers handlers_;
  std::function<void(ConnectionPtr)> on_established_;
  std::atomic<std::uint64_t> next_session_{1};
  std::shared_ptr<std::atomic<std::size_t>> pending_handshakes_ =
      std::make_shared<std::atomic<std::size_t>>(0);
};

// Connects and authenticates; calls `done` exactly once, with the connection or an error message
// that says what went wrong (refused connection, wrong token, version mismatch, timeout).
void dial(asio::io_context& io, const std::string& host, std::uint16_t port, DialOptions options,
          Handlers handlers, std::function<void(ConnectionPtr, std::string)> done);

}  // namespace atl::transport
