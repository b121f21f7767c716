// The data plane's UCX backend (built with ATOLL_WITH_UCX): ByteStreams over ucp endpoints with
// the stream API, a ucp listener, and the worker's progress driven from the data plane's Asio
// thread.
//
// One UCX context and one worker (UCS_THREAD_MODE_SINGLE) per data plane; every ucp call happens
// on the data thread. Endpoints use UCP_ERR_HANDLING_MODE_PEER, so a dead peer fails its
// endpoint's requests instead of hanging them. Completions are posted to the io_context, never run
// inside ucp_worker_progress.
//
// Progress: while events keep arriving (and for kSpin after the last one) the worker is
// progressed from posted handlers, so a transfer never waits for a wake-up. Then it is armed
// (ucp_worker_arm; UCS_ERR_BUSY means progress again) and the thread sleeps on the worker's event
// fd through asio::posix::stream_descriptor::async_wait. UCX 1.13's tcp transport does not signal
// send completions on that fd, so while sends are outstanding a timer (100 µs doubling to 2 ms)
// also re-checks.
//
// Errors from ucs_status_t go through one adapter, error_from_ucs().
//
// Thread-safety: create() on any thread before the data thread runs; everything else on it.
#pragma once

#include <ucp/api/ucp.h>

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "transport/byte_stream.hpp"

namespace atl::transport {

ErrorCategory category_of(ucs_status_t status) noexcept;
// "<what>: <UCX's description of status>", with category_of(status).
Error error_from_ucs(ucs_status_t status, std::string_view what);

class UcxStream;

class UcxWorker {
 public:
  using OnStream = std::function<void(ByteStreamPtr)>;

  // Creates the context and worker and listens on host:port (0: any). On failure returns null
  // and says why in `error`: the caller falls back to TCP.
  static std::unique_ptr<UcxWorker> create(asio::io_context& io, const std::string& transports,
                                           const std::string& host, std::uint16_t port,
                                           OnStream on_stream, std::string& error);
  ~UcxWorker();
  UcxWorker(const UcxWorker&) = delete;
  UcxWorker& operator=(const UcxWorker&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  // Starts the progress loop (data thread).
  void start();
  // Creates an endpoint to `peer`. UCX connects in the background: a failure to connect surfaces
  // as the first operation's error.
  void connect(const asio::ip::tcp::endpoint& peer,
               std::function<void(ByteStreamPtr, IoError)> done);
  // Closes the listener and every endpoint and progresses until UCX has released them (bounded);
  // later operations fail (data thread).
  void shutdown();

  // Internal, for UcxStream.
  void kick();
  void op_started(bool send) noexcept;
  void op_finished(bool send) noexcept;
  asio::io_context& io() noexcept { return io_; }
  ucp_worker_h handle() noexcept { return worker_; }
  void forget(UcxStream* stream);

 private:
  UcxWorker(asio::io_context& io, OnStream on_stream);
  static void on_connection(ucp_conn_request_h request, void* arg);
  void progress();
  void sleep();

  asio::io_context& io_;
  OnStream on_stream_;
  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  ucp_listener_h listener_ = nullptr;
  std::uint16_t port_ = 0;
  std::unique_ptr<asio::posix::stream_descriptor> efd_;
  asio::steady_timer timer_;
  bool posted_ = false, efd_waiting_ = false, timer_waiting_ = false, stopped_ = false;
  std::chrono::steady_clock::time_point last_event_;
  std::chrono::microseconds backoff_{100};
  std::size_t sends_outstanding_ = 0;
  // Streams whose endpoints are open or closing: UCX's callbacks point at them.
  std::unordered_map<UcxStream*, std::shared_ptr<UcxStream>> live_;
};

class UcxStream final : public ByteStream, public std::enable_shared_from_this<UcxStream> {
 public:
  UcxStream(UcxWorker& worker, ucp_ep_h ep, std::string remote)
      : worker_(worker), ep_(ep), remote_(std::move(remote)) {}

  void read_some(std::span<std::byte> into, ReadHandler done) override;
  void read_exact(std::span<std::byte> into, ReadHandler done) override;
  void write(std::span<const std::byte> first, std::span<const std::byte> second,
             WriteHandler done) override;
  void close() override;
  DataBackend backend() const noexcept override { return DataBackend::ucx; }
  std::string remote() const override { return remote_; }

  // Set once UCX created the endpoint (its error handler needs the stream first).
  void attach(ucp_ep_h ep);
  // From UCX's endpoint error handler: remembers why, and closes.
  void on_peer_error(ucs_status_t status);

 private:
  struct Op;
  void read(std::span<std::byte> into, bool all, ReadHandler done);
  Error error_for(ucs_status_t status, const char* what) const;
  static void on_recv(void* request, ucs_status_t status, std::size_t length, void* user);
  static void on_send(void* request, ucs_status_t status, void* user);
  static void on_closed(void* request, ucs_status_t status, void* user);

  UcxWorker& worker_;
  ucp_ep_h ep_;
  std::string remote_;
  ucs_status_t peer_error_ = UCS_OK;
};

}  // namespace atl::transport
