#include "transport/data_plane.hpp"

#include <asio.hpp>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <thread>
#include <unordered_map>

#include "transport/auth.hpp"
#include "transport/data_channel.hpp"
#include "transport/data_handshake.hpp"
#include "transport/data_wire.hpp"
#include "transport/tcp_stream.hpp"
#ifdef ATOLL_WITH_UCX
#include "transport/ucx_stream.hpp"
#endif

namespace atl::transport {

namespace {

using Clock = std::chrono::steady_clock;
namespace wire = data_wire;

// Streams still in their handshake beyond this are closed at once.
constexpr std::size_t kMaxPendingHandshakes = 256;
// Multi-stream channels still gathering their streams.
constexpr std::size_t kMaxPendingGroups = 64;

Error invalid(const std::string& what) {
  return Error(ErrorCategory::invalid_argument, what);
}

std::uint64_t random_channel_id() {
  for (;;) {
    Nonce n = make_nonce();
    std::uint64_t id = 0;
    std::memcpy(&id, n.data(), sizeof id);
    if (id != 0) return id;
  }
}

void validate(const DataPlaneOptions& o) {
  validate_token(o.token);
  if (o.name.size() > wire::kMaxNameBytes)
    throw invalid("a data plane's name has at most " + std::to_string(wire::kMaxNameBytes) +
                  " characters");
  for (char c : o.name)
    if (c < 0x20 || c > 0x7e) throw invalid("a data plane's name must be printable ASCII");
  if (o.chunk_bytes < wire::kMinChunkBytes || o.chunk_bytes > wire::kMaxChunkBytes)
    throw invalid("chunk_bytes must be between " + std::to_string(wire::kMinChunkBytes) + " and " +
                  std::to_string(wire::kMaxChunkBytes));
  if (o.window_bytes < wire::kMinWindowBytes || o.window_bytes > wire::kMaxWindowBytes ||
      o.window_bytes < o.chunk_bytes)
    throw invalid("window_bytes must be between " + std::to_string(wire::kMinWindowBytes) +
                  " and " + std::to_string(wire::kMaxWindowBytes) + " and at least chunk_bytes");
  if (o.max_object_bytes == 0) throw invalid("max_object_bytes must be positive");
  if (o.handshake_timeout.count() <= 0 || o.stall_timeout.count() <= 0)
    throw invalid("the data plane's timeouts must be positive");
}

std::string host_text(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

// ---- addresses ------------------------------------------------------------------------------

std::string DataAddress::to_string() const {
  std::string out;
  if (tcp_port != 0) out = "tcp://" + host_text(host) + ":" + std::to_string(tcp_port);
  if (ucx_port != 0)
    out += (out.empty() ? "" : ",") + std::string("ucx://") + host_text(host) + ":" +
           std::to_string(ucx_port);
  return out;
}

DataAddress DataAddress::parse(std::string_view text) {
  DataAddress out;
  const std::string whole(text);
  auto bad = [&](const std::string& why) {
    return invalid("bad data-plane address '" + whole + "': " + why +
                   " (expected tcp://HOST:PORT[,ucx://HOST:PORT])");
  };
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    auto sep = part.find("://");
    if (sep == std::string_view::npos) throw bad("no scheme");
    std::string_view scheme = part.substr(0, sep), rest = part.substr(sep + 3);
    std::string host;
    if (!rest.empty() && rest.front() == '[') {
      auto close = rest.find(']');
      if (close == std::string_view::npos) throw bad("unclosed '['");
      host = std::string(rest.substr(1, close - 1));
      rest = rest.substr(close + 1);
      if (rest.empty() || rest.front() != ':') throw bad("no port");
      rest = rest.substr(1);
    } else {
      auto colon = rest.rfind(':');
      if (colon == std::string_view::npos) throw bad("no port");
      host = std::string(rest.substr(0, colon));
      rest = rest.substr(colon + 1);
    }
    if (host.empty()) throw bad("no host");
    unsigned long port = 0;
    if (rest.empty() || rest.size() > 5) throw bad("bad port");
    for (char c : rest) {
      if (c < '0' || c > '9') throw bad("bad port");
      port = port * 10 + static_cast<unsigned long>(c - '0');
    }
    if (port == 0 || port > 65535) throw bad("port out of range");
    if (!out.host.empty() && out.host != host) throw bad("two different hosts");
    out.host = host;
    std::uint16_t& slot = scheme == "tcp" ? out.tcp_port : out.ucx_port;
    if (scheme != "tcp" && scheme != "ucx")
      throw bad("unknown scheme '" + std::string(scheme) + "'");
    if (slot != 0) throw bad("scheme '" + std::string(scheme) + "' given twice");
    slot = static_cast<std::uint16_t>(port);
  }
  if (out.host.empty()) throw bad("empty");
  return out;
}

namespace {

// A result handed from the data thread to a blocked caller as plain values: the caller builds the
// exception itself, so no exception object (whose reference count lives in uninstrumented
// libstdc++) is shared between threads.
template <class T>
class Handoff {
 public:
  void set(T value, IoError error) {
    std::lock_guard lock(mu_);
    if (done_) return;
    done_ = true;
    value_ = std::move(value);
    if (error) failure_.emplace(error->category(), std::string(error->what()));
    cv_.notify_all();
  }
  // The value, or raises the error; Error(timed_out) with `late` after `timeout`. A value that
  // arrives after a timeout goes to `abandon`.
  T take(std::chrono::milliseconds timeout, const std::string& late) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return done_; })) {
      abandoned_ = true;
      throw Error(ErrorCategory::timed_out, late);
    }
    if (failure_) throw Error(failure_->first, failure_->second);
    return std::move(value_);
  }
  bool abandoned() {
    std::lock_guard lock(mu_);
    return abandoned_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false, abandoned_ = false;
  T value_{};
  std::optional<std::pair<ErrorCategory, std::string>> failure_;
};

}  // namespace

