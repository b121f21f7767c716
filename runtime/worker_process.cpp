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
  if (spec.python && spec.launch.python.empty()) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error(ErrorCategory::unimplemented,
                "this node runs no Python code: it was started without a Python interpreter "
                "(atoll start --python)");
  }
  std::vector<std::string> args{spec.launch.executable, "__worker"};
  if (spec.python) args = {spec.launch.python, "-m", "atoll._node_worker"};
  args.insert(args.end(), {"--fd", std::to_string(fds[1]), "--module", spec.module_path,
                           "--module-hash", spec.module_hash, "--module-name", spec.module_name});
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
    ::execve(argv[0], argv.data(), environ);
    ::_exit(127);
  }
  ::close(fds[1]);
  std::unique_ptr<WorkerProcess> worker(new WorkerProcess(pid, fds[0]));
  transport::DecodeResult<wire::WorkerMessage> decoded;
  try {
    decoded = worker->read_message(timeout);
  } catch (const Error& e) {
    throw Error(ErrorCategory::failed, std::string("the worker could not start: ") + e.what());
  }
  auto m = decoded.message->root();
  if (m.which() == wire::WorkerMessage::OUTCOME && m.getOutcome().isFailure())
    throw Error(ErrorCategory::failed, "the worker could not start: " +
                                           std::string(m.getOutcome().getFailure().getMessage()));
  if (m.which() != wire::WorkerMessage::READY)
    throw Error(ErrorCategory::failed, "the worker did not report ready");
  worker->functions_ = m.getReady().getFunctions();
  if (!spec.launch.head_address.empty()) {
    // Over the socketpair: another process of this user could read the worker's environment or
    // command line (/proc), never this.
    transport::ControlMessage msg;
    auto c = msg.initRoot<wire::WorkerMessage>().initCluster();
    c.setHeadAddress(spec.launch.head_address);
    c.setToken(spec.launch.token);
    c.setDataHost(spec.launch.data_host);
    c.setDataAdvertiseHost(spec.launch.data_advertise_host);
    if (!worker->send(msg, {}))
      throw Error(ErrorCategory::failed, "the worker could not start: it went away");
  }
  return worker;
}

WorkerProcess::~WorkerProcess() {
  ::close(fd_);  // the worker exits at end of input
  close_all(received_fds_);
  std::lock_guard lock(reap_mu_);
  if (reaped_) return;
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    ::usleep(1000);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

void WorkerProcess::died() {
  dead_.store(true);
  lent_.clear();  // nothing maps them any more
  std::string how = "vanished";
  {
    std::lock_guard lock(reap_mu_);
    int status = 0;
    if (!reaped_ && ::waitpid(pid_, &status, 0) == pid_) how = describe_exit(status);
    reaped_ = true;
  }
  throw Error(ErrorCategory::disconnected, "worker process " + std::to_string(pid_) + " " + how);
}

void WorkerProcess::kill_and_reap() noexcept {
  dead_.store(true);
  std::lock_guard lock(reap_mu_);
  if (reaped_) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  reaped_ = true;
}

void WorkerProcess::kill() noexcept {
  dead_.store(true);
  std::lock_guard lock(reap_mu_);
  if (!reaped_) ::kill(pid_, SIGKILL);  // the reader reaps it when it sees the socket close
}

void WorkerProcess::close_input() noexcept {
  ::shutdown(fd_, SHUT_WR);
}

transport::Frame WorkerProcess::read_frame(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto frame = decoder_.next()) return std::move(*frame);
    if (decoder_.failed()) {
      kill();
      died();
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill_and_reap();
      throw Error(ErrorCategory::timed_out, "the worker did not answer within " +
                                                std::to_string(timeout.count()) +
                                                " ms and was killed");
    }
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    std::byte buf[64 * 1024];
    ssize_t n = transport::receive_with_fds(fd_, buf, received_fds_);
    if (n < 0 && errno == EINTR) continue;
    // A worker sends at most one descriptor per frame (a shared result), and one read returns at
    // most one frame's: more waiting than a result and the frame after it could need is a worker
    // hoarding the node's descriptors.
    if ((n < 0 && errno == EMSGSIZE) || received_fds_.size() > 2) {
      close_all(received_fds_);
      kill();
      died();
    }
    if (n <= 0) died();
    decoder_.feed({buf, static_cast<std::size_t>(n)});
  }
}

