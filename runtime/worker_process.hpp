// Worker processes: a node agent runs a job's tasks in separate processes, so a task that
// segfaults, aborts or calls exit takes down only its worker — never the agent.
//
// `WorkerProcess::spawn` starts `atoll __worker` on one end of a socketpair; the worker verifies
// and loads the job's module, reports Ready, then runs ExecuteTask messages one at a time and
// answers each with a TaskOutcome (same framing and codec as the control plane). For tasks the
// node side is synchronous (`execute`): one call at a time per worker, one worker per busy slot.
// An actor's host first calls `construct`, then pipelines: one thread sends calls
// (`send_execute`) while another reads their outcomes (`next_outcome`), so the worker never waits
// for a round trip between calls.
//
// Thread-safety: `execute` and `construct` by one thread at a time. After `construct`,
// `send_execute` and `close_input` may run on one thread while `next_outcome` runs on another;
// `kill` from any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "atoll/buffer.hpp"
#include "atoll/registry.hpp"
#include "runtime/worker_values.hpp"
#include "transport/codec.hpp"
#include "transport/frame.hpp"
#include "transport/schema/control.capnp.h"

namespace atl::runtime {

// The largest message on a worker's socketpair: a task's inline arguments or result travel in one
// frame (values in the node's shared memory travel as descriptors instead, worker_values.hpp).
// The peer is a local process of this node, so the control plane's 16 MiB limit against hostile
// peers does not apply.
inline constexpr std::size_t kMaxWorkerFrameBytes = std::size_t{1} << 30;

// How a node agent starts workers: the binary, and the cluster a worker's code reaches when it
// submits nested tasks (a worker connects to the head as a driver of its own, on first use).
struct WorkerLaunch {
  std::string executable;  // the atoll binary
  // The interpreter Python workers run on (`PYTHON -m atoll._node_worker`, same arguments as
  // `atoll __worker`); the atoll package must be importable there. Empty: Python code is refused.
  std::string python;
  std::string head_address;  // HOST:PORT; empty: nested tasks are refused
  std::string token;
  std::string data_host = "127.0.0.1";  // the node's: where a worker's data plane listens
  std::string data_advertise_host;
};

struct WorkerSpec {
  WorkerLaunch launch;      // the cluster part is sent to the worker once it is ready
  std::string module_path;  // a verified module in the node's ModuleStore (empty: none, Python)
  std::string module_hash;
  std::string module_name;
  bool python = false;  // a Python worker (launch.python), which also loads code by CodeRef
};

// A binding's code (a pickled Python function or class) in the node's module store, verified
// there; the worker checks the hash again before loading it.
struct CodeRef {
  std::string hash;
  std::string path;
  bool empty() const noexcept { return hash.empty(); }
};

struct WorkerOutcome {
  bool ok = false;
  Buffer value;             // msgpack bytes, when ok (a large one in shared memory)
  std::string remote_type;  // when not ok
  std::string message;
  std::string traceback, details;  // a binding's exception (atl::ForeignException)
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
  // Arguments larger than kMaxInlineObjectBytes that live in shared memory are lent to the worker
  // rather than copied (worker_values.hpp).
  // `passed`: ObjectRef and ActorHandle parameters, which the worker borrows.
  WorkerOutcome execute(const std::string& function, const std::vector<Buffer>& args,
                        std::chrono::milliseconds timeout, const PassedArgs& passed = {},
                        const CodeRef& code = {});

  // Makes this worker host an actor of `class_name`. Returns how construction went (not ok: the
  // class is unknown or its constructor threw). Raises like `execute` when the worker dies.
  WorkerOutcome construct(const std::string& class_name, const std::vector<Buffer>& args,
                          std::uint32_t max_concurrency, std::chrono::milliseconds timeout,
                          const PassedArgs& passed = {}, const CodeRef& code = {});
  // Sends one call; false when the worker is gone (the reader learns why). `code`: the Python
  // function `function` names, for a Python worker that has not loaded it yet.
  bool send_execute(std::uint64_t id, const std::string& function, const std::vector<Buffer>& args,
                    const PassedArgs& passed = {}, const CodeRef& code = {});
  // The next outcome, in completion order, with its call's id. Raises Error(disconnected) naming
  // the signal or exit status once the worker has exited (after a clean exit too).
  std::pair<std::uint64_t, WorkerOutcome> next_outcome();
  // No more calls: the worker finishes those it has and exits.
  void close_input() noexcept;
  // Ends the worker now (SIGKILL).
  void kill() noexcept;

  pid_t pid() const noexcept { return pid_; }
  bool alive() const noexcept { return !dead_.load(); }
  // Values lent to the worker that it has not said it unmapped (read as its messages arrive).
  std::size_t values_lent() const { return lent_.count(); }
  std::uint32_t functions() const noexcept { return functions_; }

 private:
  WorkerProcess(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  transport::Frame read_frame(std::chrono::milliseconds timeout);
  // The next message other than `released` (which it handles). Kills the worker and raises like
  // died() when the worker sends something that does not decode.
  transport::DecodeResult<wire::WorkerMessage> read_message(std::chrono::milliseconds timeout);
  // Writes one message with its descriptors; false when the worker is gone.
  bool send(capnp::MessageBuilder& message, const OutgoingFds& fds);
  WorkerOutcome outcome_of(wire::TaskOutcome::Reader o);
  // Marks the worker dead, reaps it and raises Error(disconnected) saying how it ended.
  [[noreturn]] void died();
  void kill_and_reap() noexcept;

  const pid_t pid_;
  const int fd_;  // closed by the destructor only, so a sending thread never sees it reused
  std::atomic<bool> dead_{false};
  std::mutex reap_mu_;  // guards reaped_: a reaped pid may be reused, so never signal it
  bool reaped_ = false;
  std::uint32_t functions_ = 0;
  std::uint64_t next_task_ = 1;
  transport::FrameDecoder decoder_{kMaxWorkerFrameBytes};
  std::deque<int> received_fds_;  // from the worker, in arrival order (read side only)
  LentValues lent_;
};

// Describes a wait() status: "killed by signal SIGSEGV (Segmentation fault)", "exited with
// status 3".
std::string describe_exit(int status);

// What a language binding adds to the worker loop (the Python extension's worker).
struct WorkerBinding {
  // Adds the code `code` refers to (verified against its hash first) to `registry` as entry `key`:
  // a function, or an actor class when `actor`; `name` is what the caller called it, for
  // messages. Raises what the caller then gets as the call's failure.
  std::function<void(Registry& registry, const std::string& key, const std::string& name,
                     const CodeRef& code, bool actor)>
      load_code;
  // Called with the worker's cluster runtime connector before the loop runs, and with nullptr
  // after it ended. The connector joins the cluster on first use (for nested tasks) and raises
  // atl::Error when there is no cluster to join.
  std::function<void(std::function<std::shared_ptr<detail::Core>()> connect)> attach;
};

// The worker side: `atoll __worker --fd N --module PATH --module-hash H --module-name NAME`. An
// empty module path loads no C++ module (a Python worker of a job without one). With `binding`,
// calls carrying a CodeRef load that code first.
int worker_main(int fd, const std::string& module_path, const std::string& module_hash,
                const std::string& module_name, const WorkerBinding* binding = nullptr);

}  // namespace atl::runtime
