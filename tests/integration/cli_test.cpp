// The `atoll` command as an operator uses it: real head and node processes on loopback.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "atoll/atoll.hpp"
#include "tests/cluster/job_module.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Result {
  int code;
  std::string output;  // stdout and stderr
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("atoll-cli-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    run("down");
    fs::remove_all(dir_);
  }

  Result run(const std::string& args) {
    std::string command =
        "ATOLL_STATE_DIR='" + dir_.string() + "' timeout 60 " ATOLL_CLI " " + args + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    std::string out;
    std::array<char, 4096> buf;
    while (std::size_t n = std::fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
    int status = ::pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
  }

  nlohmann::json status_json() {
    auto r = run("status --json");
    EXPECT_EQ(r.code, 0) << r.output;
    return r.code == 0 ? nlohmann::json::parse(r.output) : nlohmann::json{};
  }

  std::size_t count_state(const std::string& state) {
    std::size_t n = 0;
    const nlohmann::json status = status_json();  // keep it alive while iterating
    for (const auto& node : status["nodes"]) n += node["state"] == state ? 1 : 0;
    return n;
  }

  pid_t pid_of(const std::string& file) {
    pid_t pid = 0;
    std::ifstream(dir_ / file) >> pid;
    return pid;
  }

  // Alive and not a zombie (orphaned daemons may not be reaped in a container).
  static bool running(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    auto paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
  }

  fs::path dir_;
};

