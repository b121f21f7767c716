// The head's membership table in simulated time, and the head service with real node agents and
// status queries over loopback.
#include "runtime/membership.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "atoll/errors.hpp"
#include "runtime/cluster_client.hpp"
#include "runtime/head_server.hpp"
#include "transport/auth.hpp"

namespace {

using namespace std::chrono_literals;
using atl::runtime::Liveness;

atl::runtime::NodeInfo info(std::string name, std::string island) {
  atl::runtime::NodeInfo i;
  i.name = std::move(name);
  i.island = std::move(island);
  i.resources = {{"CPU", 8}, {"GPU", 2}, {"memory", 64e9}};
  i.labels = {{"island", i.island}, {"gpu_model", "RTX-4090"}};
  i.gpu_model = "RTX-4090";
  i.gpus_declared = true;
  return i;
}

TEST(MembershipTest, silent_nodes_die_and_stay_dead) {
  atl::runtime::ManualClock clock;
  atl::runtime::Membership m(clock, {.dead_after = 5s});
  auto a = m.add(info("a", "eu-1"));
  auto b = m.add(info("b", "us-2"));
  for (int i = 0; i < 10; ++i) {
    clock.advance(1s);
    EXPECT_TRUE(m.heartbeat(a));
  }
  EXPECT_EQ(m.sweep(), std::vector<std::uint64_t>{b});  // b went silent 10 s ago
  auto view = m.snapshot();
  ASSERT_EQ(view.size(), 2u);
  EXPECT_EQ(view[0].info.island, "eu-1");  // sorted by island
  EXPECT_EQ(view[0].liveness, Liveness::alive);
  EXPECT_EQ(view[1].liveness, Liveness::dead);
  EXPECT_FALSE(m.heartbeat(b));  // a dead node does not come back under its old id
  EXPECT_NE(m.add(info("b", "us-2")), b);
}

TEST(MembershipTest, a_heartbeat_after_the_detector_gave_up_does_not_revive_the_node) {
  atl::runtime::ManualClock clock;
  atl::runtime::Membership m(clock, {.dead_after = 5s});
  auto a = m.add(info("a", "eu-1"));
  clock.advance(6s);  // dead by the hard timeout, before any sweep noticed
  EXPECT_FALSE(m.heartbeat(a));
  EXPECT_EQ(m.snapshot()[0].liveness, Liveness::dead);
}

TEST(MembershipTest, only_the_most_recent_dead_nodes_are_kept) {
  atl::runtime::ManualClock clock;
  atl::runtime::Membership m(clock, {});
  auto alive = m.add(info("alive", "eu-1"));
  std::uint64_t last = 0;
  for (std::size_t i = 0; i < atl::runtime::Membership::kMaxDeadNodes + 50; ++i) {
    last = m.add(info("flapping", "eu-1"));
    m.disconnected(last);
  }
  m.sweep();
  auto view = m.snapshot();
  EXPECT_EQ(view.size(), atl::runtime::Membership::kMaxDeadNodes + 1);
  bool kept_alive = false, kept_last = false;
  for (const auto& v : view) {
    kept_alive = kept_alive || v.id == alive;
    kept_last = kept_last || v.id == last;
  }
  EXPECT_TRUE(kept_alive);
  EXPECT_TRUE(kept_last);
}

TEST(MembershipTest, a_closed_connection_is_death_at_once) {
  atl::runtime::ManualClock clock;
  atl::runtime::Membership m(clock, {});
  auto a = m.add(info("a", "eu-1"));
  m.disconnected(a);
  EXPECT_EQ(m.snapshot()[0].liveness, Liveness::dead);
}

class HeadServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    token_ = atl::transport::generate_token();
    head_ = std::make_unique<atl::runtime::HeadServer>(atl::runtime::HeadOptions{
        .bind = "127.0.0.1", .port = 0, .token = token_, .heartbeat_interval = 50ms});
    head_thread_ = std::thread([this] { head_->run(); });
  }
  void TearDown() override {
    for (auto& a : agents_) a->stop();
    for (auto& t : agent_threads_) t.join();
    head_->stop();
    head_thread_.join();
  }

  atl::runtime::NodeAgentProcess& start_agent(std::string name, std::string island,
                                              std::string token = {}) {
    agents_.push_back(std::make_unique<atl::runtime::NodeAgentProcess>(
        atl::runtime::NodeAgentOptions{.host = "127.0.0.1",
                                       .port = head_->port(),
                                       .token = token.empty() ? token_ : token,
                                       .name = name,
                                       .info = info(name, island)}));
    auto* agent = agents_.back().get();
    agent_threads_.emplace_back([this, agent] {
      std::string error = agent->run();
      std::lock_guard lock(mu_);
      errors_.push_back(error);
    });
    return *agent;
  }

  template <class Pred>
  bool eventually(Pred pred) {
    for (int i = 0; i < 2500 && !pred(); ++i) std::this_thread::sleep_for(2ms);
    return pred();
  }

  std::size_t count(Liveness l) {
    std::size_t n = 0;
    for (const auto& v : atl::runtime::fetch_status("127.0.0.1", head_->port(), token_))
      n += v.liveness == l ? 1 : 0;
    return n;
  }

  std::string token_;
  std::unique_ptr<atl::runtime::HeadServer> head_;
  std::thread head_thread_;
  std::vector<std::unique_ptr<atl::runtime::NodeAgentProcess>> agents_;
  std::vector<std::thread> agent_threads_;
  std::mutex mu_;
  std::vector<std::string> errors_;
};