void DataChannel::send_and_wait(ObjectId id, Buffer bytes, std::chrono::milliseconds timeout) {
  auto handoff = std::make_shared<Handoff<bool>>();
  send(id, std::move(bytes), [handoff](IoError error) { handoff->set(true, std::move(error)); });
  handoff->take(timeout, "sending object " + id.to_string() + " to '" + peer_name() +
                             "' took longer than " + std::to_string(timeout.count()) + " ms");
}

// ---- the plane --------------------------------------------------------------------------------

class DataPlane::Impl {
 public:
  Impl(DataPlaneOptions options, ReceiveHandlers handlers);
  ~Impl();

  void connect(const DataAddress& peer, ConnectOptions options,
               std::function<void(DataChannelPtr, IoError)> done);
  std::thread::id thread_id() const noexcept { return thread_.get_id(); }

  // Members read by any thread, fixed after construction.
  asio::io_context io_;
  std::shared_ptr<PlaneGate> gate_ = std::make_shared<PlaneGate>(io_);
  DataPlaneOptions options_;
  std::shared_ptr<const ReceiveHandlers> handlers_;
  DataBackend backend_ = DataBackend::tcp;
  std::string fallback_reason_;
  DataAddress address_;
  std::atomic<std::uint64_t> opened_{0}, refused_{0}, open_{0};

 private:
  struct Dial;
  struct Group {
    std::vector<std::optional<StreamAgreement>> streams;
    std::size_t have = 0;
    Clock::time_point deadline;
  };

  HandshakeParams params() const;
  void on_stream(ByteStreamPtr stream);
  void on_authenticated(StreamAgreement agreement);
  std::shared_ptr<ChannelImpl> open_channel(std::vector<std::optional<StreamAgreement>> streams);
  void dial(const DataAddress& peer, ConnectOptions options,
            std::function<void(DataChannelPtr, IoError)> done);
  void open_stream(const DataAddress& peer, DataBackend backend,
                   std::function<void(ByteStreamPtr, IoError)> done);
  void fail_dial(const std::shared_ptr<Dial>& dial, Error error);
  void sweep();
  void shutdown();
  void log(const std::string& line) const;

  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  asio::steady_timer sweep_timer_{io_};
  std::shared_ptr<TcpAcceptor> tcp_;
#ifdef ATOLL_WITH_UCX
  std::unique_ptr<UcxWorker> ucx_;
#endif
  std::thread thread_;
  // Data thread only.
  bool stopping_ = false;
  std::size_t pending_handshakes_ = 0;
  std::unordered_map<ChannelImpl*, std::shared_ptr<ChannelImpl>> channels_;
  std::unordered_map<std::uint64_t, Group> groups_;
  std::unordered_map<Dial*, std::shared_ptr<Dial>> dials_;
};

struct DataPlane::Impl::Dial {
  std::vector<std::optional<StreamAgreement>> streams;
  std::size_t remaining = 0;
  bool finished = false;
  std::function<void(DataChannelPtr, IoError)> done;
};

