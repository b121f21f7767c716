// A driver connected to a cluster: the same Core interface as the embedded runtime, with tasks
// and actors sent to the head (which places them on node agents) instead of run in this process.
// Objects the driver creates live in its own store, shared with the embedded runtime's code
// (object_ops), and ObjectRef arguments are resolved here before a task or call is sent, so nodes
// receive values. An actor's calls leave in submission order: a call whose arguments are not
// ready holds back the calls after it (cluster_actors.cpp).
//
// A language binding's definitions (Python) are uploaded as code (upload_code) and run in that
// language's workers on the nodes; python_function names one by import path for C++ callers.
#pragma once

#include <asio.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "atoll/runtime.hpp"
#include "runtime/buffer_pool.hpp"
#include "runtime/cluster_messages.hpp"
#include "runtime/counters.hpp"
#include "runtime/object_store.hpp"
#include "runtime/object_transfer.hpp"
#include "runtime/worker_values.hpp"
#include "transport/connection.hpp"

namespace atl::runtime {

class ClusterCore final : public detail::Core {
 public:
  // Connects, authenticates and uploads the job's module. Raises Error(disconnected) with the
  // reason when the head cannot be reached or refuses, Error(invalid_argument) for bad options.
  static std::shared_ptr<ClusterCore> create(InitOptions options);
  ~ClusterCore() override;

  const detail::FunctionEntry& function_by_key(std::uintptr_t key) const override;
  const detail::FunctionEntry& function_by_name(std::string_view name) const override;
  const detail::ActorClassEntry& actor_class(std::type_index type) const override;
  const detail::ActorClassEntry& actor_class_by_name(std::string_view name) const override;
  void extend_registry(Registry&& more) override;
  const detail::FunctionEntry& python_function(std::string_view module,
                                               std::string_view qualname) override;
  // Stores a binding's code (a pickled Python function or class) at the head, where nodes fetch
  // it like a job module; returns its hash, for the registry entry's `code`. Uploads each content
  // once. Raises Error(disconnected) when the head refuses or cannot be reached.
  std::string upload_code(std::span<const std::byte> code);

  std::shared_ptr<detail::RefToken> submit_task(const detail::FunctionEntry& fn,
                                                std::vector<detail::ArgSpec> args,
                                                const TaskOptions* options) override;
  std::shared_ptr<detail::RefToken> put(detail::Payload value) override;
  const detail::Payload& get(const detail::RefToken& ref, detail::Deadline deadline) override;
  void await_all(std::span<const detail::RefToken* const> refs, detail::Deadline deadline) override;
  void wait(std::span<const detail::RefToken* const> refs, std::size_t num_ready,
            detail::Deadline deadline, std::vector<bool>& ready) override;
  bool cancel(const detail::RefToken& ref) override;

  std::shared_ptr<detail::ActorToken> create_actor(const detail::ActorClassEntry& cls,
                                                   std::vector<detail::ArgSpec> args,
                                                   const ActorOptions& options) override;
  std::shared_ptr<detail::ActorToken> find_actor(std::string_view name,
                                                 std::type_index type) override;
  std::shared_ptr<detail::RefToken> submit_actor_call(const detail::ActorToken& actor,
                                                      const detail::MethodEntry& method,
                                                      std::vector<detail::ArgSpec> args) override;
  void kill_actor(const detail::ActorToken& actor) override;

  MutableBuffer create_buffer(std::size_t size) override;
  RuntimeStats stats() const override;
  void shutdown() override;
  void release_object(void* entry) noexcept override;
  void release_actor(void* record) noexcept override;

