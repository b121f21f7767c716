#include "transport/ucx_stream.hpp"

#include <poll.h>
#include <unistd.h>

#include <cstring>

#include "transport/tcp_stream.hpp"

namespace atl::transport {

namespace {

using Clock = std::chrono::steady_clock;
// Keep progressing this long after the last event before sleeping on the event fd.
constexpr auto kSpin = std::chrono::microseconds(100);
// While idle, progress at least this often (UCX keepalives run inside progress).
constexpr auto kIdleTick = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::microseconds(2000);
constexpr auto kCloseDeadline = std::chrono::seconds(2);

std::string format_sockaddr(const sockaddr_storage& ss) {
  asio::ip::tcp::endpoint endpoint;
  if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
    std::memcpy(endpoint.data(), &ss,
                ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    return format_endpoint(endpoint);
  }
  return "unknown peer";
}

void on_endpoint_error(void* arg, ucp_ep_h, ucs_status_t status) {
  static_cast<UcxStream*>(arg)->on_peer_error(status);
}

}  // namespace

ErrorCategory category_of(ucs_status_t status) noexcept {
  if (status == UCS_ERR_CONNECTION_RESET || status == UCS_ERR_UNREACHABLE ||
      status == UCS_ERR_NOT_CONNECTED || status == UCS_ERR_REJECTED || status == UCS_ERR_IO_ERROR ||
      (status <= UCS_ERR_FIRST_LINK_FAILURE && status >= UCS_ERR_LAST_ENDPOINT_FAILURE))
    return ErrorCategory::disconnected;
  switch (status) {
    case UCS_ERR_TIMED_OUT:
      return ErrorCategory::timed_out;
    case UCS_ERR_CANCELED:
      return ErrorCategory::cancelled;
    case UCS_ERR_NO_MEMORY:
    case UCS_ERR_NO_RESOURCE:
    case UCS_ERR_EXCEEDS_LIMIT:
    case UCS_ERR_BUSY:
      return ErrorCategory::overloaded;
    case UCS_ERR_INVALID_PARAM:
    case UCS_ERR_INVALID_ADDR:
    case UCS_ERR_OUT_OF_RANGE:
    case UCS_ERR_NO_DEVICE:
    case UCS_ERR_BUFFER_TOO_SMALL:
    case UCS_ERR_MESSAGE_TRUNCATED:
      return ErrorCategory::invalid_argument;
    case UCS_ERR_UNSUPPORTED:
    case UCS_ERR_NOT_IMPLEMENTED:
      return ErrorCategory::unimplemented;
    default:
      return ErrorCategory::failed;
  }
}

Error error_from_ucs(ucs_status_t status, std::string_view what) {
  return Error(category_of(status), std::string(what) + ": " + ucs_status_string(status));
}

// ---- worker -----------------------------------------------------------------------------------

UcxWorker::UcxWorker(asio::io_context& io, OnStream on_stream)
    : io_(io), on_stream_(std::move(on_stream)), timer_(io) {}

std::unique_ptr<UcxWorker> UcxWorker::create(asio::io_context& io, const std::string& transports,
                                             const std::string& host, std::uint16_t port,
                                             OnStream on_stream, std::string& error) {
  std::unique_ptr<UcxWorker> w(new UcxWorker(io, std::move(on_stream)));
  auto failed = [&](const std::string& what, ucs_status_t status) {
    error = what + ": " + ucs_status_string(status);
    return nullptr;
  };
  ucp_config_t* config = nullptr;
  ucs_status_t status = ucp_config_read(nullptr, nullptr, &config);
  if (status != UCS_OK) return failed("reading UCX's configuration", status);
  if (!transports.empty()) status = ucp_config_modify(config, "TLS", transports.c_str());
  if (status != UCS_OK) {
    ucp_config_release(config);
    return failed("UCX transports '" + transports + "'", status);
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_STREAM | UCP_FEATURE_WAKEUP;
  status = ucp_init(&params, config, &w->context_);
  ucp_config_release(config);
  if (status != UCS_OK) return failed("ucp_init", status);

  ucp_worker_params_t worker_params{};
  worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  worker_params.thread_mode = UCS_THREAD_MODE_SINGLE;
  status = ucp_worker_create(w->context_, &worker_params, &w->worker_);
  if (status != UCS_OK) return failed("ucp_worker_create", status);
  int fd = -1;
  status = ucp_worker_get_efd(w->worker_, &fd);
  if (status != UCS_OK) return failed("ucp_worker_get_efd", status);
  // Asio owns (and closes) a duplicate; UCX keeps its own descriptor.
  w->efd_ = std::make_unique<asio::posix::stream_descriptor>(io, ::dup(fd));

  asio::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) {
    error = "UCX listens on numeric addresses only, not '" + host + "'";
    return nullptr;
  }
  asio::ip::tcp::endpoint endpoint(address, port);
  ucp_listener_params_t listener_params{};
  listener_params.field_mask =
      UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
  listener_params.sockaddr.addr = endpoint.data();
  listener_params.sockaddr.addrlen = static_cast<socklen_t>(endpoint.size());
  listener_params.conn_handler.cb = &UcxWorker::on_connection;
  listener_params.conn_handler.arg = w.get();
  status = ucp_listener_create(w->worker_, &listener_params, &w->listener_);
  if (status != UCS_OK) return failed("listening on " + format_endpoint(endpoint), status);
  ucp_listener_attr_t attr{};
  attr.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR;
  status = ucp_listener_query(w->listener_, &attr);
  if (status != UCS_OK) return failed("ucp_listener_query", status);
  const auto& ss = attr.sockaddr;
  w->port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(ss).sin6_port
                                            : reinterpret_cast<const sockaddr_in&>(ss).sin_port);
  return w;
}

