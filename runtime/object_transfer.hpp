// A cluster process's end of moving objects: its data plane, the objects it holds for others (a
// node's large task results), and the fetches it has under way. Node agents and drivers each own
// one.
//
// Objects move receiver-driven, so a holder never needs an inbound path to the receiver: the
// receiver dials the holder's data plane (one cached channel per holder), then asks the head
// (FetchObject, sent through `SendRequest`) to have the object pushed to it by name; the head asks
// the holder (PushObject), which `push`es it on the channel the receiver opened. The bytes never
// pass through the head. The holder tells the head how the push ended (ObjectPushed); on an error
// the head tells the receiver, which calls `fetch_failed`.
//
// Each fetch is one attempt, numbered by the receiver (unique in this process) and carried by
// FetchObject, PushObject and ObjectPushed: a fetch that failed may be tried again while the
// holder still works on the earlier push, and that push's late error must not fail the new one.
//
// Errors a fetch ends with (as ErrorKind, for the object's reader):
//   object_lost  the holder does not have it (freed, or its node died), or cannot be reached
//   store_full   this process's capacity for objects cannot take it now
// `hold` raises Error(overloaded) when the object does not fit in the capacity.
//
// Thread-safety: every method may be called from any thread. `Fetched` callbacks run without
// locks held, on the data plane's thread or the caller's; they must not block.
//
// Example (a node agent):
//   ObjectTransfer objects({.token = token, .name = "node-a-1f2e", .capacity_bytes = 8 << 30});
//   objects.hold(result_id, Buffer::copy_of(value));          // a large result stays here
//   objects.push(id, "driver-9a41", [&](std::string error) { tell_head(id, error); });
//   objects.fetch(arg_id, holder_address, send_to_head, [&](Buffer b, ErrorPtr e) { ... });
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <capnp/message.h>

#include "atoll/buffer.hpp"
#include "atoll/ids.hpp"
#include "runtime/error_info.hpp"
#include "runtime/wire_values.hpp"
#include "transport/connection.hpp"
#include "transport/data_plane.hpp"

namespace atl::runtime {

// How long a holder's push waits for its reader's channel to reach it (the reader's FetchObject
// can overtake the end of the channel's handshake).
inline constexpr std::chrono::seconds kChannelWait{30};

struct ObjectTransferOptions {
  std::string token;
  std::string name;  // this process's data-plane name, unique in the cluster
  // Where the data plane listens (an IP address or a host name; 0.0.0.0: every interface) and
  // the host it advertises (empty: listen_host). An unspecified advertised host is replaced by
  // the host the head sees this process at (see reachable_address). Both are checked with
  // data_host_problem: the constructor raises Error(invalid_argument) for a bad one.
  std::string listen_host = "127.0.0.1";
  std::string advertise_host;
  // Bytes held for others plus bytes being fetched; beyond it `hold` and fetches fail store-full.
  std::uint64_t capacity_bytes = 2ull << 30;
  transport::DataBackend backend = transport::DataBackend::ucx;  // falls back to TCP
  // Where fetched objects land (a node's shared memory, a driver's buffer pool); empty: the heap.
  // May raise; the fetch then fails store-full.
  std::function<MutableBuffer(std::size_t)> allocate;
  // How long a push waits for its reader's channel (shorter in tests).
  std::chrono::milliseconds channel_wait = kChannelWait;
};

// `advertised` with an unspecified host (0.0.0.0, ::) replaced by `dialled_host`, the host this
// process reached the advertiser at. Raises Error(invalid_argument) for a malformed address.
std::string reachable_address(const std::string& advertised, const std::string& dialled_host);

// Why `host` cannot be a data plane's listen or advertised host ("" when it can): it must be an
// IP address (IPv6 without brackets) or a host name, without a scheme or a port, short enough
// for a data-plane address to carry it twice.
std::string data_host_problem(const std::string& host);

// The head's relay names itself with this prefix, so a holder knows to dial it again.
inline constexpr std::string_view kRelayNamePrefix = "head-relay-";
// Values that must travel inline through the head (an actor's constructor arguments): bounded
// well below the control plane's frame limit, so a larger one is refused with a clear error.
inline constexpr std::size_t kMaxInlineCallBytes = 8u << 20;

class ObjectTransfer {
 public:
  using SendRequest = std::function<void(capnp::MessageBuilder&)>;
  using Fetched = std::function<void(Buffer value, ErrorPtr error)>;

  // Raises like DataPlane's constructor (a port that cannot be bound, a short token).
  explicit ObjectTransfer(ObjectTransferOptions options);
  ~ObjectTransfer();
  ObjectTransfer(const ObjectTransfer&) = delete;
  ObjectTransfer& operator=(const ObjectTransfer&) = delete;

  std::string address() const;  // what holders advertise ("tcp://HOST:PORT[,ucx://…]")
  const std::string& name() const noexcept { return options_.name; }

  // Keeps `bytes` as object `id` until released. Raises Error(overloaded) when it does not fit;
  // holding an id again replaces nothing (the first copy stays: objects are immutable).
  void hold(ObjectId id, Buffer bytes);
  // The held object, or an empty optional.
  std::optional<Buffer> held(ObjectId id) const;
  void release(ObjectId id);
  // Releases every object of `owner` (its driver left).
  void release_owner(std::uint64_t owner);
  void release_all();
  std::uint64_t bytes_held() const;
  std::size_t objects_held() const;