 private:
  struct ClusterActor;
  struct ArgWaiter final : Waiter {
    ClusterCore* core = nullptr;
    std::uint64_t task = 0;
    void on_ready() noexcept override { core->argument_ready(task); }
  };
  // A task or an actor call, from submission until its result arrives.
  struct PendingTask {
    const detail::FunctionEntry* function = nullptr;  // a task, or
    const detail::MethodEntry* method = nullptr;      // a call of
    ClusterActor* actor = nullptr;                    // this actor
    std::vector<detail::ArgSpec> args;                // keeps ObjectRef arguments alive until sent
    ObjectEntry* result = nullptr;                    // one reference held until the task is done
    std::string name;
    ResourceRequest resources;
    std::vector<LabelSelector> label_selector, preferred_labels;
    unsigned max_retries = 0;
    bool retry_exceptions = false;
    // Guarded by mu_. The task is destroyed only when it is finished and no waiter of its can
    // still fire (waiting == 0), whichever of the two comes last.
    int waiting = 0;
    bool finished = false;
    std::unique_ptr<ArgWaiter[]> waiters;
    bool sent = false;
    // Large by-value arguments this driver holds for the task's node, until the task is done.
    std::vector<ObjectId> held_args;
  };
  // This driver's view of an actor: its handles and the calls not yet sent. Guarded by mu_.
  struct ClusterActor {
    ActorId id;
    const detail::ActorClassEntry* cls = nullptr;
    std::string name;
    bool owned = false;  // created here: the head ends it when the last handle goes (unnamed)
    std::int64_t handles = 0;
    std::deque<std::uint64_t> outbox;  // calls not sent yet, in submission order
    bool released = false;             // no handles: forgotten once the outbox is empty
  };
  // What the head answered to a request.
  struct HeadReply {
    std::string error;  // set when the head refused
    bool lost = false;  // the connection to the head is gone
    bool found = false;
    ActorId actor;
    std::string class_name;
  };

  explicit ClusterCore(InitOptions options);
  void connect();
  void upload(const std::string& hash, std::span<const std::byte> bytes, const std::string& what);
  // Sends `msg` with a fresh request id and waits for the answer.
  HeadReply request(capnp::MallocMessageBuilder& msg, std::chrono::seconds timeout);
  // Checks the arguments, stores the pending task and registers its argument waiters; returns
  // the caller's reference. `task->actor` calls join the actor's outbox.
  std::shared_ptr<detail::RefToken> register_task(std::unique_ptr<PendingTask> task,
                                                  std::vector<detail::ArgSpec> args);
  void check_arguments(const std::vector<detail::ArgSpec>& args, const std::string& what) const;
  void argument_ready(std::uint64_t task) noexcept;
  void send_task(std::uint64_t task);
  // Writes the argument values (with mu_ held); returns the error of a failed ObjectRef argument.
  // Objects held on nodes, and values of this driver's too large for a control message (held here
  // for the node to fetch), go into `refs` instead.
  struct ArgRefOut {
    std::uint32_t index;
    ObjectId id;
    std::uint64_t size;
    std::string holder;         // set when this driver holds it (a large value of its own)
    bool by_reference = false;  // an ObjectRef parameter: the worker borrows it
  };
  // ActorHandle parameters go into `actors`.
  ErrorPtr write_args(capnp::List<capnp::Data>::Builder out, PendingTask& task,
                      std::vector<ArgRefOut>& refs, std::vector<ActorArg>& actors);
  void write_arg_refs(capnp::List<wire::ArgRef>::Builder out,
                      const std::vector<ArgRefOut>& refs) const;
  // An ObjectRef parameter's reference to the ready object behind `ref`: where it is held, or
  // this driver (which holds its value for readers from now until its entry goes). Raises like
  // hold_here.
  ArgRefOut reference_to(std::uint32_t index, const detail::RefToken& ref);
  // Holds `value` as object `id` for nodes to fetch (a copy; once per id). Raises like
  // ObjectTransfer::hold.
  void hold_here(const ObjectId& id, const detail::Payload& value);
  // Releases objects this driver held and tells the head to forget them.
  void release_held(const std::vector<ObjectId>& ids) noexcept;
  // Sends the actor's calls whose arguments are ready, in order, up to the first that is not.
  // By id: another thread may have flushed and forgotten the actor meanwhile.
  void flush_actor(const ActorId& id);