UcxWorker::~UcxWorker() {
  efd_.reset();
  if (listener_) ucp_listener_destroy(listener_);
  if (worker_) ucp_worker_destroy(worker_);
  live_.clear();  // after the worker: UCX's callbacks may point at these until then
  if (context_) ucp_cleanup(context_);
}

void UcxWorker::on_connection(ucp_conn_request_h request, void* arg) {
  auto* self = static_cast<UcxWorker*>(arg);
  if (self->stopped_) {
    ucp_listener_reject(self->listener_, request);
    return;
  }
  std::string remote = "unknown peer";
  ucp_conn_request_attr_t attr{};
  attr.field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR;
  if (ucp_conn_request_query(request, &attr) == UCS_OK)
    remote = format_sockaddr(attr.client_address);
  auto stream = std::make_shared<UcxStream>(*self, nullptr, remote);
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER;
  params.conn_request = request;
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler.cb = on_endpoint_error;
  params.err_handler.arg = stream.get();
  ucp_ep_h ep = nullptr;
  if (ucp_ep_create(self->worker_, &params, &ep) != UCS_OK) return;  // UCX rejects it
  stream->attach(ep);
  self->live_.emplace(stream.get(), stream);
  asio::post(self->io_, [self, stream] { self->on_stream_(stream); });
}

void UcxWorker::connect(const asio::ip::tcp::endpoint& peer,
                        std::function<void(ByteStreamPtr, IoError)> done) {
  const std::string where = format_endpoint(peer);
  if (stopped_) {
    asio::post(io_, [done, where] {
      done(nullptr, Error(ErrorCategory::disconnected,
                          "connecting to " + where + " over UCX: the data plane is stopping"));
    });
    return;
  }
  auto stream = std::make_shared<UcxStream>(*this, nullptr, where);
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                      UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
  params.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
  params.sockaddr.addr = peer.data();
  params.sockaddr.addrlen = static_cast<socklen_t>(peer.size());
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler.cb = on_endpoint_error;
  params.err_handler.arg = stream.get();
  ucp_ep_h ep = nullptr;
  ucs_status_t status = ucp_ep_create(worker_, &params, &ep);
  if (status != UCS_OK) {
    asio::post(io_, [done, status, where] {
      done(nullptr, error_from_ucs(status, "connecting to " + where + " over UCX"));
    });
    return;
  }
  stream->attach(ep);
  live_.emplace(stream.get(), stream);
  asio::post(io_, [done, stream] { done(stream, std::nullopt); });
  kick();
}

void UcxWorker::start() {
  last_event_ = Clock::now();
  kick();
}

void UcxWorker::kick() {
  if (stopped_ || posted_) return;
  posted_ = true;
  asio::post(io_, [this] {
    posted_ = false;
    progress();
  });
}

