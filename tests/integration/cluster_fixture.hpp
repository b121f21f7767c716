// A test cluster in one process: a head and node agents on loopback, each agent starting real
// worker processes (the `atoll` executable), and drivers connected with atl::init({.address}).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <thread>

#include "atoll/atoll.hpp"
#include "runtime/cluster_client.hpp"
#include "runtime/head_server.hpp"
#include "tests/cluster/job_module.hpp"
#include "tests/integration/tcp_proxy.hpp"
#include "transport/auth.hpp"

namespace cluster_test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ClusterFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("atoll-cluster-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    token_ = atl::transport::generate_token();
    head_ = std::make_unique<atl::runtime::HeadServer>(
        atl::runtime::HeadOptions{.bind = "127.0.0.1",
                                  .port = 0,
                                  .token = token_,
                                  .heartbeat_interval = 100ms,
                                  .infeasible_timeout = 300ms});
    head_thread_ = std::thread([this] { head_->run(); });
  }

  void TearDown() override {
    for (auto& [name, node] : nodes_) node.agent->stop();
    for (auto& [name, node] : nodes_) node.thread.join();
    head_->stop();
    head_thread_.join();
    fs::remove_all(dir_);
  }

  // `data_advertise_host`: the host the node's data plane advertises (it listens on 127.0.0.1);
  // "127.0.0.2" makes it undiallable, as a node behind NAT is.
  void start_node(const std::string& name, const std::string& island, double cpus = 2,
                  std::uint64_t object_store_bytes = 0,
                  const std::string& data_advertise_host = "") {
    launch_node(name, island,
                {.cpus = cpus,
                 .object_store_bytes = object_store_bytes,
                 .data_advertise_host = data_advertise_host});
  }

  struct NodeSetup {
    double cpus = 2;
    std::uint64_t object_store_bytes = 0;
    std::string data_host = "127.0.0.1";
    std::string data_advertise_host;
    // Its control connection goes through a TcpProxy (proxy(name)), which a test can cut or
    // stall; its data plane does not.
    bool behind_proxy = false;
  };

  void launch_node(const std::string& name, const std::string& island, const NodeSetup& setup) {
    std::uint16_t port = head_->port();
    if (setup.behind_proxy) {
      auto& proxy = proxies_[name];
      proxy = std::make_unique<TcpProxy>(head_->port());
      port = proxy->port();
    }
    atl::runtime::NodeInfo info;
    info.island = island;
    info.resources = {{"CPU", setup.cpus}, {"memory", 1e9}};
    info.labels = {{"island", island}};
    auto& node = nodes_[name];
    node.agent = std::make_unique<atl::runtime::NodeAgentProcess>(
        atl::runtime::NodeAgentOptions{.host = "127.0.0.1",
                                       .port = port,
                                       .token = token_,
                                       .name = name,
                                       .info = info,
                                       .module_dir = dir_ / ("modules-" + name),
                                       .worker_executable = ATOLL_CLI,
                                       .data_host = setup.data_host,
                                       .data_advertise_host = setup.data_advertise_host,
                                       .object_store_bytes = setup.object_store_bytes});
    auto* agent = node.agent.get();
    node.thread = std::thread([agent] { agent->run(); });
    for (int i = 0; i < 500 && alive_nodes() < count_started(); ++i)
      std::this_thread::sleep_for(5ms);
  }

  void stop_node(const std::string& name) {
    auto it = nodes_.find(name);
    it->second.agent->stop();
    it->second.thread.join();
    nodes_.erase(it);
  }

  // In sanitizer builds, a signal kills a worker as it would normally (not the sanitizer's
  // handler, which would report and exit).
  static void let_signals_kill_workers() {
    for (const char* name : {"ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS"}) {
      const char* old = std::getenv(name);
      std::string value = old != nullptr ? std::string(old) + ":" : std::string();
      ::setenv(name, (value + "handle_segv=0:handle_abort=0:handle_sigbus=0").c_str(), 1);
    }
  }

  std::size_t count_started() const { return nodes_.size(); }
  TcpProxy& proxy(const std::string& node) { return *proxies_.at(node); }
  // How many objects node `name` holds for others.
  std::size_t objects_held(const std::string& name) {
    return nodes_.at(name).agent->objects_held();
  }
  std::size_t alive_nodes() {
    std::size_t n = 0;
    for (const auto& v : head_->nodes()) n += v.liveness == atl::runtime::Liveness::alive;
    return n;
  }

  atl::Runtime driver() {
    return atl::init({.address = "127.0.0.1:" + std::to_string(head_->port()),
                      .token = token_,
                      .modules = {test_job},
                      .job_module = {.library = ATOLL_TEST_JOB, .name = "test_job"}});
  }

  struct Node {
    std::unique_ptr<atl::runtime::NodeAgentProcess> agent;
    std::thread thread;
  };

  fs::path dir_;
  std::string token_;
  std::unique_ptr<atl::runtime::HeadServer> head_;
  std::thread head_thread_;
  std::map<std::string, Node> nodes_;
  std::map<std::string, std::unique_ptr<TcpProxy>> proxies_;  // nodes behind one, by name
};

}  // namespace cluster_test