TEST_F(HeadServiceTest, nodes_register_heartbeat_and_show_in_status) {
  start_agent("eu-a", "eu-1");
  start_agent("us-a", "us-2");
  ASSERT_TRUE(eventually([&] { return count(Liveness::alive) == 2; }));
  auto nodes = atl::runtime::fetch_status("127.0.0.1", head_->port(), token_);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].info.name, "eu-a");
  EXPECT_EQ(nodes[0].info.island, "eu-1");
  EXPECT_EQ(nodes[0].info.gpu_model, "RTX-4090");
  EXPECT_TRUE(nodes[0].info.gpus_declared);
  EXPECT_EQ(nodes[0].info.labels.at("gpu_model"), "RTX-4090");
  ASSERT_EQ(nodes[0].info.resources.size(), 3u);
  EXPECT_NE(nodes[0].info.address.find("127.0.0.1:"), std::string::npos);
  std::this_thread::sleep_for(300ms);  // several heartbeat periods: still alive
  EXPECT_EQ(count(Liveness::alive), 2u);
}

TEST_F(HeadServiceTest, a_stopped_node_is_dead) {
  auto& agent = start_agent("eu-a", "eu-1");
  ASSERT_TRUE(eventually([&] { return count(Liveness::alive) == 1; }));
  agent.stop();
  EXPECT_TRUE(eventually([&] { return count(Liveness::dead) == 1; }));
}

TEST_F(HeadServiceTest, wrong_token_stops_the_agent_with_the_reason) {
  start_agent("intruder", "eu-1", atl::transport::generate_token());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu_);
    return !errors_.empty();
  }));
  std::lock_guard lock(mu_);
  EXPECT_NE(errors_[0].find("authentication failed"), std::string::npos) << errors_[0];
}

TEST_F(HeadServiceTest, an_agent_whose_registration_the_head_rejects_stops_with_a_reason) {
  agents_.push_back(std::make_unique<atl::runtime::NodeAgentProcess>(
      atl::runtime::NodeAgentOptions{.host = "127.0.0.1",
                                     .port = head_->port(),
                                     .token = token_,
                                     .name = "oversized",
                                     .info = info("oversized", std::string(300, 'x'))}));
  auto* agent = agents_.back().get();
  agent_threads_.emplace_back([this, agent] {
    std::string error = agent->run();
    std::lock_guard lock(mu_);
    errors_.push_back(error);
  });
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu_);
    return !errors_.empty();
  }));
  std::lock_guard lock(mu_);
  EXPECT_NE(errors_[0].find("before registering"), std::string::npos) << errors_[0];
}

TEST_F(HeadServiceTest, status_with_a_wrong_token_is_refused) {
  try {
    atl::runtime::fetch_status("127.0.0.1", head_->port(), atl::transport::generate_token());
    FAIL() << "expected an error";
  } catch (const atl::Error& e) {
    EXPECT_EQ(e.category(), atl::ErrorCategory::disconnected);
    EXPECT_NE(std::string(e.what()).find("authentication failed"), std::string::npos);
  }
}

}  // namespace
