// The two clients of the head's control service: the node agent process (register, then
// heartbeat; reconnect as a new node after losing the head) and the status query used by
// `atoll status`.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/membership.hpp"
#include "runtime/node_actors.hpp"
#include "runtime/node_modules.hpp"
#include "runtime/node_tasks.hpp"
#include "transport/connection.hpp"

namespace atl::runtime {

struct NodeAgentOptions {
  std::string host;
  std::uint16_t port = 7100;
  std::string token;
  std::string name;
  NodeInfo info;
  std::chrono::milliseconds max_backoff{5000};
  // Where fetched job modules are kept, and the executable started as worker processes.
  std::filesystem::path module_dir;
  std::string worker_executable;
  std::string python_executable;  // for Python workers (absolute path); empty: no Python code
  // The data plane (objects between nodes): the address it listens on and advertises, and how
  // many bytes of objects the node holds at most (0: 30% of its memory resource, at least 64 MiB).
  std::string data_host = "127.0.0.1";
  std::string data_advertise_host;
  std::uint64_t object_store_bytes = 0;
};

class NodeAgentProcess {
 public:
  explicit NodeAgentProcess(NodeAgentOptions options);
  ~NodeAgentProcess();

  // Connects, registers and heartbeats until stop(). Returns "" after stop(), or the reason the
  // first connection or registration failed (wrong address, wrong token, refused). After a
  // registration succeeded, a lost head is retried with backoff and the node registers anew.
  // `on_registered` runs after each registration with the node's id.
  std::string run(std::function<void(std::uint64_t)> on_registered = {});
  void stop();
  // Objects this node holds for others now (0 for a node that runs no work).
  std::size_t objects_held() const { return objects_ ? objects_->objects_held() : 0; }

 private:
  void connect();
  void on_dialled(transport::ConnectionPtr conn, const std::string& error);
  void on_message(const transport::Decoded<wire::Envelope>& message);
  // Tasks, actors and modules; false when the message is none of these.
  bool dispatch_work(const transport::Decoded<wire::Envelope>& message);
  // Pushes, frees and failed fetches of objects; false when the message is none of these.
  bool dispatch_objects(const transport::Decoded<wire::Envelope>& message);
  void on_lost();
  void beat();

  NodeAgentOptions options_;
  // Set when module_dir and worker_executable are (a node that runs work).
  std::unique_ptr<NodeModules> modules_;
  std::unique_ptr<ObjectTransfer> objects_;
  std::unique_ptr<NodeTaskRunner> runner_;
  std::unique_ptr<NodeActors> actors_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  asio::steady_timer heartbeat_timer_;
  asio::steady_timer retry_timer_;
  transport::ConnectionPtr conn_;
  std::function<void(std::uint64_t)> on_registered_;
  std::chrono::milliseconds interval_{1000};
  std::chrono::milliseconds backoff_{100};
  std::uint64_t sequence_ = 0;
  bool ever_registered_ = false;
  bool stopping_ = false;
  std::string fatal_;
};

// The head's view of the cluster. Raises atl::Error (disconnected) with the reason when the head
// cannot be reached or authenticated, (timed_out) when it does not answer in time.
std::vector<NodeView> fetch_status(const std::string& host, std::uint16_t port,
                                   const std::string& token,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace atl::runtime