void UcxWorker::op_started(bool send) noexcept {
  if (send) ++sends_outstanding_;
}

void UcxWorker::op_finished(bool send) noexcept {
  if (send && sends_outstanding_ > 0) --sends_outstanding_;
}

void UcxWorker::forget(UcxStream* stream) {
  live_.erase(stream);
}

void UcxWorker::progress() {
  if (stopped_) return;
  unsigned events = 0;
  for (int i = 0; i < 64; ++i) {
    const unsigned n = ucp_worker_progress(worker_);
    if (n == 0) break;
    events += n;
  }
  const auto now = Clock::now();
  if (events > 0) {
    last_event_ = now;
    backoff_ = std::chrono::microseconds(100);
  }
  if (now - last_event_ < kSpin) return kick();
  sleep();
}

void UcxWorker::sleep() {
  const ucs_status_t armed = ucp_worker_arm(worker_);
  if (armed == UCS_ERR_BUSY) return kick();
  if (armed == UCS_OK && !efd_waiting_) {
    // Asio watches descriptors edge-triggered: an event that arrived before this wait was queued
    // would never wake it, so look first.
    pollfd p{efd_->native_handle(), POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) return kick();
    efd_waiting_ = true;
    efd_->async_wait(asio::posix::descriptor_base::wait_read, [this](const asio::error_code& ec) {
      efd_waiting_ = false;
      if (!ec) progress();
    });
  }
  if (!timer_waiting_) {
    // Send completions do not wake the event fd (UCX 1.13, tcp): poll for them on a timer.
    std::chrono::microseconds wait = kIdleTick;
    if (sends_outstanding_ > 0 || armed != UCS_OK) {
      wait = backoff_;
      backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    }
    timer_waiting_ = true;
    timer_.expires_after(wait);
    timer_.async_wait([this](const asio::error_code& ec) {
      timer_waiting_ = false;
      if (!ec) progress();
    });
  }
}

void UcxWorker::shutdown() {
  if (stopped_) return;
  if (listener_) {
    ucp_listener_destroy(listener_);
    listener_ = nullptr;
  }
  std::vector<std::shared_ptr<UcxStream>> streams;
  for (auto& [ptr, stream] : live_) streams.push_back(stream);
  for (auto& stream : streams) stream->close();
  const auto deadline = Clock::now() + kCloseDeadline;
  while (!live_.empty() && Clock::now() < deadline) ucp_worker_progress(worker_);
  stopped_ = true;
  timer_.cancel();
  if (efd_) efd_->cancel();
}

// ---- streams ----------------------------------------------------------------------------------

struct UcxStream::Op {
  std::shared_ptr<UcxStream> stream;
  ReadHandler read;
  WriteHandler write;
  ucp_dt_iov_t iov[2]{};
  const char* what = "";
};

void UcxStream::attach(ucp_ep_h ep) {
  ep_ = ep;
}

Error UcxStream::error_for(ucs_status_t status, const char* what) const {
  // Requests cancelled because the endpoint failed report why it failed.
  if (peer_error_ != UCS_OK && (status == UCS_ERR_CANCELED || status == UCS_OK))
    status = peer_error_;
  return error_from_ucs(status, std::string(what) + " " + remote_ + " over UCX");
}

void UcxStream::read_some(std::span<std::byte> into, ReadHandler done) {
  read(into, false, std::move(done));
}

void UcxStream::read_exact(std::span<std::byte> into, ReadHandler done) {
  read(into, true, std::move(done));
}

void UcxStream::read(std::span<std::byte> into, bool all, ReadHandler done) {
  auto op = std::make_unique<Op>();
  op->stream = shared_from_this();
  op->read = std::move(done);
  op->what = "reading from";
  if (ep_ == nullptr) {
    asio::post(worker_.io(), [op = std::move(op)] {
      op->read(op->stream->error_for(UCS_ERR_NOT_CONNECTED, op->what), 0);
    });
    return;
  }
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  if (all) {
    param.op_attr_mask |= UCP_OP_ATTR_FIELD_FLAGS;
    param.flags = UCP_STREAM_RECV_FLAG_WAITALL;
  }
  param.cb.recv_stream = &UcxStream::on_recv;
  param.user_data = op.get();
  std::size_t length = 0;
  ucs_status_ptr_t request = ucp_stream_recv_nbx(ep_, into.data(), into.size(), &length, &param);
  if (request == nullptr || UCS_PTR_IS_ERR(request)) {
    const ucs_status_t status = UCS_PTR_STATUS(request);
    asio::post(worker_.io(), [op = std::move(op), status, length] {
      if (status != UCS_OK) return op->read(op->stream->error_for(status, op->what), 0);
      op->read(std::nullopt, length);
    });
    return;
  }
  op.release();  // owned by the request until on_recv
  worker_.op_started(false);
  worker_.kick();
}

