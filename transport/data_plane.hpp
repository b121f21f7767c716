// The data plane: bulk bytes between processes (node agents' object stores now, collectives
// later), over UCX or plain TCP behind one interface.
//
// A `DataPlane` is one per process, owned by whoever owns the node (no singletons). It listens on
// a TCP port always and, with the UCX backend, on a UCX port too; `address()` is what the node
// advertises. `connect()` opens a `DataChannel` to a peer's address: one or more streams
// (parallel connections: one TCP flow rarely fills a long fat link), each authenticated with the
// cluster token (HMAC challenge-response, the token never crosses the wire) before any other
// message is decoded. A channel is symmetric: whichever side dialled, both may send on it, so a
// node behind NAT can dial out and still receive.
//
// `send()` moves one whole object (an ObjectId and an immutable Buffer, any size up to
// `max_object_bytes`) to the peer. The sender never copies it: chunks are written straight from
// the Buffer, striped over the channel's streams. The receiver's `allocate` handler chooses the
// memory (the object store hands out its own block: bytes land in it with no extra copy) or
// refuses (store full); every byte of every chunk is then written straight into that block.
// Objects up to one chunk travel eagerly with their offer; larger ones wait for the receiver's
// acceptance. Flow control is credit-based per stream: a sender never has more than the
// receiver's window (`window_bytes`, per stream) written and not yet acknowledged, so a slow
// receiver makes the sender wait, not queue memory. A sender keeps at most a few large objects
// offered at once, so a receiver is never asked to allocate for the whole queue.
//
// Errors (atl::Error categories, in the send callback or `on_failed`):
//   disconnected     the peer went away (closed, died, the data plane shut down)
//   timed_out        a handshake did not finish, or transfers stalled for `stall_timeout`
//   overloaded       the receiver refused: its store is full (its allocate said so)
//   invalid_argument the object exceeds the receiver's `max_object_bytes`; a bad address
//   failed           authentication failed; the peer broke the protocol (its channel is closed,
//                    nothing else is); the receiver's allocate failed otherwise
//   cancelled        the channel was closed locally
// Every length, count and id from the wire is validated; an offer above `max_object_bytes` is
// refused before anything is allocated, and a malformed message closes that channel only.
//
// Threads: the data plane runs one thread of its own (Asio; with UCX it also drives the UCX
// worker: it spins briefly while transfers progress and sleeps on the worker's event fd when
// idle). Every handler and callback runs on that thread: keep them short, never block in them.
// `send`, `close`, `connect` and the accessors may be called from any thread. Destroying the
// DataPlane closes every channel (transfers fail with disconnected, callbacks run) and joins the
// thread; it must not be destroyed from one of its own callbacks.
//
// Example:
//   DataPlane plane({.token = token, .name = "node-1"},
//                   {.allocate = [&](const IncomingObject& o) {
//                      return Allocation::accept(pool->allocate(o.size)); },
//                    .on_received = [&](const IncomingObject& o, MutableBuffer b) {
//                      store.seal(o.id, std::move(b).freeze()); }});
//   advertise(plane.address().to_string());            // e.g. "tcp://10.0.0.5:7301"
//   auto channel = plane.connect(DataAddress::parse(peer), {.streams = 4}, 10s);
//   channel->send(id, buffer, [](IoError error) { if (error) retry_later(*error); });
//   channel->send_and_wait(id, buffer, 60s);              // or block (never on the data thread)
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "atoll/buffer.hpp"
#include "atoll/errors.hpp"
#include "atoll/ids.hpp"
#include "transport/byte_stream.hpp"

namespace atl::transport {

// Where a data plane listens: a host and its TCP port, plus a UCX port when UCX is on.
// Text form: "tcp://HOST:PORT" or "tcp://HOST:PORT,ucx://HOST:PORT" (IPv6 hosts in brackets).
struct DataAddress {
  std::string host;
  std::uint16_t tcp_port = 0;
  std::uint16_t ucx_port = 0;  // 0: the peer has no UCX listener

  std::string to_string() const;
  // Raises Error(invalid_argument) naming what is wrong.
  static DataAddress parse(std::string_view text);
  friend bool operator==(const DataAddress&, const DataAddress&) = default;
};

// An object a peer offers: what `allocate` decides on.
struct IncomingObject {
  ObjectId id;
  std::uint64_t size = 0;
  std::string peer;  // the peer's name from its handshake
};

// `allocate`'s answer: memory of exactly the object's size, or a refusal the sender receives
// with its category and message.
struct Allocation {
  MutableBuffer buffer;
  std::optional<Error> refusal;

