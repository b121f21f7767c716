#include "runtime/cli/processes.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

#include "atoll/errors.hpp"

extern char** environ;

namespace atl::cli {

namespace fs = std::filesystem;

fs::path state_dir() {
  fs::path dir;
  if (const char* d = std::getenv("ATOLL_STATE_DIR"); d != nullptr && *d != '\0')
    dir = d;
  else if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    dir = fs::path(home) / ".atoll";
  else
    dir = "/tmp/atoll-" + std::to_string(::geteuid());  // never a directory shared by users
  std::error_code ec;
  if (fs::create_directories(dir, ec)) fs::permissions(dir, fs::perms::owner_all, ec);
  return dir;
}

std::string self_executable() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("atoll") : p.string();
}

Spawned spawn_and_wait(const std::string& self_exe, std::vector<std::string> args,
                       const std::vector<std::string>& extra_env, const fs::path& log,
                       std::chrono::milliseconds timeout) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw Error(ErrorCategory::failed, std::string("pipe: ") + std::strerror(errno));
  args.push_back("--ready-fd");
  args.push_back(std::to_string(fds[1]));
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  // Everything the child needs is built before fork: between fork and exec only async-signal-safe
  // calls are allowed (another thread may hold the allocator's lock).
  std::vector<char*> argv{const_cast<char*>(self_exe.c_str())};
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    for (int fd : {fds[0], fds[1], out, in})
      if (fd >= 0) ::close(fd);
    throw Error(ErrorCategory::failed, std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // do not inherit the parent's blocked signals
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    if (in >= 0) ::dup2(in, 0);
    // Keep only stdio and the readiness pipe: no socket or file of the parent leaks in.
    int keep = fds[1];
    if (keep > 3) ::close_range(3, static_cast<unsigned>(keep - 1), 0);
    ::close_range(static_cast<unsigned>(keep + 1), ~0U, 0);
    ::fcntl(keep, F_SETFD, 0);
    ::execve(self_exe.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  for (int fd : {out, in})
    if (fd >= 0) ::close(fd);
  ::close(fds[1]);
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[512];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;  // the child closed the pipe (or exited)
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.rfind("ready", 0) == 0) return {pid, text.size() > 6 ? text.substr(6) : ""};
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  if (text.rfind("error ", 0) == 0) throw Error(ErrorCategory::failed, text.substr(6));
  throw Error(ErrorCategory::failed, "the process did not start (see " + log.string() + ")");
}

namespace {
void write_all(int fd, const std::string& text) {
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}
}  // namespace

void report_ready(int fd, const std::string& message) {
  if (fd < 0) return;
  write_all(fd, "ready " + message + "\n");
  ::close(fd);
}

void report_error(int fd, const std::string& message) {
  if (fd < 0) return;
  write_all(fd, "error " + message + "\n");
  ::close(fd);
}

void write_pid_file(const fs::path& path, pid_t pid) {
  std::ofstream(path) << pid << "\n";
}

namespace {
// Gone, or a zombie. (Not `live_pid`: while a process exits, its /proc/PID/exe vanishes before it
// has finished closing its sockets, so that check would call it gone too early.)
bool has_exited(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  auto close_paren = line.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < line.size() &&
         line[close_paren + 2] == 'Z';
}
}  // namespace

std::optional<pid_t> live_pid(const fs::path& path) {
  std::ifstream in(path);
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  if (::kill(pid, 0) != 0) return std::nullopt;
  // Guard against a recycled pid: the process must run an `atoll` executable.
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).filename().string();
  if (ec || exe.rfind("atoll", 0) != 0) return std::nullopt;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto close_paren = line.rfind(')');
  if (close_paren != std::string::npos && close_paren + 2 < line.size() &&
      line[close_paren + 2] == 'Z')
    return std::nullopt;  // a zombie has already exited
  return pid;
}

std::vector<Stopped> stop_all(const fs::path& dir, std::chrono::milliseconds grace) {
  std::vector<std::pair<std::string, fs::path>> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".pid")
      files.emplace_back(entry.path().stem().string(), entry.path());
  // Nodes first, the head last, so nodes do not spend their last moments reconnecting.
  std::stable_partition(files.begin(), files.end(),
                        [](const auto& f) { return f.first != "head"; });
  std::vector<Stopped> stopped;
  for (const auto& [name, path] : files) {
    auto pid = live_pid(path);
    if (pid) {
      ::kill(*pid, SIGTERM);
      auto deadline = std::chrono::steady_clock::now() + grace;
      while (!has_exited(*pid) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      bool forced = !has_exited(*pid);
      if (forced) {
        ::kill(*pid, SIGKILL);
        for (int i = 0; i < 500 && !has_exited(*pid); ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      stopped.push_back({name, *pid, forced});
    }
    fs::remove(path, ec);
  }
  fs::remove(dir / "head.addr", ec);
  return stopped;
}

}  // namespace atl::cli
