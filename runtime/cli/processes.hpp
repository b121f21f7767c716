// What `atoll start` leaves on this machine, and how `atoll stop` finds it again.
//
// The state directory ($ATOLL_STATE_DIR, else ~/.atoll) holds the cluster token (mode 0600), the
// head's address (head.addr), one pid file per process started here, and their logs. A process is
// started by re-running this executable in the foreground with a readiness pipe: the parent waits
// until the child reports "ready" (listening, or registered with the head) or an error, so
// `atoll start` fails loudly instead of leaving a broken daemon behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace atl::cli {

std::filesystem::path state_dir();

struct Spawned {
  pid_t pid = 0;
  std::string ready_message;  // what the child wrote after "ready "
};

// Starts `self_exe args...` detached (new session, output to `log`), with extra environment
// entries, and waits up to `timeout` for the child to write "ready ..." or "error ..." to the fd
// named by its --ready-fd argument (appended here). Raises atl::Error(failed) with the child's
// error message, or on timeout.
Spawned spawn_and_wait(const std::string& self_exe, std::vector<std::string> args,
                       const std::vector<std::string>& extra_env, const std::filesystem::path& log,
                       std::chrono::milliseconds timeout);

// Child side: report readiness or failure through the pipe, then close it.
void report_ready(int fd, const std::string& message);
void report_error(int fd, const std::string& message);

void write_pid_file(const std::filesystem::path& path, pid_t pid);
// The pid recorded in `path` if that process is alive and is an atoll process.
std::optional<pid_t> live_pid(const std::filesystem::path& path);

struct Stopped {
  std::string name;
  pid_t pid;
  bool forced;  // needed SIGKILL
};
// Sends SIGTERM to every process with a pid file in `dir`, waits up to `grace`, then SIGKILLs
// what is left; removes the pid files and the head address. Nodes are stopped before the head.
std::vector<Stopped> stop_all(const std::filesystem::path& dir, std::chrono::milliseconds grace);

// The path of the running executable.
std::string self_executable();

}  // namespace atl::cli