void UcxStream::on_recv(void* request, ucs_status_t status, std::size_t length, void* user) {
  std::unique_ptr<Op> op(static_cast<Op*>(user));
  ucp_request_free(request);
  UcxWorker& worker = op->stream->worker_;
  worker.op_finished(false);
  asio::post(worker.io(), [op = std::move(op), status, length] {
    if (status != UCS_OK) return op->read(op->stream->error_for(status, op->what), 0);
    op->read(std::nullopt, length);
  });
}

void UcxStream::write(std::span<const std::byte> first, std::span<const std::byte> second,
                      WriteHandler done) {
  auto op = std::make_unique<Op>();
  op->stream = shared_from_this();
  op->write = std::move(done);
  op->what = "writing to";
  std::size_t count = 0;
  for (auto part : {first, second})
    if (!part.empty()) op->iov[count++] = {const_cast<std::byte*>(part.data()), part.size()};
  if (ep_ == nullptr || count == 0) {
    const ucs_status_t status = ep_ == nullptr ? UCS_ERR_NOT_CONNECTED : UCS_OK;
    asio::post(worker_.io(), [op = std::move(op), status] {
      if (status != UCS_OK) return op->write(op->stream->error_for(status, op->what));
      op->write(std::nullopt);
    });
    return;
  }
  ucp_request_param_t param{};
  param.op_attr_mask =
      UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_DATATYPE;
  param.datatype = ucp_dt_make_iov();
  param.cb.send = &UcxStream::on_send;
  param.user_data = op.get();
  ucs_status_ptr_t request = ucp_stream_send_nbx(ep_, op->iov, count, &param);
  if (request == nullptr || UCS_PTR_IS_ERR(request)) {
    const ucs_status_t status = UCS_PTR_STATUS(request);
    asio::post(worker_.io(), [op = std::move(op), status] {
      if (status != UCS_OK) return op->write(op->stream->error_for(status, op->what));
      op->write(std::nullopt);
    });
    return;
  }
  op.release();  // owned by the request until on_send
  worker_.op_started(true);
  worker_.kick();
}

void UcxStream::on_send(void* request, ucs_status_t status, void* user) {
  std::unique_ptr<Op> op(static_cast<Op*>(user));
  ucp_request_free(request);
  UcxWorker& worker = op->stream->worker_;
  worker.op_finished(true);
  asio::post(worker.io(), [op = std::move(op), status] {
    if (status != UCS_OK) return op->write(op->stream->error_for(status, op->what));
    op->write(std::nullopt);
  });
}

void UcxStream::close() {
  if (ep_ == nullptr) return;
  ucp_ep_h ep = ep_;
  ep_ = nullptr;
  ucp_request_param_t param{};
  param.op_attr_mask =
      UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  param.flags = UCP_EP_CLOSE_FLAG_FORCE;
  param.cb.send = &UcxStream::on_closed;
  param.user_data = this;
  ucs_status_ptr_t request = ucp_ep_close_nbx(ep, &param);
  if (request == nullptr || UCS_PTR_IS_ERR(request)) {
    auto self = shared_from_this();  // forget() may drop the worker's reference
    worker_.forget(this);
    return;
  }
  worker_.kick();
}

void UcxStream::on_closed(void* request, ucs_status_t, void* user) {
  ucp_request_free(request);
  auto* stream = static_cast<UcxStream*>(user);
  auto keep = stream->shared_from_this();
  stream->worker_.forget(stream);
}

void UcxStream::on_peer_error(ucs_status_t status) {
  if (peer_error_ == UCS_OK) peer_error_ = status;
  // Close outside UCX's callback; requests still pending fail with the endpoint.
  asio::post(worker_.io(), [self = shared_from_this()] { self->close(); });
}

}  // namespace atl::transport
