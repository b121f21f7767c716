// Authenticated control connections on loopback: handshake, ping, wrong token, version mismatch,
// refused connections, and hostile peers (malformed, oversized, silent) that must only lose their
// own connection.
#include "transport/connection.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/time.h>
#include "atoll/errors.hpp"

#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using atl::transport::ConnectionPtr;
using atl::transport::DialOptions;
using atl::transport::Handlers;
using atl::transport::Listener;
using atl::transport::ListenerOptions;

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return pred();
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    token_ = atl::transport::generate_token();
    start_listener({.token = token_, .handshake_timeout = 300ms});
    io_thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    asio::post(io_, [this] { listener_.reset(); });
    guard_.reset();
    io_.stop();
    io_thread_.join();
  }

  void start_listener(ListenerOptions options) {
    Handlers handlers;
    handlers.on_closed = [this](const ConnectionPtr&, const std::string& reason) {
      std::lock_guard lock(mu_);
      server_closed_.push_back(reason);
    };
    listener_ = std::make_unique<Listener>(
        io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), options, handlers,
        [this](ConnectionPtr c) {
          std::lock_guard lock(mu_);
          server_side_.push_back(std::move(c));
        });
  }

  std::pair<ConnectionPtr, std::string> dial(DialOptions options, std::uint16_t port = 0) {
    std::promise<std::pair<ConnectionPtr, std::string>> done;
    auto result = done.get_future();
    atl::transport::dial(io_, "127.0.0.1", port != 0 ? port : listener_->port(), std::move(options),
                         {}, [&done](ConnectionPtr c, std::string error) {
                           done.set_value({std::move(c), std::move(error)});
                         });
    if (result.wait_for(10s) != std::future_status::ready) return {nullptr, "dial hung"};
    return result.get();
  }

  DialOptions node(std::string name = "node-1") {
    return {.token = token_, .role = atl::wire::Role::NODE, .name = std::move(name)};
  }

  std::size_t server_connections() {
    std::lock_guard lock(mu_);
    return server_side_.size();
  }

  // A plain TCP socket that speaks no protocol; reads time out after 5 s.
  asio::ip::tcp::socket raw_socket() {
    asio::ip::tcp::socket s(raw_io_);
    s.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
    timeval tv{5, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
  }

  // True when the server closed the raw socket (reads reach end of stream, not the timeout).
  static bool closed_by_server(asio::ip::tcp::socket& s) {
    std::array<char, 4096> buf;
    for (;;) {
      asio::error_code ec;
      s.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::eof || ec == asio::error::connection_reset) return true;
      if (ec) return false;  // timed out
    }
  }

  bool still_answers(const ConnectionPtr& c) {
    auto before = c->last_rtt();
    c->ping();
    return eventually([&] { return c->last_rtt() && c->last_rtt() != before; });
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  asio::io_context raw_io_;
  std::thread io_thread_;
  std::string token_;
  std::unique_ptr<Listener> listener_;
  std::mutex mu_;
  std::vector<ConnectionPtr> server_side_;
  std::vector<std::string> server_closed_;
};

TEST_F(ConnectionTest, handshake_establishes_both_sides_and_ping_measures_rtt) {
  auto [conn, error] = dial(node("gpu-box-7"));
  ASSERT_TRUE(conn) << error;
  EXPECT_TRUE(conn->established());
  ASSERT_TRUE(eventually([&] { return server_connections() == 1; }));
  {
    std::lock_guard lock(mu_);
    EXPECT_EQ(server_side_[0]->peer_name(), "gpu-box-7");
    EXPECT_EQ(server_side_[0]->peer_role(), atl::wire::Role::NODE);
    EXPECT_EQ(server_side_[0]->session_id(), conn->session_id());
  }
  EXPECT_TRUE(still_answers(conn));
  EXPECT_GT(conn->last_rtt()->count(), 0);
}

TEST_F(ConnectionTest, wrong_token_is_refused_with_a_clear_error) {
  DialOptions options = node();
  options.token = atl::transport::generate_token();
  auto [conn, error] = dial(options);
  EXPECT_FALSE(conn);
  EXPECT_NE(error.find("authentication failed"), std::string::npos) << error;
  EXPECT_EQ(server_connections(), 0u);
}

TEST_F(ConnectionTest, version_mismatch_names_both_versions) {
  DialOptions options = node();
  options.protocol_version = atl::wire::PROTOCOL_VERSION + 1;
  auto [conn, error] = dial(options);
  EXPECT_FALSE(conn);
  EXPECT_NE(error.find("version"), std::string::npos) << error;
  EXPECT_NE(error.find(std::to_string(atl::wire::PROTOCOL_VERSION)), std::string::npos) << error;
  EXPECT_NE(error.find(std::to_string(atl::wire::PROTOCOL_VERSION + 1)), std::string::npos)
      << error;
}

