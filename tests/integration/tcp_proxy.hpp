// A TCP proxy on loopback between node agents and their head, for tests that do to a control
// connection what a network does: cut it without either end closing it, or stall it.
//
// Thread-safety: every method may be called from any thread; each returns once the proxy's own
// thread has done what it asks.
#pragma once

#include <array>
#include <asio.hpp>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <vector>

namespace cluster_test {

class TcpProxy {
 public:
  explicit TcpProxy(std::uint16_t target_port)
      : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}), target_port_(target_port) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TcpProxy() {
    on_io([this] {
      acceptor_.close();
      close_all();
    });
    io_.stop();
    thread_.join();
  }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  // Closes every connection through it; later ones are accepted (a node dialling again).
  void cut() {
    on_io([this] { close_all(); });
  }

  // While held, nothing the head sends reaches the node (it stays queued here); the node's own
  // messages (heartbeats) still reach the head.
  void hold_from_head(bool hold) {
    on_io([this, hold] {
      held_ = hold;
      if (hold) return;
      for (auto& weak : links_)
        if (auto link = weak.lock(); link && link->parked) {
          link->parked = false;
          forward(link, kFromHead);
        }
    });
  }

 private:
  static constexpr int kToHead = 0, kFromHead = 1;
  struct Link {
    explicit Link(asio::io_context& io) : node(io), head(io) {}
    asio::ip::tcp::socket node, head;
    std::array<std::array<char, 64 * 1024>, 2> buffer;
    std::array<std::size_t, 2> pending{};
    bool parked = false;  // holding bytes from the head until released
  };
  using LinkPtr = std::shared_ptr<Link>;

  void on_io(std::function<void()> f) {
    std::promise<void> done;
    asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

  void accept() {
    auto link = std::make_shared<Link>(io_);
    acceptor_.async_accept(link->node, [this, link](const asio::error_code& ec) {
      if (ec) return;  // closed
      accept();
      asio::error_code connect_ec;
      link->head.connect({asio::ip::make_address("127.0.0.1"), target_port_}, connect_ec);
      if (connect_ec) return close(link);
      links_.push_back(link);
      pump(link, kToHead);
      pump(link, kFromHead);
    });
  }

  void pump(const LinkPtr& link, int dir) {
    auto& from = dir == kToHead ? link->node : link->head;
    from.async_read_some(asio::buffer(link->buffer[dir]),
                         [this, link, dir](const asio::error_code& ec, std::size_t n) {
                           if (ec) return close(link);
                           link->pending[dir] = n;
                           forward(link, dir);
                         });
  }

  void forward(const LinkPtr& link, int dir) {
    if (dir == kFromHead && held_) {
      link->parked = true;
      return;
    }
    auto& to = dir == kToHead ? link->head : link->node;
    asio::async_write(to, asio::buffer(link->buffer[dir], link->pending[dir]),
                      [this, link, dir](const asio::error_code& ec, std::size_t) {
                        if (ec) return close(link);
                        pump(link, dir);
                      });
  }

  static void close(const LinkPtr& link) {
    asio::error_code ignored;
    link->node.close(ignored);
    link->head.close(ignored);
  }

  void close_all() {
    for (auto& weak : links_)
      if (auto link = weak.lock()) close(link);
    links_.clear();
  }

  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::uint16_t target_port_;
  std::vector<std::weak_ptr<Link>> links_;  // proxy thread only
  bool held_ = false;                       // proxy thread only
  std::thread thread_;
};

}  // namespace cluster_test
