#include "runtime/object_transfer.hpp"

#include <asio/ip/address.hpp>
#include <cctype>

#include "runtime/cluster_messages.hpp"
#include "transport/schema/control.capnp.h"

namespace atl::runtime {

namespace {

// "30 s", "250 ms": the wait a push gave its reader, for the reader's error.
std::string duration_text(std::chrono::milliseconds wait) {
  if (wait.count() % 1000 == 0) return std::to_string(wait.count() / 1000) + " s";
  return std::to_string(wait.count()) + " ms";
}

}  // namespace

ObjectTransfer::ObjectTransfer(ObjectTransferOptions options) : options_(std::move(options)) {
  // Checked here, not only where a plane binds: a bad advertised host would otherwise surface
  // only on the readers, as an unreachable holder.
  auto check_host = [](const std::string& host, const char* which) {
    if (auto why = data_host_problem(host); !why.empty())
      throw Error(ErrorCategory::invalid_argument,
                  std::string("the data plane's ") + which + " host '" + host + "' " + why);
  };
  check_host(options_.listen_host, "listen");
  if (!options_.advertise_host.empty()) check_host(options_.advertise_host, "advertised");
  if (options_.channel_wait.count() < 0)
    throw Error(ErrorCategory::invalid_argument, "channel_wait must not be negative");
  transport::ReceiveHandlers handlers;
  handlers.allocate = [this](const transport::IncomingObject& o) { return allocate(o); };
  handlers.on_received = [this](const transport::IncomingObject& o, MutableBuffer bytes) {
    received(o, std::move(bytes));
  };
  handlers.on_failed = [this](const transport::IncomingObject& o, const Error& error) {
    failed(o, error);
  };
  handlers.on_channel = [this](transport::DataChannelPtr channel) {
    std::vector<WaitingPush> expired;
    {
      std::lock_guard lock(mu_);
      accepted_[channel->peer_name()] = channel;
      expired = expired_pushes_locked();
    }
    flush_waiting(channel->peer_name(), channel);
    fail_expired(expired);
  };
  plane_ = std::make_unique<transport::DataPlane>(
      transport::DataPlaneOptions{.token = options_.token,
                                  .name = options_.name,
                                  .backend = options_.backend,
                                  .listen_host = options_.listen_host,
                                  .advertise_host = options_.advertise_host,
                                  .log = [](std::string_view) {}},
      std::move(handlers));
}

ObjectTransfer::~ObjectTransfer() {
  std::map<std::string, std::vector<WaitingPush>> waiting;
  {
    std::lock_guard lock(mu_);
    dialled_.clear();
    accepted_.clear();
    waiting.swap(waiting_pushes_);
  }
  for (auto& [peer, list] : waiting)
    for (auto& w : list) w.done("'" + options_.name + "' is shutting down");
  plane_.reset();  // closes every channel; its callbacks have run when this returns
  fail_fetches("the process is shutting down");
}

std::string reachable_address(const std::string& advertised, const std::string& dialled_host) {
  if (advertised.empty()) return advertised;
  auto address = transport::DataAddress::parse(advertised);
  if (address.host == "0.0.0.0" || address.host == "::" || address.host.empty())
    address.host = dialled_host;
  return address.to_string();
}

std::string data_host_problem(const std::string& host) {
  // The address carries the host twice (tcp:// and ucx://) within the wire's 256 characters.
  constexpr std::size_t kMaxHostChars = 100;
  if (host.empty()) return "is empty: expected an IP address or a host name";
  if (host.size() > kMaxHostChars)
    return "is longer than " + std::to_string(kMaxHostChars) + " characters";
  asio::error_code ec;
  asio::ip::make_address(host, ec);
  if (!ec) return {};
  if (host.find("://") != std::string::npos || host.find(':') != std::string::npos ||
      host.find('/') != std::string::npos)
    return "is not a host: give an IP address or a host name alone, without a scheme or a port";
  // A host name (RFC 1123): dot-separated labels of letters, digits and inner hyphens.
  std::size_t label = 0;
  for (std::size_t i = 0; i <= host.size(); ++i) {
    char c = i < host.size() ? host[i] : '.';
    if (c == '.') {
      if (label == 0 || label > 63 || host[i - 1] == '-' || host[i - label] == '-')
        return "is not an IP address or a valid host name";
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-') {
      ++label;
    } else {
      return "is not an IP address or a valid host name";
    }
  }
  return {};
}

std::string ObjectTransfer::address() const {
  return plane_->address().to_string();
}

void ObjectTransfer::hold(ObjectId id, Buffer bytes) {
  std::lock_guard lock(mu_);
  if (held_.contains(id)) return;
  if (held_bytes_ + fetching_bytes_ + bytes.size() > options_.capacity_bytes)
    throw Error(ErrorCategory::overloaded,
                "the object store of '" + options_.name +
                    "' is full: " + std::to_string(bytes.size()) + " bytes do not fit (" +
                    std::to_string(held_bytes_ + fetching_bytes_) + " of " +
                    std::to_string(options_.capacity_bytes) + " in use)");
  held_bytes_ += bytes.size();
  held_.emplace(id, std::move(bytes));
}

std::optional<Buffer> ObjectTransfer::held(ObjectId id) const {
  std::lock_guard lock(mu_);
  auto it = held_.find(id);
  if (it == held_.end()) return std::nullopt;
  return it->second;
}

void ObjectTransfer::release(ObjectId id) {
  std::lock_guard lock(mu_);
  auto it = held_.find(id);
  if (it == held_.end()) return;
  held_bytes_ -= it->second.size();
  held_.erase(it);
}

void ObjectTransfer::release_owner(std::uint64_t owner) {
  std::lock_guard lock(mu_);
  std::erase_if(held_, [&](const auto& entry) {
    if (entry.first.owner != owner) return false;
    held_bytes_ -= entry.second.size();
    return true;
  });
}

void ObjectTransfer::release_all() {
  std::lock_guard lock(mu_);
  held_.clear();
  held_bytes_ = 0;
}

std::uint64_t ObjectTransfer::bytes_held() const {
  std::lock_guard lock(mu_);
  return held_bytes_;
}

std::size_t ObjectTransfer::objects_held() const {
  std::lock_guard lock(mu_);
  return held_.size();
}

void ObjectTransfer::push(ObjectId id, const std::string& peer,
                          std::function<void(std::string error)> done,
                          std::optional<Buffer> value) {
  transport::DataChannelPtr channel;
  std::vector<WaitingPush> expired;
  std::string redial;
  {
    std::lock_guard lock(mu_);
    expired = expired_pushes_locked();
    if (!value)
      if (auto it = held_.find(id); it != held_.end()) value = it->second;
    if (auto it = accepted_.find(peer); it != accepted_.end()) channel = it->second.lock();
    if (!channel || channel->closed()) {
      channel = nullptr;
      // A peer this process dialled itself (the head's relay, reached from behind a NAT).
      for (const auto& [address, dialled] : dialled_)
        if (!dialled->closed() && dialled->peer_name() == peer) channel = dialled;
    }
    if (value && !channel) {
      // Its channel's handshake has not finished on this side yet, or (the relay) the channel
      // this process keeps to it broke: wait for it, and dial the relay again.
      waiting_pushes_[peer].push_back(
          {id, std::move(done), std::chrono::steady_clock::now() + options_.channel_wait, *value});
      if (!relay_address_.empty() && peer.starts_with(kRelayNamePrefix)) redial = relay_address_;
    }
  }
  fail_expired(expired);
  if (!value) {
    done("object " + id.to_string() + " is not held on '" + options_.name +
         "' (freed, or never stored here)");
    return;
  }
  if (!channel) {
    if (!redial.empty())
      with_channel(redial, [this](const transport::DataChannelPtr& c, const std::string&) {
        if (c) flush_waiting(c->peer_name(), c);
      });
    return;  // waiting for it
  }
  channel->send(id, std::move(*value), [done = std::move(done)](transport::IoError error) {
    done(error ? std::string(error->what()) : std::string());
  });
}

void ObjectTransfer::flush_waiting(const std::string& peer, const transport::DataChannelPtr& c) {
  std::vector<WaitingPush> ready;
  {
    std::lock_guard lock(mu_);
    if (auto it = waiting_pushes_.find(peer); it != waiting_pushes_.end()) {
      ready = std::move(it->second);
      waiting_pushes_.erase(it);
    }
  }
  for (auto& w : ready)
    c->send(w.id, std::move(w.value), [done = std::move(w.done)](transport::IoError error) {
      done(error ? std::string(error->what()) : std::string());
    });
}

void ObjectTransfer::fail_expired(std::vector<WaitingPush>& expired) {
  for (auto& w : expired)
    w.done("the reader opened no data channel to '" + options_.name + "' within " +
           duration_text(options_.channel_wait));
}

void ObjectTransfer::expire() {
  std::vector<WaitingPush> expired;
  {
    std::lock_guard lock(mu_);
    expired = expired_pushes_locked();
  }
  fail_expired(expired);
}

void ObjectTransfer::answer_push(const transport::ConnectionPtr& head,
                                 wire::ObjectPush::Reader request) {
  ObjectId id = object_key(request.getObject());
  std::string peer = request.getPeer();
  std::uint64_t attempt = request.getAttempt();
  push(id, peer, [head, id, peer, attempt](std::string error) {
    send_object_pushed(*head, id, peer, attempt, error);
  });
}

std::vector<ObjectTransfer::WaitingPush> ObjectTransfer::expired_pushes_locked() {
  std::vector<WaitingPush> expired;
  auto now = std::chrono::steady_clock::now();
  for (auto it = waiting_pushes_.begin(); it != waiting_pushes_.end();) {
    auto& list = it->second;
    for (auto w = list.begin(); w != list.end();) {
      if (w->deadline <= now) {
        expired.push_back(std::move(*w));
        w = list.erase(w);
      } else {
        ++w;
      }
    }
    it = list.empty() ? waiting_pushes_.erase(it) : std::next(it);
  }
  return expired;
}

std::pair<std::uint64_t, bool> ObjectTransfer::add_fetch(ObjectId id, std::uint64_t size,
                                                         Fetched done) {
  std::lock_guard lock(mu_);
  auto [it, fresh] = fetches_.try_emplace(id);
  it->second.waiters.push_back(std::move(done));
  if (fresh) {
    it->second.size = size;
    it->second.attempt = ++last_attempt_;
  }
  return {it->second.attempt, fresh};
}

std::uint64_t ObjectTransfer::expect(ObjectId id, std::uint64_t size, Fetched done) {
  return add_fetch(id, size, std::move(done)).first;
}

void ObjectTransfer::set_relay(const std::string& address) {
  {
    std::lock_guard lock(mu_);
    relay_address_ = address;
  }
  if (!address.empty())
    with_channel(address, [](const transport::DataChannelPtr&, const std::string&) {});
}

void ObjectTransfer::send_fetch(ObjectId id, std::uint64_t attempt, const SendRequest& send,
                                bool relay) {
  {
    // It may have failed while its channel was dialled (the head was lost); a later attempt
    // sends its own request.
    std::lock_guard lock(mu_);
    auto it = fetches_.find(id);
    if (it == fetches_.end() || it->second.attempt != attempt) return;
  }
  transport::ControlMessage msg;
  auto request = msg.initRoot<wire::Envelope>().getBody().initFetchObject();
  set_object_key(request.initObject(), id);
  request.setPeer(options_.name);
  request.setRelay(relay);
  request.setAttempt(attempt);
  send(msg);
}

void ObjectTransfer::fetch(ObjectId id, std::uint64_t size, const std::string& holder_address,
                           const std::string& holder_name, const SendRequest& send, Fetched done) {
  auto [attempt, fresh] = add_fetch(id, size, std::move(done));
  if (!fresh) return;  // a transfer of it is under way: share it
  with_channel(holder_address, [this, id, attempt, holder_address, holder_name, send](
                                   const transport::DataChannelPtr& channel,
                                   const std::string& dial_error) {
    if (channel && (holder_name.empty() || channel->peer_name() == holder_name)) {
      send_fetch(id, attempt, send, false);
      return;
    }
    std::string error =
        channel ? "the peer there is '" + channel->peer_name() + "', not '" + holder_name + "'"
                : dial_error;
    std::string relay;
    {
      std::lock_guard lock(mu_);
      relay = relay_address_;
    }
    auto lost = [this, id, attempt, holder_address, error](const std::string& relay_error) {
      finish(id, {},
             make_error(ErrorKind::object_lost,
                        "object " + id.to_string() + " cannot be fetched: its holder at " +
                            holder_address + " is unreachable (" + error + ")" + relay_error),
             attempt);
    };
    if (relay.empty()) return lost("");
    with_channel(relay, [this, id, attempt, send, lost](const transport::DataChannelPtr& to_head,
                                                        const std::string& relay_error) {
      if (!to_head) return lost(", and so is the head's relay (" + relay_error + ")");
      send_fetch(id, attempt, send, true);
    });
  });
}

void ObjectTransfer::with_channel(const std::string& address, ChannelReady ready) {
  transport::DataChannelPtr channel;
  {
    std::lock_guard lock(mu_);
    if (auto it = dialled_.find(address); it != dialled_.end() && !it->second->closed()) {
      channel = it->second;
    } else {
      auto& waiting = dialing_[address];
      waiting.push_back(std::move(ready));
      if (waiting.size() > 1) return;  // a dial is under way: its result serves this one too
    }
  }
  if (channel) {
    ready(channel, "");
    return;
  }
  auto dialled = [this, address](transport::DataChannelPtr c, const std::string& error) {
    std::vector<ChannelReady> waiting;
    {
      std::lock_guard lock(mu_);
      if (auto it = dialing_.find(address); it != dialing_.end()) {
        waiting = std::move(it->second);
        dialing_.erase(it);
      }
      if (c) dialled_[address] = c;
    }
    for (auto& w : waiting) w(c, error);
  };
  transport::DataAddress peer;
  try {
    peer = transport::DataAddress::parse(address);
  } catch (const std::exception& e) {
    dialled(nullptr, e.what());
    return;
  }
  plane_->connect(peer, {}, [dialled](transport::DataChannelPtr c, transport::IoError error) {
    dialled(std::move(c), error ? std::string(error->what()) : std::string());
  });
}

void ObjectTransfer::fetch_failed(ObjectId id, std::uint64_t attempt, const std::string& why) {
  if (attempt == 0) return;  // names no attempt of ours (the codec refuses these anyway)
  finish(id, {}, make_error(ErrorKind::object_lost, why), attempt);
}

void ObjectTransfer::fail_fetches(const std::string& why, ErrorKind kind) {
  std::vector<ObjectId> ids;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, fetch] : fetches_) ids.push_back(id);
  }
  for (ObjectId id : ids)
    finish(id, {}, make_error(kind, "fetching object " + id.to_string() + ": " + why));
}