DataPlane::Impl::Impl(DataPlaneOptions options, ReceiveHandlers handlers)
    : options_(std::move(options)),
      handlers_(std::make_shared<const ReceiveHandlers>(std::move(handlers))) {
  validate(options_);
  asio::error_code ec;
  auto listen_address = asio::ip::make_address(options_.listen_host, ec);
  if (ec) {
    asio::ip::tcp::resolver resolver(io_);
    auto results = resolver.resolve(options_.listen_host, "0", ec);
    if (ec || results.empty())
      throw invalid("cannot resolve the data plane's listen host '" + options_.listen_host + "'");
    listen_address = results.begin()->endpoint().address();
  }
  tcp_ = TcpAcceptor::start(io_, {listen_address, options_.tcp_port},
                            [this](ByteStreamPtr s) { on_stream(std::move(s)); });
  address_.host = options_.advertise_host.empty() ? options_.listen_host : options_.advertise_host;
  address_.tcp_port = tcp_->port();
  if (options_.backend == DataBackend::ucx) {
#ifdef ATOLL_WITH_UCX
    std::string error;
    ucx_ = UcxWorker::create(
        io_, options_.ucx_transports, listen_address.to_string(), options_.ucx_port,
        [this](ByteStreamPtr s) { on_stream(std::move(s)); }, error);
    if (ucx_) {
      backend_ = DataBackend::ucx;
      address_.ucx_port = ucx_->port();
    } else {
      fallback_reason_ = "UCX failed to initialise (" + error + ")";
    }
#else
    fallback_reason_ = "this build has no UCX (configured with ATOLL_WITH_UCX=OFF)";
#endif
    if (!fallback_reason_.empty()) log(fallback_reason_ + "; using TCP");
  }
  thread_ = std::thread([this] {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& e) {
        log(std::string("a data-plane handler threw (continuing): ") + e.what());
      }
    }
  });
  asio::post(io_, [this] {
#ifdef ATOLL_WITH_UCX
    if (ucx_) ucx_->start();
#endif
    sweep();
  });
}

DataPlane::Impl::~Impl() {
  gate_->shut();
  asio::post(io_, [this] { shutdown(); });
  thread_.join();
}

void DataPlane::Impl::log(const std::string& line) const {
  if (options_.log)
    options_.log(line);
  else
    std::cerr << "atoll data plane" << (options_.name.empty() ? "" : " '" + options_.name + "'")
              << ": " << line << "\n";
}

HandshakeParams DataPlane::Impl::params() const {
  return {.token = options_.token,
          .name = options_.name,
          .window_bytes = options_.window_bytes,
          .max_chunk_bytes = options_.chunk_bytes,
          .timeout = options_.handshake_timeout};
}