transport::DecodeResult<wire::WorkerMessage> WorkerProcess::read_message(
    std::chrono::milliseconds timeout) {
  for (;;) {
    auto decoded = transport::decode_worker_message(read_frame(timeout));
    if (!decoded.message) {
      kill();
      died();
    }
    auto m = decoded.message->root();
    if (m.which() != wire::WorkerMessage::RELEASED) return decoded;
    lent_.released(m.getReleased());
  }
}

bool WorkerProcess::send(capnp::MessageBuilder& message, const OutgoingFds& fds) {
  if (transport::send_all_with_fds(fd_, transport::encode(message), fds.fds)) return true;
  // The worker may be alive (descriptors refused, memory short) with half a frame sent: it cannot
  // be trusted to read what follows, so it goes, and its reader learns why.
  kill();
  return false;
}

WorkerOutcome WorkerProcess::outcome_of(wire::TaskOutcome::Reader o) {
  WorkerOutcome out;
  if (o.isValue() || o.isShared()) {
    out.ok = true;
    try {
      out.value = read_result(o, received_fds_);
    } catch (const Error&) {
      kill();  // a shared result without its descriptor, or one that does not fit it
      died();
    }
  } else {
    auto f = o.getFailure();
    out.remote_type = f.getRemoteType();
    out.message = f.getMessage();
    out.traceback = f.getTraceback();
    out.details.assign(reinterpret_cast<const char*>(f.getDetails().begin()),
                       f.getDetails().size());
  }
  return out;
}

namespace {
void set_code(wire::CodeRef::Builder out, const CodeRef& code) {
  out.setHash(code.hash);
  out.setPath(code.path);
}
}  // namespace

bool WorkerProcess::send_execute(std::uint64_t id, const std::string& function,
                                 const std::vector<Buffer>& args, const PassedArgs& passed,
                                 const CodeRef& code) {
  if (dead_.load()) return false;
  transport::ControlMessage msg;
  auto e = msg.initRoot<wire::WorkerMessage>().initExecute();
  e.setTaskId(id);
  e.setFunction(function);
  if (!code.empty()) set_code(e.initCode(), code);
  OutgoingFds fds;
  write_arguments(e, args, lent_, fds);
  write_passed_args(e, passed);
  return send(msg, fds);
}

std::pair<std::uint64_t, WorkerOutcome> WorkerProcess::next_outcome() {
  if (dead_.load()) {
    std::lock_guard lock(reap_mu_);
    if (reaped_) throw Error(ErrorCategory::disconnected, "the worker process is gone");
  }
  // An actor's call may run for as long as it likes: no deadline beyond the worker's life.
  auto decoded = read_message(std::chrono::hours(24 * 365));
  if (decoded.message->root().which() != wire::WorkerMessage::OUTCOME) {
    kill();
    died();
  }
  auto o = decoded.message->root().getOutcome();
  return {o.getTaskId(), outcome_of(o)};
}

WorkerOutcome WorkerProcess::construct(const std::string& class_name,
                                       const std::vector<Buffer>& args,
                                       std::uint32_t max_concurrency,
                                       std::chrono::milliseconds timeout, const PassedArgs& passed,
                                       const CodeRef& code) {
  if (dead_.load()) throw Error(ErrorCategory::disconnected, "the worker process is gone");
  {
    transport::ControlMessage msg;
    auto c = msg.initRoot<wire::WorkerMessage>().initConstruct();
    c.setClassName(class_name);
    if (!code.empty()) set_code(c.initCode(), code);
    c.setMaxConcurrency(max_concurrency);
    OutgoingFds fds;
    write_arguments(c, args, lent_, fds);
    write_passed_args(c, passed);
    if (!send(msg, fds)) died();
  }
  auto decoded = read_message(timeout);
  auto m = decoded.message->root();
  if (m.which() != wire::WorkerMessage::OUTCOME || m.getOutcome().getTaskId() != 0) {
    kill();
    died();
  }
  return outcome_of(m.getOutcome());
}

WorkerOutcome WorkerProcess::execute(const std::string& function, const std::vector<Buffer>& args,
                                     std::chrono::milliseconds timeout, const PassedArgs& passed,
                                     const CodeRef& code) {
  if (dead_.load()) throw Error(ErrorCategory::disconnected, "the worker process is gone");
  std::uint64_t id = next_task_++;
  if (!send_execute(id, function, args, passed, code)) died();
  auto decoded = read_message(timeout);
  auto m = decoded.message->root();
  if (m.which() != wire::WorkerMessage::OUTCOME || m.getOutcome().getTaskId() != id) {
    kill();
    died();
  }
  return outcome_of(m.getOutcome());
}

}  // namespace atl::runtime
