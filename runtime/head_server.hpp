// The head process's control service: accepts authenticated connections, keeps the membership
// table from node registrations and heartbeats, marks nodes dead (closing their connection, so a
// node that comes back registers as a new node), and answers status requests.
//
// Thread-safety: construct, then `run` on one thread; `stop` and `nodes` from any thread.
#pragma once

#include <asio.hpp>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/clock.hpp"
#include "runtime/head_tasks.hpp"
#include "runtime/membership.hpp"
#include "transport/connection.hpp"

namespace atl::runtime {

struct HeadOptions {
  std::string bind = "0.0.0.0";
  std::uint16_t port = 7100;  // 0: any free port
  std::string token;
  FailureDetectorOptions detector;
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds infeasible_timeout{30000};
  // Bytes of objects the head may hold while relaying them (readers that cannot dial a holder).
  std::uint64_t relay_bytes = 1ull << 30;
};

class HeadServer {
 public:
  // Raises atl::Error when the port cannot be bound or the token is too short.
  explicit HeadServer(HeadOptions options);
  ~HeadServer();

  std::uint16_t port() const { return listener_->port(); }
  void run();
  void stop();
  std::vector<NodeView> nodes() const { return membership_.snapshot(); }
  // Task submissions and actor calls ignored because their driver had sent them already.
  std::uint64_t duplicates_ignored() const { return tasks_.duplicates_ignored(); }
  // Object reads served through the head's relay rather than node to node.
  std::uint64_t objects_relayed() const { return tasks_.objects_relayed(); }

 private:
  void on_message(const transport::ConnectionPtr& conn,
                  const transport::Decoded<wire::Envelope>& message);
  void on_closed(const transport::ConnectionPtr& conn);
  // The node id registered on this connection, or 0.
  std::uint64_t node_of(const transport::ConnectionPtr& conn);
  void sweep_soon();

  HeadOptions options_;
  SteadyClock clock_;
  // Declared first among what holds connections: destroyed last, after every socket and strand.
  asio::io_context io_;
  Membership membership_;
  ClusterTasks tasks_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<transport::Listener> listener_;
  asio::steady_timer sweep_timer_;
  asio::steady_timer stop_timer_;
  bool stopping_ = false;  // io thread only
  std::mutex mu_;          // guards the maps below (handlers run on connection strands)
  std::unordered_map<transport::Connection*, transport::ConnectionPtr> connections_;
  std::unordered_map<transport::Connection*, std::pair<transport::ConnectionPtr, std::uint64_t>>
      nodes_by_connection_;
};

}  // namespace atl::runtime