void DataPlane::Impl::on_stream(ByteStreamPtr stream) {
  if (stopping_ || pending_handshakes_ >= kMaxPendingHandshakes) {
    stream->close();
    refused_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  ++pending_handshakes_;
  handshake_as_listener(io_, std::move(stream), params(),
                        [this](std::optional<StreamAgreement> agreement, IoError) {
                          --pending_handshakes_;
                          if (!agreement) {
                            refused_.fetch_add(1, std::memory_order_relaxed);
                            return;
                          }
                          if (stopping_) return agreement->stream->close();
                          on_authenticated(std::move(*agreement));
                        });
}

void DataPlane::Impl::on_authenticated(StreamAgreement a) {
  if (a.stream_count == 1) {
    std::vector<std::optional<StreamAgreement>> one;
    one.push_back(std::move(a));
    auto channel = open_channel(std::move(one));
    if (handlers_->on_channel) handlers_->on_channel(channel);
    return;
  }
  auto it = groups_.find(a.channel_id);
  if (it == groups_.end()) {
    if (groups_.size() >= kMaxPendingGroups) return a.stream->close();
    it = groups_.emplace(a.channel_id, Group{}).first;
    it->second.streams.resize(a.stream_count);
    it->second.deadline = Clock::now() + options_.handshake_timeout;
  }
  Group& g = it->second;
  bool consistent = g.streams.size() == a.stream_count && !g.streams[a.stream_index];
  for (const auto& s : g.streams)
    if (s && (s->peer_name != a.peer_name || s->peer_window_bytes != a.peer_window_bytes ||
              s->peer_max_chunk_bytes != a.peer_max_chunk_bytes))
      consistent = false;
  if (!consistent) {  // a confused peer: drop the whole group
    a.stream->close();
    for (auto& s : g.streams)
      if (s) s->stream->close();
    groups_.erase(it);
    return;
  }
  g.streams[a.stream_index] = std::move(a);
  if (++g.have < g.streams.size()) return;
  auto streams = std::move(g.streams);
  groups_.erase(it);
  auto channel = open_channel(std::move(streams));
  if (handlers_->on_channel) handlers_->on_channel(channel);
}

std::shared_ptr<ChannelImpl> DataPlane::Impl::open_channel(
    std::vector<std::optional<StreamAgreement>> agreements) {
  const StreamAgreement& a = *agreements.front();
  ChannelConfig config;
  config.peer_name = a.peer_name;
  config.remote = a.stream->remote();
  config.send_window_bytes = a.peer_window_bytes;
  config.send_chunk_bytes = static_cast<std::uint32_t>(
      std::min<std::uint64_t>({options_.chunk_bytes, a.peer_max_chunk_bytes, a.peer_window_bytes}));
  config.recv_window_bytes = options_.window_bytes;
  config.recv_max_chunk_bytes = options_.chunk_bytes;
  config.max_object_bytes = options_.max_object_bytes;
  std::vector<ByteStreamPtr> streams;
  for (auto& s : agreements) streams.push_back(std::move(s->stream));
  auto channel = std::make_shared<ChannelImpl>(gate_, std::move(streams), std::move(config),
                                               handlers_, [this](ChannelImpl* c) {
                                                 channels_.erase(c);
                                                 open_.fetch_sub(1, std::memory_order_relaxed);
                                               });
  channels_.emplace(channel.get(), channel);
  opened_.fetch_add(1, std::memory_order_relaxed);
  open_.fetch_add(1, std::memory_order_relaxed);
  channel->start();
  return channel;
}

void DataPlane::Impl::connect(const DataAddress& peer, ConnectOptions options,
                              std::function<void(DataChannelPtr, IoError)> done) {
  if (!gate_->post([this, peer, options, done] { dial(peer, options, done); }))
    done(nullptr, Error(ErrorCategory::disconnected, "the data plane has stopped"));
}

void DataPlane::Impl::dial(const DataAddress& peer, ConnectOptions options,
                           std::function<void(DataChannelPtr, IoError)> done) {
  if (options.streams == 0 || options.streams > wire::kMaxStreams)
    return done(nullptr, invalid("a channel has 1 to " + std::to_string(wire::kMaxStreams) +
                                 " streams, not " + std::to_string(options.streams)));
  DataBackend backend = DataBackend::tcp;
#ifdef ATOLL_WITH_UCX
  if (ucx_ && peer.ucx_port != 0 && !options.force_tcp) backend = DataBackend::ucx;
#endif
  if (backend == DataBackend::tcp && peer.tcp_port == 0)
    return done(nullptr, invalid("the address '" + peer.to_string() +
                                 "' has no TCP port and this data plane has no UCX"));
  auto d = std::make_shared<Dial>();
  d->streams.resize(options.streams);
  d->remaining = options.streams;
  d->done = std::move(done);
  dials_.emplace(d.get(), d);
  const std::uint64_t channel_id = random_channel_id();
  const auto count = static_cast<std::uint16_t>(options.streams);
  for (std::uint16_t i = 0; i < count; ++i) {
    open_stream(peer, backend, [this, d, i, count, channel_id](ByteStreamPtr stream, IoError e) {
      if (d->finished) {
        if (stream) stream->close();
        return;
      }
      if (e) return fail_dial(d, std::move(*e));
      handshake_as_dialler(io_, stream, params(), channel_id, i, count,
                           [this, d, i](std::optional<StreamAgreement> agreement, IoError error) {
                             if (d->finished) {
                               if (agreement) agreement->stream->close();
                               return;
                             }
                             if (!agreement) return fail_dial(d, std::move(*error));
                             d->streams[i] = std::move(agreement);
                             if (--d->remaining > 0) return;
                             d->finished = true;
                             dials_.erase(d.get());
                             d->done(open_channel(std::move(d->streams)), std::nullopt);
                           });
    });
  }
}

void DataPlane::Impl::open_stream(const DataAddress& peer, DataBackend backend,
                                  std::function<void(ByteStreamPtr, IoError)> done) {
  if (backend == DataBackend::tcp)
    return tcp_connect(io_, peer.host, peer.tcp_port, std::move(done));
#ifdef ATOLL_WITH_UCX
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(io_);
  resolver->async_resolve(
      peer.host, std::to_string(peer.ucx_port),
      [this, resolver, peer, done = std::move(done)](
          const asio::error_code& ec, asio::ip::tcp::resolver::results_type results) {
        if (ec || results.empty())
          return done(nullptr, Error(ErrorCategory::invalid_argument,
                                     "cannot resolve '" + peer.host + "': " + ec.message()));
        if (stopping_ || !ucx_)
          return done(nullptr, Error(ErrorCategory::disconnected, "the data plane is stopping"));
        ucx_->connect(results.begin()->endpoint(), done);
      });
#endif
}

void DataPlane::Impl::fail_dial(const std::shared_ptr<Dial>& d, Error error) {
  if (d->finished) return;
  d->finished = true;
  dials_.erase(d.get());
  for (auto& s : d->streams)
    if (s) s->stream->close();
  d->done(nullptr, std::move(error));
}

void DataPlane::Impl::sweep() {
  if (stopping_) return;
  const auto now = Clock::now();
  for (auto it = groups_.begin(); it != groups_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    for (auto& s : it->second.streams)
      if (s) s->stream->close();
    it = groups_.erase(it);
  }
  std::vector<std::shared_ptr<ChannelImpl>> stalled;
  for (auto& [ptr, channel] : channels_)
    if (channel->stalled_since(now - options_.stall_timeout)) stalled.push_back(channel);
  for (auto& channel : stalled)
    channel->fail(Error(ErrorCategory::timed_out,
                        "data channel to '" + channel->peer_name() + "': no progress for " +
                            std::to_string(options_.stall_timeout.count()) +
                            " ms with transfers pending (the peer stopped responding)"));
  auto period = std::min(options_.stall_timeout, options_.handshake_timeout) / 4;
  period = std::clamp(period, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
  sweep_timer_.expires_after(period);
  sweep_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) sweep();
  });
}

