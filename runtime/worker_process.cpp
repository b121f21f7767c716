#include "runtime/worker_process.hpp"

#include <capnp/message.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "atoll/errors.hpp"
#include "transport/codec.hpp"

extern char** environ;

namespace atl::runtime {

namespace {}  // namespace

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* abbrev = ::sigabbrev_np(sig);
    return "killed by signal " + (abbrev ? "SIG" + std::string(abbrev) : std::to_string(sig)) +
           " (" + ::strsignal(sig) + ")";
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "stopped";
}

std::unique_ptr<WorkerProcess> WorkerProcess::spawn(const WorkerSpec& spec,
                                                    std::chrono::milliseconds timeout) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    throw Error(ErrorCategory::failed, std::string("socketpair: ") + std::strerror(errno));
  std::vector<std::string> args{spec.executable,        "__worker",       "--fd",
                                std::to_string(fds[1]), "--module",       spec.module_path,
                                "--module-hash",        spec.module_hash, "--module-name",
                                spec.module_name};
  std::vector<char*> argv;  // built before fork: the child may only make async-signal-safe calls
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error(ErrorCategory::failed, std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int keep = fds[1];  // stdio and the socketpair only: no other descriptor leaks in
    if (keep > 3) ::close_range(3, static_cast<unsigned>(keep - 1), 0);
    ::close_range(static_cast<unsigned>(keep + 1), ~0U, 0);
    ::fcntl(keep, F_SETFD, 0);
    ::execve(spec.executable.c_str(), argv.data(), environ);
    ::_exit(127);
  }
  ::close(fds[1]);
  std::unique_ptr<WorkerProcess> worker(new WorkerProcess(pid, fds[0]));
  transport::Frame frame;
  try {
    frame = worker->read_frame(timeout);
  } catch (const Error& e) {
    throw Error(ErrorCategory::failed, std::string("the worker could not start: ") + e.what());
  }
  auto decoded = transport::decode_worker_message(std::move(frame));
  if (!decoded.message) throw Error(ErrorCategory::failed, "worker: " + decoded.error);
  auto m = decoded.message->root();
  if (m.which() == wire::WorkerMessage::OUTCOME && m.getOutcome().isFailure())
    throw Error(ErrorCategory::failed, "the worker could not start: " +
                                           std::string(m.getOutcome().getFailure().getMessage()));
  if (m.which() != wire::WorkerMessage::READY)
    throw Error(ErrorCategory::failed, "the worker did not report ready");
  worker->functions_ = m.getReady().getFunctions();
  return worker;
}

WorkerProcess::~WorkerProcess() {
  if (fd_ >= 0) ::close(fd_);  // the worker exits at end of input
  if (pid_ > 0) {
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      ::usleep(1000);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void WorkerProcess::died() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  int status = 0;
  std::string how = ::waitpid(pid_, &status, 0) == pid_ ? describe_exit(status) : "vanished";
  pid_t pid = pid_;
  pid_ = -1;
  throw Error(ErrorCategory::disconnected, "worker process " + std::to_string(pid) + " " + how);
}

transport::Frame WorkerProcess::read_frame(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto frame = decoder_.next()) return std::move(*frame);
    if (decoder_.failed()) {
      ::kill(pid_, SIGKILL);
      died();
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid_, SIGKILL);
      if (fd_ >= 0) ::close(fd_);
      fd_ = -1;
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
      throw Error(ErrorCategory::timed_out, "the worker did not answer within " +
                                                std::to_string(timeout.count()) +
                                                " ms and was killed");
    }
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    std::byte buf[64 * 1024];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) died();
    decoder_.feed({buf, static_cast<std::size_t>(n)});
  }
}

WorkerOutcome WorkerProcess::execute(const std::string& function,
                                     const std::vector<std::string>& args,
                                     std::chrono::milliseconds timeout) {
  if (fd_ < 0) throw Error(ErrorCategory::disconnected, "the worker process is gone");
  std::uint64_t id = next_task_++;
  {
    capnp::MallocMessageBuilder msg;
    auto e = msg.initRoot<wire::WorkerMessage>().initExecute();
    e.setTaskId(id);
    e.setFunction(function);
    auto list = e.initArgs(static_cast<unsigned>(args.size()));
    for (unsigned i = 0; i < args.size(); ++i)
      list.set(i, capnp::Data::Reader(reinterpret_cast<const kj::byte*>(args[i].data()),
                                      args[i].size()));
    if (!transport::send_all(fd_, transport::encode(msg))) died();
  }
  auto decoded = transport::decode_worker_message(read_frame(timeout));
  if (!decoded.message) {
    ::kill(pid_, SIGKILL);
    died();
  }
  auto m = decoded.message->root();
  if (m.which() != wire::WorkerMessage::OUTCOME || m.getOutcome().getTaskId() != id) {
    ::kill(pid_, SIGKILL);
    died();
  }
  auto o = m.getOutcome();
  WorkerOutcome out;
  if (o.isValue()) {
    out.ok = true;
    auto v = o.getValue();
    out.value.assign(reinterpret_cast<const char*>(v.begin()), v.size());
  } else {
    out.remote_type = o.getFailure().getRemoteType();
    out.message = o.getFailure().getMessage();
  }
  return out;
}

}  // namespace atl::runtime
