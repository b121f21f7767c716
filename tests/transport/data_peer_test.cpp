// A data-plane peer in another process killed with SIGKILL mid-transfer (atoll_data_peer): the
// side that survives gets `disconnected`, promptly, on each backend. Each peer is held
// mid-transfer by its own callbacks first, so the kill always lands before the object is done.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/transport/data_test_support.hpp"

extern char** environ;

namespace atl::data_test {
namespace {

// A child process with its standard output on a pipe.
class PeerProcess {
 public:
  PeerProcess(const std::vector<std::string>& args, const std::string& token) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    std::vector<std::string> env_strings{"ATOLL_DATA_TOKEN=" + token};
    for (char** e = environ; *e; ++e)
      if (std::string_view(*e).substr(0, 17) != "ATOLL_DATA_TOKEN=") env_strings.emplace_back(*e);
    std::vector<char*> env, argv;
    for (auto& s : env_strings) env.push_back(s.data());
    env.push_back(nullptr);
    std::vector<std::string> argv_strings{ATOLL_DATA_PEER};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    for (auto& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    int rc = ::posix_spawn(&pid_, ATOLL_DATA_PEER, &actions, nullptr, argv.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = fds[0];
    if (rc != 0) throw std::runtime_error("posix_spawn failed");
  }
  ~PeerProcess() {
    kill();
    ::close(out_);
  }

  // The next line the child prints, waiting at most `timeout`.
  std::optional<std::string> line(std::chrono::milliseconds timeout = kWait) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string l = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return l;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[512];
      ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }

  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffer_;
};

class DataPeerDeathTest : public ::testing::TestWithParam<DataBackend> {
 protected:
  void SetUp() override {
    if (GetParam() == DataBackend::ucx && !ucx_skip_reason().empty())
      GTEST_SKIP() << ucx_skip_reason();
    token_ = transport::generate_token();
  }
  std::string backend() const { return std::string(transport::to_string(GetParam())); }
  std::string token_;
};

TEST_P(DataPeerDeathTest, ASenderKilledMidTransferFailsTheReceiversObject) {
  Receiver b;
  Gate gate;
  b.progress_hook = [&](const IncomingObject&, std::uint64_t received) {
    if (received >= (8u << 20)) gate.wait();  // holds the receiver until the sender is dead
  };
  transport::DataPlane plane(options_for(GetParam(), token_, "receiver"), b.handlers());
  ASSERT_EQ(plane.backend(), GetParam()) << plane.fallback_reason();
  PeerProcess sender({"send", backend(), plane.address().to_string(), std::to_string(256u << 20)},
                     token_);
  ASSERT_TRUE(gate.wait_entered()) << "no bytes arrived from the sender process";
  sender.kill();
  gate.open();
  ASSERT_TRUE(b.wait_failures(1));
  auto failure = b.failures()[0];
  EXPECT_EQ(failure.first.size, 256u << 20);
  EXPECT_EQ(failure.first.peer, "peer-sender");
  EXPECT_EQ(failure.second.category(), ErrorCategory::disconnected) << failure.second.what();
  EXPECT_TRUE(b.objects().empty());
}

TEST_P(DataPeerDeathTest, AReceiverKilledMidTransferFailsTheSend) {
  PeerProcess receiver({"receive", backend(), std::to_string(8u << 20)}, token_);
  auto line = receiver.line();
  ASSERT_TRUE(line && line->starts_with("address ")) << line.value_or("(nothing)");
  Receiver a;
  transport::DataPlane plane(options_for(GetParam(), token_, "sender"), a.handlers());
  auto channel = plane.connect(transport::DataAddress::parse(line->substr(8)), {}, kWait);
  EXPECT_EQ(channel->backend(), GetParam());
  PendingSend done(*channel, {1, 1}, patterned(256u << 20, 1));
  auto blocked = receiver.line();
  ASSERT_EQ(blocked.value_or("(nothing)"), "blocked");
  receiver.kill();
  auto failure = expect_failed(done);
  EXPECT_EQ(failure.first, ErrorCategory::disconnected) << failure.second;
  EXPECT_TRUE(channel->closed());
}

INSTANTIATE_TEST_SUITE_P(Backends, DataPeerDeathTest,
                         ::testing::Values(DataBackend::tcp, DataBackend::ucx), backend_name);

}  // namespace
}  // namespace atl::data_test