void DataPlane::Impl::shutdown() {
  stopping_ = true;
  tcp_->close();
  sweep_timer_.cancel();
  const Error stopping(ErrorCategory::disconnected, "the data plane is shutting down");
  for (auto& [id, g] : groups_)
    for (auto& s : g.streams)
      if (s) s->stream->close();
  groups_.clear();
  std::vector<std::shared_ptr<Dial>> dials;
  for (auto& [ptr, d] : dials_) dials.push_back(d);
  for (auto& d : dials) fail_dial(d, stopping);
  std::vector<std::shared_ptr<ChannelImpl>> channels;
  for (auto& [ptr, channel] : channels_) channels.push_back(channel);
  for (auto& channel : channels) channel->fail(stopping);
#ifdef ATOLL_WITH_UCX
  if (ucx_) ucx_->shutdown();
#endif
  work_.reset();
  // Handshakes still running hold timers; what remains queued only releases memory.
  io_.stop();
}

// ---- the public face ----------------------------------------------------------------------------

DataPlane::DataPlane(DataPlaneOptions options, ReceiveHandlers handlers)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(handlers))) {}

DataPlane::~DataPlane() = default;

DataAddress DataPlane::address() const {
  return impl_->address_;
}

DataBackend DataPlane::backend() const noexcept {
  return impl_->backend_;
}

const std::string& DataPlane::fallback_reason() const noexcept {
  return impl_->fallback_reason_;
}

void DataPlane::connect(const DataAddress& peer, ConnectOptions options,
                        std::function<void(DataChannelPtr, IoError)> done) {
  impl_->connect(peer, options, std::move(done));
}

DataChannelPtr DataPlane::connect(const DataAddress& peer, ConnectOptions options,
                                  std::chrono::milliseconds timeout) {
  if (std::this_thread::get_id() == impl_->thread_id())
    throw Error(ErrorCategory::invalid_argument,
                "DataPlane::connect with a timeout blocks: on the data plane's own thread (in a "
                "callback) use the form that takes a callback");
  auto handoff = std::make_shared<Handoff<DataChannelPtr>>();
  impl_->connect(peer, options, [handoff](DataChannelPtr channel, IoError error) {
    handoff->set(channel, std::move(error));
    if (channel && handoff->abandoned()) channel->close();  // the caller gave up on it
  });
  return handoff->take(timeout, "connecting to the data plane at " + peer.to_string() +
                                    " took longer than " + std::to_string(timeout.count()) + " ms");
}

DataPlaneStats DataPlane::stats() const {
  return {.channels_opened = impl_->opened_.load(std::memory_order_relaxed),
          .handshakes_refused = impl_->refused_.load(std::memory_order_relaxed),
          .channels_open = impl_->open_.load(std::memory_order_relaxed)};
}

}  // namespace atl::transport
