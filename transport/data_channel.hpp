// One data channel: the transfer protocol over a channel's authenticated streams (any backend).
//
// Sending: send() queues an object. Small objects (at most one chunk) are offered eagerly: OFFER
// and the single CHUNK go out together on the stream with the most credit. Larger ones are
// offered (at most kMaxLargeOffered at once, so the receiver allocates for few objects at a
// time), and once ACCEPTed their chunks are striped over every stream that has credit, straight
// from the sender's Buffer. COMPLETE from the receiver completes the send; REJECT fails it.
//
// Receiving: an OFFER is checked (size limit, chunk size, a fresh transfer id, at most
// kMaxIncoming at once) and then goes to `allocate`; the answer is ACCEPT or REJECT (an eager
// transfer completes without ACCEPT). Every CHUNK is checked against the transfer (known id,
// aligned offset, exact length, never twice) and against the stream's credit, then read straight
// into the allocated buffer; its bytes are credited back with CREDIT once they have landed. Any
// violation closes the channel with `failed`; nothing else is affected.
//
// Thread-safety: send(), close() and the accessors may be called from any thread (they post to
// the data plane's thread through the PlaneGate); everything else runs on that thread.
#pragma once

#include <asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "transport/data_plane.hpp"
#include "transport/data_wire.hpp"

namespace atl::transport {

// Lets threads other than the data thread post work to it while the plane runs, and tells them
// (so they can fail the operation themselves) once it has stopped.
class PlaneGate {
 public:
  explicit PlaneGate(asio::io_context& io) : io_(io) {}
  // False once the plane has stopped: `fn` was not queued.
  bool post(std::function<void()> fn);
  void shut();

 private:
  asio::io_context& io_;
  std::mutex mu_;
  bool open_ = true;
};

struct ChannelConfig {
  std::string peer_name;
  std::string remote;                   // the first stream's peer address, for messages
  std::uint32_t send_chunk_bytes = 0;   // min(ours, the peer's chunk limit, the peer's window)
  std::uint64_t send_window_bytes = 0;  // the peer's window per stream: our initial credit
  std::uint64_t recv_window_bytes = 0;  // ours
  std::uint32_t recv_max_chunk_bytes = 0;
  std::uint64_t max_object_bytes = 0;
};

class ChannelImpl final : public DataChannel, public std::enable_shared_from_this<ChannelImpl> {
 public:
  // A conforming sender never has more than this many transfers offered and unfinished...
  static constexpr std::size_t kMaxOffered = 64;
  // ...of which at most this many larger than a chunk.
  static constexpr std::size_t kMaxLargeOffered = 2;
  // A receiver closes a channel whose peer exceeds this.
  static constexpr std::size_t kMaxIncoming = 1024;

  ChannelImpl(std::shared_ptr<PlaneGate> gate, std::vector<ByteStreamPtr> streams,
              ChannelConfig config, std::shared_ptr<const ReceiveHandlers> handlers,
              std::function<void(ChannelImpl*)> on_closed);
  ~ChannelImpl() override;

  // Starts reading every stream (data thread).
  void start();
  // Closes the channel, failing what is pending with `error` (data thread; idempotent).
  void fail(const Error& error);
  // True when transfers are pending and nothing was read or written since `since`.
  bool stalled_since(std::chrono::steady_clock::time_point since) const;

  void send(ObjectId id, Buffer bytes, SendCallback done) override;
  using DataChannel::send;
  void close() override;
  bool closed() const noexcept override { return closed_.load(std::memory_order_acquire); }
  const std::string& peer_name() const noexcept override { return config_.peer_name; }
  DataBackend backend() const noexcept override { return backend_; }
  ChannelStats stats() const override;

 private:
  struct Outgoing;
  struct Incoming;
  struct Stream;
  using OutgoingPtr = std::shared_ptr<Outgoing>;
  using IncomingPtr = std::shared_ptr<Incoming>;

  // Sending.
  void enqueue(ObjectId id, Buffer bytes, SendCallback done);
  void offer_queued();
  void pump(Stream& s);
  void pump_all();
  void finish(const OutgoingPtr& t, IoError error);
  OutgoingPtr take_offered(std::uint64_t id);

  // Receiving.
  void read_more(Stream& s);
  void parse(Stream& s);
  bool on_message(Stream& s, const data_wire::Header& h, std::span<const std::byte> body);
  bool on_offer(Stream& s, const data_wire::Header& h, std::span<const std::byte> body);
  bool on_chunk(Stream& s, const data_wire::Header& h);
  void payload_done(Stream& s, const IncomingPtr& t, std::uint32_t length);
  void discard(Stream& s, IncomingPtr t, std::uint64_t remaining, std::uint32_t length);
  void deliver(Stream& s, const IncomingPtr& t);
  bool violation(const std::string& what);
  void touch() noexcept { last_activity_ = std::chrono::steady_clock::now(); }

  std::string describe() const;

  std::shared_ptr<PlaneGate> gate_;
  const ChannelConfig config_;
  const DataBackend backend_;
  std::shared_ptr<const ReceiveHandlers> handlers_;
  std::function<void(ChannelImpl*)> on_closed_;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::atomic<bool> closed_{false};
  std::chrono::steady_clock::time_point last_activity_;

  // Data thread only.
  std::uint64_t next_transfer_id_ = 1;
  std::deque<OutgoingPtr> small_queue_, large_queue_;  // not yet offered
  std::unordered_map<std::uint64_t, OutgoingPtr> offered_;
  std::deque<OutgoingPtr> sending_;  // accepted, with chunks not yet written
  std::size_t large_offered_ = 0;
  std::unordered_map<std::uint64_t, IncomingPtr> incoming_;

  std::atomic<std::uint64_t> bytes_sent_{0}, bytes_received_{0}, objects_sent_{0},
      objects_received_{0}, in_flight_{0}, peak_in_flight_{0};
};

}  // namespace atl::transport