TEST_F(ConnectionTest, refused_connection_says_so) {
  std::uint16_t dead_port;
  {
    asio::ip::tcp::acceptor a(raw_io_, {asio::ip::make_address("127.0.0.1"), 0});
    dead_port = a.local_endpoint().port();
  }
  auto [conn, error] = dial(node(), dead_port);
  EXPECT_FALSE(conn);
  EXPECT_NE(error.find("cannot connect to 127.0.0.1:" + std::to_string(dead_port)),
            std::string::npos)
      << error;
}

TEST_F(ConnectionTest, malformed_frame_closes_only_that_connection) {
  auto [good, error] = dial(node("good"));
  ASSERT_TRUE(good) << error;
  auto bad = raw_socket();
  std::array<unsigned char, 12> frame{8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  asio::write(bad, asio::buffer(frame));
  EXPECT_TRUE(closed_by_server(bad));
  EXPECT_TRUE(still_answers(good));
}

TEST_F(ConnectionTest, oversized_frame_closes_only_that_connection) {
  auto [good, error] = dial(node("good"));
  ASSERT_TRUE(good) << error;
  auto bad = raw_socket();
  std::array<unsigned char, 4> header{0, 0, 0, 0x40};  // 1 GiB announced
  asio::write(bad, asio::buffer(header));
  EXPECT_TRUE(closed_by_server(bad));
  EXPECT_TRUE(still_answers(good));
}

TEST_F(ConnectionTest, an_unauthenticated_peer_cannot_send_large_frames) {
  auto bad = raw_socket();
  std::array<unsigned char, 4> header{0, 0x40, 0, 0};  // 16 KiB: fine later, not in a handshake
  asio::write(bad, asio::buffer(header));
  EXPECT_TRUE(closed_by_server(bad));
}

TEST_F(ConnectionTest, silent_peer_is_dropped_after_the_handshake_timeout) {
  auto silent = raw_socket();
  EXPECT_TRUE(closed_by_server(silent));  // the listener's handshake timeout is 300 ms
  EXPECT_EQ(server_connections(), 0u);
}

TEST_F(ConnectionTest, closing_one_side_tells_the_other) {
  auto [conn, error] = dial(node());
  ASSERT_TRUE(conn) << error;
  ASSERT_TRUE(eventually([&] { return server_connections() == 1; }));
  conn->close("driver leaving");
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(mu_);
    return server_closed_.size() == 1;
  }));
  EXPECT_TRUE(eventually([&] { return conn->closed(); }));
}

TEST_F(ConnectionTest, many_clients_at_once) {
  std::vector<ConnectionPtr> clients;
  for (int i = 0; i < 8; ++i) {
    auto [c, error] = dial(node("n" + std::to_string(i)));
    ASSERT_TRUE(c) << error;
    clients.push_back(c);
  }
  for (auto& c : clients) EXPECT_TRUE(still_answers(c));
  EXPECT_TRUE(eventually([&] { return server_connections() == 8; }));
}

TEST(ListenerTest, port_in_use_and_short_token_are_clear_errors) {
  asio::io_context io;
  Listener first(io, {asio::ip::make_address("127.0.0.1"), 0},
                 {.token = atl::transport::generate_token()}, {});
  try {
    Listener second(io, {asio::ip::make_address("127.0.0.1"), first.port()},
                    {.token = atl::transport::generate_token()}, {});
    FAIL() << "expected an error";
  } catch (const atl::Error& e) {
    EXPECT_EQ(e.category(), atl::ErrorCategory::failed);
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:"), std::string::npos)
        << e.what();
  }
  try {
    Listener weak(io, {asio::ip::make_address("127.0.0.1"), 0}, {.token = "short"}, {});
    FAIL() << "expected an error";
  } catch (const atl::Error& e) {
    EXPECT_EQ(e.category(), atl::ErrorCategory::invalid_argument);
  }
}

}  // namespace

namespace {

TEST(ListenerLimitsTest, peers_beyond_the_pending_handshake_cap_are_dropped_at_once) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::string token = atl::transport::generate_token();
  // A long handshake timeout, so only the cap can close a silent peer within the test's wait.
  Listener head(io, {asio::ip::make_address("127.0.0.1"), 0},
                {.token = token, .handshake_timeout = 30s, .max_pending_handshakes = 2}, {});
  std::thread io_thread([&] { io.run(); });
  asio::io_context raw;
  auto silent = [&] {
    asio::ip::tcp::socket s(raw);
    s.connect({asio::ip::make_address("127.0.0.1"), head.port()});
    timeval tv{5, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
  };
  auto first = silent();
  auto second = silent();
  std::this_thread::sleep_for(100ms);  // both accepted and counted
  auto third = silent();
  char byte;
  asio::error_code ec;
  third.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  first.close();  // frees a slot: a real client gets in
  std::this_thread::sleep_for(100ms);
  std::promise<std::string> dialled;
  atl::transport::dial(io, "127.0.0.1", head.port(), {.token = token, .name = "real"}, {},
                       [&](ConnectionPtr c, std::string error) {
                         dialled.set_value(c ? "" : error);
                         if (c) c->close("done");
                       });
  EXPECT_EQ(dialled.get_future().get(), "");
  asio::post(io, [&] { head.close(); });
  work.reset();
  io.stop();
  io_thread.join();
}

}  // namespace
