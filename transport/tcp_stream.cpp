#include "transport/tcp_stream.hpp"

#include <array>
#include <limits>

#include "transport/data_errors.hpp"

namespace atl::transport {

namespace {

// Asio's transfer_all moves at most 64 KiB per system call; a chunk is a megabyte or more, so let
// each read and write move as much as the kernel will take (far fewer system calls and epoll
// wake-ups per chunk).
std::size_t whole_buffer(const asio::error_code& ec, std::size_t) {
  return ec ? 0 : std::numeric_limits<std::size_t>::max();
}

}  // namespace

std::string format_endpoint(const asio::ip::tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

TcpStream::TcpStream(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {
  asio::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  auto endpoint = socket_.remote_endpoint(ec);
  remote_ = ec ? std::string("unknown peer") : format_endpoint(endpoint);
}

void TcpStream::read_some(std::span<std::byte> into, ReadHandler done) {
  socket_.async_read_some(asio::buffer(into.data(), into.size()),
                          [self = shared_from_this(), done = std::move(done)](
                              const asio::error_code& ec, std::size_t n) {
                            if (ec)
                              return done(error_from_asio(ec, "reading from " + self->remote_), 0);
                            done(std::nullopt, n);
                          });
}

void TcpStream::read_exact(std::span<std::byte> into, ReadHandler done) {
  asio::async_read(socket_, asio::buffer(into.data(), into.size()), whole_buffer,
                   [self = shared_from_this(), done = std::move(done)](const asio::error_code& ec,
                                                                       std::size_t n) {
                     if (ec) return done(error_from_asio(ec, "reading from " + self->remote_), n);
                     done(std::nullopt, n);
                   });
}

void TcpStream::write(std::span<const std::byte> first, std::span<const std::byte> second,
                      WriteHandler done) {
  std::array<asio::const_buffer, 2> buffers{asio::buffer(first.data(), first.size()),
                                            asio::buffer(second.data(), second.size())};
  asio::async_write(
      socket_, buffers, whole_buffer,
      [self = shared_from_this(), done = std::move(done)](const asio::error_code& ec, std::size_t) {
        if (ec) return done(error_from_asio(ec, "writing to " + self->remote_));
        done(std::nullopt);
      });
}

void TcpStream::close() {
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

std::shared_ptr<TcpAcceptor> TcpAcceptor::start(asio::io_context& io,
                                                const asio::ip::tcp::endpoint& endpoint,
                                                OnStream on_stream) {
  std::shared_ptr<TcpAcceptor> self(new TcpAcceptor(io, endpoint, std::move(on_stream)));
  asio::post(io, [self] { self->accept_next(); });
  return self;
}

TcpAcceptor::TcpAcceptor(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint,
                         OnStream on_stream)
    : acceptor_(io), retry_timer_(io), on_stream_(std::move(on_stream)) {
  asio::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw Error(ErrorCategory::failed, "the data plane cannot listen on " +
                                           format_endpoint(endpoint) + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
}

void TcpAcceptor::accept_next() {
  if (closed_) return;
  acceptor_.async_accept(
      [self = shared_from_this()](const asio::error_code& ec, asio::ip::tcp::socket socket) {
        if (self->closed_ || ec == asio::error::operation_aborted) return;
        if (ec) {
          // Out of descriptors and the like: back off instead of spinning on the error.
          self->retry_timer_.expires_after(std::chrono::milliseconds(100));
          self->retry_timer_.async_wait([self](const asio::error_code& e) {
            if (!e) self->accept_next();
          });
          return;
        }
        self->on_stream_(std::make_shared<TcpStream>(std::move(socket)));
        self->accept_next();
      });
}

void TcpAcceptor::close() {
  closed_ = true;
  asio::error_code ignored;
  acceptor_.close(ignored);
  retry_timer_.cancel();
}

void tcp_connect(asio::io_context& io, const std::string& host, std::uint16_t port,
                 std::function<void(ByteStreamPtr, IoError)> done) {
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(io);
  auto socket = std::make_shared<asio::ip::tcp::socket>(io);
  std::string where = host + ":" + std::to_string(port);
  resolver->async_resolve(
      host, std::to_string(port),
      [resolver, socket, where, done = std::move(done)](
          const asio::error_code& ec, asio::ip::tcp::resolver::results_type results) mutable {
        if (ec) return done(nullptr, error_from_asio(ec, "resolving " + where));
        asio::async_connect(*socket, results,
                            [socket, where, done = std::move(done)](
                                const asio::error_code& e, const asio::ip::tcp::endpoint&) {
                              if (e)
                                return done(nullptr, error_from_asio(e, "connecting to " + where));
                              done(std::make_shared<TcpStream>(std::move(*socket)), std::nullopt);
                            });
      });
}

}  // namespace atl::transport