  static Allocation accept(MutableBuffer buffer) { return {std::move(buffer), std::nullopt}; }
  static Allocation refuse(Error error) { return {{}, std::move(error)}; }
};

struct ReceiveHandlers {
  // Called when an object is offered. Without it every object is refused.
  std::function<Allocation(const IncomingObject&)> allocate;
  // Called after each chunk lands, with the bytes received so far (progress bars; optional).
  std::function<void(const IncomingObject&, std::uint64_t received)> on_progress;
  // Called once every byte has landed in the allocated buffer.
  std::function<void(const IncomingObject&, MutableBuffer)> on_received;
  // Called when an accepted object will not complete (its channel closed).
  std::function<void(const IncomingObject&, const Error&)> on_failed;
  // Called when a peer opens a channel to this data plane (so it can send back on it).
  std::function<void(std::shared_ptr<class DataChannel>)> on_channel;
};

struct ChannelStats {
  std::uint64_t bytes_sent = 0;  // chunk payload bytes handed to the streams
  std::uint64_t bytes_received = 0;
  std::uint64_t objects_sent = 0;  // completed (acknowledged) sends
  std::uint64_t objects_received = 0;
  std::uint64_t window_bytes = 0;     // the peer's receive window, per stream
  std::uint64_t in_flight_bytes = 0;  // written to a stream and not yet acknowledged, all streams
  // The most any one stream ever had written and unacknowledged: never above window_bytes.
  std::uint64_t peak_stream_in_flight_bytes = 0;
  std::uint32_t chunk_bytes = 0;  // what this side sends in
  std::size_t streams = 0;
};

using SendCallback = std::function<void(IoError error)>;

// A link to one peer: one or more authenticated streams of one backend.
class DataChannel {
 public:
  virtual ~DataChannel() = default;

  // Queues object `id` for the peer. `done` runs once, on the data plane's thread: with no error
  // once the peer holds every byte (its on_received has run), or with the error. The Buffer is
  // held, never copied, until then. Objects may complete out of order.
  virtual void send(ObjectId id, Buffer bytes, SendCallback done) = 0;
  // Sends and blocks until the peer holds the object, for at most `timeout`; raises the error, or
  // Error(timed_out) (the transfer then goes on; its outcome is dropped). The exception is built
  // on the calling thread. Never call it on the data plane's thread.
  void send_and_wait(ObjectId id, Buffer bytes, std::chrono::milliseconds timeout);
  // Closes the channel: pending sends fail with cancelled, the peer sees disconnected.
  virtual void close() = 0;

  virtual bool closed() const noexcept = 0;
  virtual const std::string& peer_name() const noexcept = 0;
  virtual DataBackend backend() const noexcept = 0;
  virtual ChannelStats stats() const = 0;
};

using DataChannelPtr = std::shared_ptr<DataChannel>;

struct DataPlaneOptions {
  std::string token;  // the cluster token (at least kMinTokenChars)
  std::string name;   // this node's name, told to peers (at most 64 printable ASCII characters)
  // The backend this plane prefers. ucx falls back to tcp (see fallback_reason()) when UCX is
  // not built in or fails to initialise. A TCP listener runs in either case, so peers without
  // UCX can still connect.
  DataBackend backend = DataBackend::ucx;
  std::string listen_host = "127.0.0.1";
  std::uint16_t tcp_port = 0;  // 0: any free port
  std::uint16_t ucx_port = 0;
  std::string advertise_host;  // the host put into address(); empty: listen_host
  // UCX transports (UCX_TLS) for this plane, e.g. "tcp"; empty: UCX's own choice (and UCX_TLS).
  std::string ucx_transports;
  std::uint32_t chunk_bytes = 1u << 20;      // what this side sends in, and the largest it accepts
  std::uint64_t window_bytes = 16ull << 20;  // receive window per stream (credit given to peers)
  std::uint64_t max_object_bytes = 64ull << 30;
  std::chrono::milliseconds handshake_timeout{10'000};
  // A channel with transfers pending and nothing read or written for this long is closed with
  // timed_out (a peer that stopped without closing its sockets).
  std::chrono::milliseconds stall_timeout{30'000};
  // Where the plane reports what it decided (the UCX fallback). Default: standard error.
  std::function<void(std::string_view)> log;
};

struct ConnectOptions {
  std::size_t streams = 1;  // parallel streams, 1 to 16
  // Use TCP even when both sides have UCX.
  bool force_tcp = false;
};

struct DataPlaneStats {
  std::uint64_t channels_opened = 0;     // dialled or accepted, fully authenticated
  std::uint64_t handshakes_refused = 0;  // accepted streams that failed their handshake
  std::uint64_t channels_open = 0;
};

class DataPlane {
 public:
  // Raises Error(invalid_argument) for a short token, a bad name or out-of-range sizes, and
  // Error(failed) when the TCP port cannot be bound (the message names the address and reason).
  DataPlane(DataPlaneOptions options, ReceiveHandlers handlers);
  ~DataPlane();
  DataPlane(const DataPlane&) = delete;
  DataPlane& operator=(const DataPlane&) = delete;

  // What peers connect to.
  DataAddress address() const;
  // The backend connections prefer (ucx only when it initialised).
  DataBackend backend() const noexcept;
  // Why the UCX backend is not in use, when it was asked for; empty otherwise.
  const std::string& fallback_reason() const noexcept;

  // Opens a channel to `peer`: UCX when both sides have it (and not force_tcp), else TCP.
  // `done` runs once on the data thread, with the channel or the error.
  void connect(const DataAddress& peer, ConnectOptions options,
               std::function<void(DataChannelPtr, IoError)> done);
  // The same, blocking for at most `timeout`; raises the error. Never call it on the data thread.
  DataChannelPtr connect(const DataAddress& peer, ConnectOptions options,
                         std::chrono::milliseconds timeout);

  DataPlaneStats stats() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace atl::transport