transport::Allocation ObjectTransfer::allocate(const transport::IncomingObject& o) {
  std::string full;
  {
    std::lock_guard lock(mu_);
    auto it = fetches_.find(o.id);
    if (it == fetches_.end() || it->second.accepted)
      return transport::Allocation::refuse(
          Error(ErrorCategory::failed,
                "'" + options_.name + "' is not fetching object " + o.id.to_string()));
    if (it->second.size != o.size)
      return transport::Allocation::refuse(
          Error(ErrorCategory::invalid_argument, "object " + o.id.to_string() + " has " +
                                                     std::to_string(it->second.size) +
                                                     " bytes, not " + std::to_string(o.size)));
    if (held_bytes_ + fetching_bytes_ + o.size <= options_.capacity_bytes) {
      it->second.accepted = true;
      fetching_bytes_ += o.size;
    } else {
      full = "the object store of '" + options_.name + "' is full: object " + o.id.to_string() +
             " (" + std::to_string(o.size) + " bytes) does not fit (" +
             std::to_string(held_bytes_ + fetching_bytes_) + " of " +
             std::to_string(options_.capacity_bytes) + " in use)";
    }
  }
  if (full.empty()) {
    try {
      // Outside the lock: a fresh block of a GiB takes a while to fault in.
      return transport::Allocation::accept(options_.allocate ? options_.allocate(o.size)
                                                             : MutableBuffer::allocate(o.size));
    } catch (const std::exception& e) {
      full = "'" + options_.name + "' has no memory for object " + o.id.to_string() + " (" +
             std::to_string(o.size) + " bytes): " + e.what();
    }
  }
  finish(o.id, {}, make_error(ErrorKind::store_full, full));
  return transport::Allocation::refuse(Error(ErrorCategory::overloaded, full));
}

void ObjectTransfer::received(const transport::IncomingObject& o, MutableBuffer bytes) {
  finish(o.id, std::move(bytes).freeze(), nullptr);
}

void ObjectTransfer::failed(const transport::IncomingObject& o, const Error& error) {
  finish(o.id, {},
         make_error(ErrorKind::object_lost, "fetching object " + o.id.to_string() + " from '" +
                                                o.peer + "' failed: " + error.what()));
}

void ObjectTransfer::finish(ObjectId id, Buffer value, ErrorPtr error, std::uint64_t attempt) {
  std::vector<Fetched> waiters;
  {
    std::lock_guard lock(mu_);
    auto it = fetches_.find(id);
    if (it == fetches_.end()) return;
    if (attempt != 0 && it->second.attempt != attempt) return;  // an earlier attempt's outcome
    if (it->second.accepted) fetching_bytes_ -= it->second.size;
    waiters = std::move(it->second.waiters);
    fetches_.erase(it);
  }
  for (auto& done : waiters) done(value, error);
}

}  // namespace atl::runtime
