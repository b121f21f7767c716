// The data plane's TCP backend: ByteStreams over Asio TCP sockets (TCP_NODELAY, so credits and
// acknowledgements are never held back by Nagle's algorithm), an acceptor and a dialler.
//
// Asio rather than blocking sockets on threads of their own: a node talks to many peers over
// several streams each, and one thread multiplexing them all (with timers for handshakes and
// stalls) is what the control plane already does. The bytes themselves cost the kernel's copy,
// which one thread sustains at loopback speed (see docs/benchmarks.md).
//
// Thread-safety: everything runs on the io_context's (single) thread, except construction.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <string>

#include "transport/byte_stream.hpp"

namespace atl::transport {

class TcpStream final : public ByteStream, public std::enable_shared_from_this<TcpStream> {
 public:
  explicit TcpStream(asio::ip::tcp::socket socket);

  void read_some(std::span<std::byte> into, ReadHandler done) override;
  void read_exact(std::span<std::byte> into, ReadHandler done) override;
  void write(std::span<const std::byte> first, std::span<const std::byte> second,
             WriteHandler done) override;
  void close() override;
  DataBackend backend() const noexcept override { return DataBackend::tcp; }
  std::string remote() const override { return remote_; }

 private:
  asio::ip::tcp::socket socket_;
  std::string remote_;
};

class TcpAcceptor : public std::enable_shared_from_this<TcpAcceptor> {
 public:
  using OnStream = std::function<void(ByteStreamPtr)>;
  // Raises Error(failed) naming the address when it cannot listen there.
  static std::shared_ptr<TcpAcceptor> start(asio::io_context& io,
                                            const asio::ip::tcp::endpoint& endpoint,
                                            OnStream on_stream);
  std::uint16_t port() const noexcept { return port_; }
  void close();

 private:
  TcpAcceptor(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint, OnStream on_stream);
  void accept_next();

  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;  // backs off after accept errors (out of descriptors)
  OnStream on_stream_;
  std::uint16_t port_ = 0;
  bool closed_ = false;
};

// Resolves and connects; `done` runs once on the io thread.
void tcp_connect(asio::io_context& io, const std::string& host, std::uint16_t port,
                 std::function<void(ByteStreamPtr, IoError)> done);

// "host:port", IPv6 in brackets.
std::string format_endpoint(const asio::ip::tcp::endpoint& endpoint);

}  // namespace atl::transport