  // Objects held on nodes (cluster_objects.cpp). A task's large result stays on its node: the
  // driver's entry is ready with no bytes, and `remote_` says where the value is. `get` fetches it
  // over the data plane (once; the copy lives until the entry goes), and a task's or actor call's
  // argument travels as an ArgRef (node to node).
  struct RemoteFetch {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    detail::Payload value;
    ErrorPtr error;
  };
  struct RemoteObject {
    std::uint64_t size = 0;
    std::string holder;                  // its node's data address
    std::string holder_name;             // and its data plane's name
    std::shared_ptr<RemoteFetch> fetch;  // set once a fetch started
    bool borrowed = false;               // another driver's: its owner frees it, not us
  };
  // A reference to another driver's object held at `holder` (an ObjectRef parameter of a task
  // running in this worker): ready at once, fetched on `get`, never freed from here.
 public:
  std::shared_ptr<detail::RefToken> borrow(const ObjectId& id, std::uint64_t size,
                                           const std::string& holder,
                                           const std::string& holder_name);
  // A handle of this runtime on another driver's actor (an ActorHandle parameter): calls go
  // through this runtime's connection; it never stops the actor. A binding's class this process
  // does not have (arg.code set) is known from then on by its name and methods, for calls only.
  // Raises Error(invalid_argument) when the job's module has no such class.
  std::shared_ptr<detail::ActorToken> adopt_actor(const ActorArg& arg);

 private:
  void on_stored(std::uint64_t task, std::uint64_t size, const std::string& holder,
                 const std::string& holder_name);
  // The fetch of `id` (started now when none is under way or the last one failed), or nullptr
  // when `id` is not held on a node.
  std::shared_ptr<RemoteFetch> remote_fetch(const ObjectId& id);
  const detail::Payload& await_fetch(RemoteFetch& fetch, const ObjectId& id,
                                     detail::Deadline deadline);
  // The store erased an entry: a value held on a node is freed there.
  void object_erased(const ObjectId& id) noexcept;
  void on_message(const transport::Decoded<wire::Envelope>& message);
  void on_lost(const std::string& reason);
  // Once a second on the io thread: pushes of this driver's values that waited too long fail.
  void tick();
  void complete(std::uint64_t task, const detail::Payload* value, const ErrorPtr& error);
  void ensure_running() const;

  const InitOptions options_;
  const std::uint64_t owner_;
  std::string module_hash_;  // empty: no C++ job module
  std::mutex code_mu_;
  std::unordered_set<std::string> uploaded_code_;  // hashes the head has (guarded by code_mu_)
  std::atomic<std::uint64_t> next_sequence_{1};
  std::atomic<bool> shut_down_{false};
  Registry registry_;
  Counters counters_;
  std::shared_ptr<detail::Core> self_;  // handed to tokens; reset at shutdown
  ObjectStore store_;
  std::shared_ptr<BufferPool> buffers_;

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread io_thread_;
  asio::steady_timer tick_timer_{io_};
  transport::ConnectionPtr conn_;

  mutable std::mutex mu_;
  std::map<std::uint64_t, std::unique_ptr<PendingTask>> pending_;
  std::unordered_map<ActorId, std::unique_ptr<ClusterActor>> actors_;
  // What each actor created here was given by reference (ObjectRefs, ActorHandles), kept alive
  // while the actor may use it: until it is stopped or killed, or this driver shuts down (an
  // actor keeps what its constructor got, e.g. in members). Guarded by mu_; destroyed outside it
  // (releasing a token takes locks of its own).
  std::unordered_map<ActorId, std::vector<detail::ArgSpec>> actor_pins_;
  std::map<std::uint64_t, std::promise<HeadReply>> requests_;
  std::uint64_t next_request_ = 1;
  std::string lost_;  // why the connection to the head is gone, once it is

  // Never held while taking mu_ (the store's erase hook takes it from any thread).
  std::mutex remote_mu_;
  std::unordered_map<ObjectId, RemoteObject> remote_;
  std::unordered_set<ObjectId> held_here_;  // this driver's objects it holds for nodes
  transport::ConnectionPtr free_conn_;      // where FreeObjects go; guarded by remote_mu_
  std::unique_ptr<ObjectTransfer> objects_;
};

}  // namespace atl::runtime