TEST_F(CliTest, up_status_kill_and_down) {
  auto up = run("up --islands 2 --nodes-per-island 2 --gpus-per-node 1 --gpu-model H100 --cpus 1");
  ASSERT_EQ(up.code, 0) << up.output;
  auto s = status_json();
  ASSERT_EQ(s["nodes"].size(), 4u) << s.dump();
  std::set<std::string> islands;
  for (const auto& n : s["nodes"]) {
    islands.insert(n["island"]);
    EXPECT_EQ(n["state"], "alive");
    EXPECT_EQ(n["gpu_model"], "H100");
    EXPECT_TRUE(n["gpus_declared"]);
    EXPECT_EQ(n["resources"]["GPU"], 1.0);
    EXPECT_EQ(n["used"]["CPU"], 0.0) << n.dump();  // nothing runs yet
    EXPECT_EQ(n["available"]["GPU"], 1.0) << n.dump();
  }
  EXPECT_EQ(islands, (std::set<std::string>{"island-0", "island-1"}));

  auto text = run("status");
  EXPECT_EQ(text.code, 0);
  EXPECT_NE(text.output.find("4 nodes (4 alive"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("island island-1"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("0/1 H100 (declared)"), std::string::npos) << text.output;

  pid_t victim = pid_of("node-island-1-node-0.pid");
  ASSERT_GT(victim, 0);
  ::kill(victim, SIGKILL);
  bool dead = false;
  for (int i = 0; i < 100 && !dead; ++i) {
    dead = count_state("dead") == 1;
    if (!dead) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(dead);
  EXPECT_EQ(count_state("alive"), 3u);

  // The machine comes back: the same node starts again and joins as a new node.
  std::string address;
  std::ifstream(dir_ / "head.addr") >> address;
  auto again = run("start --address " + address +
                   " --island island-1 --name island-1-node-0 --cpus 1 --memory 1G");
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(count_state("alive"), 4u);
  EXPECT_EQ(count_state("dead"), 1u);
  std::set<std::uint64_t> ids;
  const nlohmann::json after = status_json();
  for (const auto& n : after["nodes"])
    if (n["name"] == "island-1-node-0") ids.insert(n["id"].get<std::uint64_t>());
  EXPECT_EQ(ids.size(), 2u) << "a restarted node gets a new id";

  pid_t head = pid_of("head.pid");
  auto down = run("down");
  EXPECT_EQ(down.code, 0) << down.output;
  EXPECT_NE(down.output.find("stopped head"), std::string::npos) << down.output;
  EXPECT_FALSE(running(head)) << "the head still runs after down";
  EXPECT_NE(run("status").code, 0);  // nothing left to ask
}

TEST_F(CliTest, joining_with_a_wrong_token_or_address_fails_clearly) {
  auto head = run("start --head --bind 127.0.0.1 --port 0");
  ASSERT_EQ(head.code, 0) << head.output;
  EXPECT_NE(head.output.find("atoll start --address 127.0.0.1:"), std::string::npos) << head.output;
  std::string address;
  std::ifstream(dir_ / "head.addr") >> address;

  auto wrong = run("start --address " + address +
                   " --token ffffffffffffffffffffffffffffffff --island eu-1 --name intruder");
  EXPECT_NE(wrong.code, 0);
  EXPECT_NE(wrong.output.find("authentication failed"), std::string::npos) << wrong.output;

  auto refused = run("start --address 127.0.0.1:1 --island eu-1 --name nowhere");
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.output.find("cannot connect to 127.0.0.1:1"), std::string::npos)
      << refused.output;

  auto bad = run("start --address nohostport --island eu-1");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.output.find("HOST:PORT"), std::string::npos) << bad.output;

  auto twice = run("start --head --bind 127.0.0.1 --port 0");
  EXPECT_NE(twice.code, 0);
  EXPECT_NE(twice.output.find("already running"), std::string::npos) << twice.output;

  auto good = run("start --address " + address + " --island eu-1 --name eu-a --cpus 2");
  EXPECT_EQ(good.code, 0) << good.output;
  EXPECT_EQ(count_state("alive"), 1u);
}

TEST_F(CliTest, a_bad_data_host_is_refused_clearly) {
  ASSERT_EQ(run("start --head --bind 127.0.0.1 --port 0").code, 0);
  std::string address;
  std::ifstream(dir_ / "head.addr") >> address;
  std::string node = "start --address " + address + " --island eu-1 --name eu-a --cpus 1 ";

  auto with_port = run(node + "--data-host 10.0.0.1:7300");
  EXPECT_EQ(with_port.code, 2) << with_port.output;
  EXPECT_NE(with_port.output.find("--data-host '10.0.0.1:7300' is not a host"), std::string::npos)
      << with_port.output;
  auto not_a_name = run(node + "--data-host 0.0.0.0 --data-advertise 'not a host'");
  EXPECT_EQ(not_a_name.code, 2) << not_a_name.output;
  EXPECT_NE(not_a_name.output.find("--data-advertise 'not a host' is not an IP address"),
            std::string::npos)
      << not_a_name.output;
  auto on_head = run("start --head --data-host 0.0.0.0");
  EXPECT_EQ(on_head.code, 2) << on_head.output;
  EXPECT_NE(on_head.output.find("--head does not take --data-host"), std::string::npos)
      << on_head.output;
  EXPECT_EQ(count_state("alive"), 0u);  // nothing joined

  auto good = run(node + "--data-host 0.0.0.0");  // every interface: readers dial its host
  EXPECT_EQ(good.code, 0) << good.output;
  EXPECT_EQ(count_state("alive"), 1u);
}

TEST_F(CliTest, a_node_killed_mid_task_has_its_task_retried_on_another_node) {
  ASSERT_EQ(run("up --islands 1 --nodes-per-island 2 --cpus 1").code, 0);
  std::string address, token;
  std::ifstream(dir_ / "head.addr") >> address;
  std::ifstream(dir_ / "token") >> token;
  auto rt = atl::init({.address = address,
                       .token = token,
                       .modules = {test_job},
                       .job_module = {.library = ATOLL_TEST_JOB, .name = "test_job"}});
  // One CPU per node: the two tasks run at the same time, one on each node.
  auto first = rt.task(job::sleep_then).options({.max_retries = 2}).remote(1500, 1);
  auto second = rt.task(job::sleep_then).options({.max_retries = 2}).remote(1500, 2);
  std::this_thread::sleep_for(500ms);
  ::kill(pid_of("node-island-0-node-0.pid"), SIGKILL);
  EXPECT_EQ(first.get(60s) + second.get(60s), 3);  // the killed node's task ran again elsewhere
}

TEST_F(CliTest, the_token_file_is_private) {
  ASSERT_EQ(run("start --head --bind 127.0.0.1 --port 0").code, 0);
  auto perms = fs::status(dir_ / "token").permissions();
  EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
}

}  // namespace
