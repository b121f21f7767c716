// Worker processes: a node agent runs a job's tasks in separate processes, so a task that
// segfaults, aborts or calls exit takes down only its worker — never the agent.
//
// `WorkerProcess::spawn` starts `atoll __worker` on one end of a socketpair; the worker verifies
// and loads the job's module, reports Ready, then runs ExecuteTask messages one at a time and
// answers each with a TaskOutcome (same framing and codec as the control plane). The node side
// is synchronous: one call at a time per worker; a node runs one worker per busy slot.
//
// Thread-safety: a WorkerProcess is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "transport/frame.hpp"

namespace atl::runtime {

struct WorkerSpec {
  std::string executable;   // the atoll binary
  std::string module_path;  // a verified module in the node's ModuleStore
  std::string module_hash;
  std::string module_name;
};

struct WorkerOutcome {
  bool ok = false;
  std::string value;        // msgpack bytes, when ok
  std::string remote_type;  // when not ok
  std::string message;
};

class WorkerProcess {
 public:
  // Starts the worker and waits until it loaded the module. Raises atl::Error(failed) with the
  // worker's reason (a hash mismatch, a library that does not load) or how it died.
  static std::unique_ptr<WorkerProcess> spawn(const WorkerSpec& spec,
                                              std::chrono::milliseconds timeout);
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Runs one task. Returns its value or the exception it threw. Raises atl::Error(disconnected)
  // naming the signal or exit status when the worker dies (the worker is then unusable), and
  // atl::Error(timed_out) when it does not answer in time (the worker is killed).
  WorkerOutcome execute(const std::string& function, const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout);

  pid_t pid() const noexcept { return pid_; }
  bool alive() const noexcept { return fd_ >= 0; }
  std::uint32_t functions() const noexcept { return functions_; }

 private:
  WorkerProcess(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  transport::Frame read_frame(std::chrono::milliseconds timeout);
  [[noreturn]] void died();

  pid_t pid_;
  int fd_;
  std::uint32_t functions_ = 0;
  std::uint64_t next_task_ = 1;
  transport::FrameDecoder decoder_{transport::kDefaultMaxFrameBytes};
};

// Describes a wait() status: "killed by signal SIGSEGV (Segmentation fault)", "exited with
// status 3".
std::string describe_exit(int status);

// The worker side: `atoll __worker --fd N --module PATH --module-hash H --module-name NAME`.
int worker_main(int fd, const std::string& module_path, const std::string& module_hash,
                const std::string& module_name);

}  // namespace atl::runtime