  // Pushes held object `id` to the peer named `peer` (which opened a channel here). `done` gets
  // "" once the peer holds every byte, or why not. The peer's request may overtake the end of
  // its channel's handshake on this side: a push then waits for the channel, for at most
  // `channel_wait` (checked whenever a push or a channel comes, and by `expire`).
  // The head's PushObject: pushes as asked and tells the head how it ended (ObjectPushed, with
  // the request's attempt).
  void answer_push(const transport::ConnectionPtr& head, wire::ObjectPush::Reader request);
  // `value`: push these bytes rather than the held object (the head's relay passing one on).
  void push(ObjectId id, const std::string& peer, std::function<void(std::string error)> done,
            std::optional<Buffer> value = std::nullopt);
  // Fails pushes that waited longer than `channel_wait` for their reader's channel (the head then
  // tells the reader). Called periodically by the owner (a heartbeat or sweep tick).
  void expire();

  // Gets object `id` (`size` bytes) from the holder at `holder_address`: connects (or reuses the
  // channel), asks the head through `send` to have it pushed here, and calls `done` once with the
  // bytes or the error. Concurrent fetches of one id share the transfer. When the holder cannot
  // be dialled and a relay is set, the request asks the head to relay the object (through the
  // channel this process opened to the head's data plane).
  // `holder_name`, when known, is checked against the peer reached at the address (another
  // process may listen there: an address such as 127.0.0.1 means something else on each host);
  // a different peer counts as no direct path.
  void fetch(ObjectId id, std::uint64_t size, const std::string& holder_address,
             const std::string& holder_name, const SendRequest& send, Fetched done);
  // Waits for object `id` to be pushed here without asking for it (the head relaying an object
  // it asked a holder for); `done` as for fetch. Returns the fetch's attempt, for the caller's
  // PushObject (joining a fetch under way returns that one's).
  std::uint64_t expect(ObjectId id, std::uint64_t size, Fetched done);
  // The head's data plane, used when a holder cannot be dialled; dialled now, so a holder that
  // cannot be reached from outside can still push to the head on its own channel.
  void set_relay(const std::string& address);
  // The head says the push of `id` to us for fetch `attempt` failed: its fetchers get
  // object_lost with `why`. Ignored when that attempt has ended (the fetch now under way, if
  // any, is a later one, which this outcome says nothing about).
  void fetch_failed(ObjectId id, std::uint64_t attempt, const std::string& why);
  // Fails every fetch under way (the connection to the head is gone).
  void fail_fetches(const std::string& why, ErrorKind kind = ErrorKind::object_lost);

 private:
  struct Fetch {
    std::uint64_t size = 0;
    std::uint64_t attempt = 0;  // named in its FetchObject; outcomes of others are stale
    std::vector<Fetched> waiters;
    bool accepted = false;  // its bytes are counted against the capacity
  };
  transport::Allocation allocate(const transport::IncomingObject& o);
  void received(const transport::IncomingObject& o, MutableBuffer bytes);
  void failed(const transport::IncomingObject& o, const Error& error);
  // Removes the fetch and hands its waiters the outcome; with `attempt` (not 0), only when the
  // fetch under way is that attempt.
  void finish(ObjectId id, Buffer value, ErrorPtr error, std::uint64_t attempt = 0);
  using ChannelReady =
      std::function<void(const transport::DataChannelPtr& channel, const std::string& error)>;
  // Calls `ready` with a channel to `address` (dialled once and kept) or why there is none.
  void with_channel(const std::string& address, ChannelReady ready);

  const ObjectTransferOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<ObjectId, Buffer> held_;
  std::uint64_t held_bytes_ = 0;
  std::uint64_t fetching_bytes_ = 0;  // accepted incoming transfers not yet handed over
  std::unordered_map<ObjectId, Fetch> fetches_;
  std::uint64_t last_attempt_ = 0;
  std::string relay_address_;
  // Registers a waiter for `id`. Returns the fetch's attempt, and whether the fetch is new (the
  // caller starts the transfer) or one under way that it joined.
  std::pair<std::uint64_t, bool> add_fetch(ObjectId id, std::uint64_t size, Fetched done);
  // Asks the head for attempt `attempt` of `id`, unless that attempt has ended meanwhile.
  void send_fetch(ObjectId id, std::uint64_t attempt, const SendRequest& send, bool relay);
  std::map<std::string, transport::DataChannelPtr> dialled_;               // by holder address
  std::map<std::string, std::vector<ChannelReady>> dialing_;               // by holder address
  std::map<std::string, std::weak_ptr<transport::DataChannel>> accepted_;  // by peer name
  struct WaitingPush {
    ObjectId id;
    std::function<void(std::string)> done;
    std::chrono::steady_clock::time_point deadline;
    Buffer value;
  };
  void flush_waiting(const std::string& peer, const transport::DataChannelPtr& channel);
  void fail_expired(std::vector<WaitingPush>& expired);
  std::map<std::string, std::vector<WaitingPush>> waiting_pushes_;  // by peer name
  // With mu_ held: takes the waiting pushes whose deadline passed, for the caller to fail.
  std::vector<WaitingPush> expired_pushes_locked();
  std::unique_ptr<transport::DataPlane> plane_;  // last: its thread stops first
};

}  // namespace atl::runtime
