// The head's side of cluster work: job modules by hash, tasks from drivers placed onto node
// agents by the same Scheduler the embedded runtime uses (one RemoteNode endpoint per registered
// node), and actors placed the same way and then called through the head.
//
// Tasks: a task whose worker or node dies is placed again up to its max_retries; the result goes
// back to the driver that submitted it.
//
// Actors (head_actors.cpp): a driver's createActor registers the actor at once (its name
// reserved), then the scheduler places it; calls sent before that wait here and follow the
// StartActor to its node in order. An actor ends when killed (by any driver), when its owner
// releases its last handle, when its owner disconnects, when its node dies, or when its worker or
// constructor fails; its unanswered calls then fail with ActorDiedError saying why.
//
// Thread-safety: the methods may be called from any thread, but the head calls them from its one
// io thread, and some keep a record's address across an unlock (a task or lease being sent):
// running them on several threads at once needs those turned into lookups by id first. The
// scheduler is never called with mu_ held, since it calls back into RemoteNode; messages that
// must keep their order are sent with mu_ held.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "atoll/errors.hpp"
#include "runtime/membership.hpp"
#include "runtime/object_transfer.hpp"
#include "runtime/recent_ids.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/worker_values.hpp"
#include "transport/connection.hpp"

namespace atl::runtime {

class ClusterTasks {
 public:
  ClusterTasks(const Clock& clock, std::chrono::milliseconds infeasible_timeout);

  void node_joined(std::uint64_t node_id, const NodeInfo& info, transport::ConnectionPtr conn);
  // The node died or left: its running tasks are retried elsewhere or fail; its actors die.
  void node_left(std::uint64_t node_id);
  // The driver left: its actors end and its queued tasks are dropped.
  void driver_left(const transport::ConnectionPtr& driver);

  // Fills in what each live node in `nodes` has not handed out now.
  void fill_available(std::vector<NodeView>& nodes) const;

  void store_module(const std::string& hash, std::string bytes);
  std::optional<std::string> module(const std::string& hash) const;

  // A driver's task; invalid ones are answered at once with a failure. A task id the driver
  // already sent (among its last kRememberedSubmissions tasks and calls) is ignored: a re-sent
  // submission never runs twice, and is answered once. Actor calls likewise.
  void submit(const transport::ConnectionPtr& driver, wire::TaskSpec::Reader spec);
  void finished(std::uint64_t node_id, wire::TaskFinished::Reader done);
  // Fails tasks and actor placements that waited longer than the infeasible timeout, and relay
  // pushes that waited too long for their reader's channel.
  void expire();

  // Returns why the actor cannot be created, or "" once it is registered.
  std::string create_actor(const transport::ConnectionPtr& driver, wire::ActorSpec::Reader spec);
  void actor_call(const transport::ConnectionPtr& driver, wire::ActorCall::Reader call);
  void stop_actor(const transport::ConnectionPtr& driver, wire::StopActor::Reader stop);
  void actor_exited(std::uint64_t node_id, wire::ActorExited::Reader exited);
  struct FoundActor {
    ActorId id;
    std::string class_name;
  };
  std::optional<FoundActor> lookup_actor(const std::string& name) const;

  // Objects held on nodes (head_objects.cpp). The head is their directory, never their path:
  // a requester (driver or node) asks for an object to be pushed to its data plane; the head asks
  // the holder and routes a failure back.
  void fetch_object(const transport::ConnectionPtr& requester, wire::ObjectPush::Reader fetch);
  void object_pushed(const transport::ConnectionPtr& holder, wire::ObjectPush::Reader pushed);
  void free_objects(const transport::ConnectionPtr& driver, wire::FreeObjects::Reader free);
  // Starts the head's data plane, through which it relays objects to readers that cannot dial
  // their holder; returns its address (told to every peer in the handshake's Welcome).
  std::string start_relay(ObjectTransferOptions options);
  // Submissions and calls ignored because their driver had sent them already.
  std::uint64_t duplicates_ignored() const;
  // Reads served through the head's relay (a reader that could not dial the holder).
  std::uint64_t objects_relayed() const;

  static constexpr std::size_t kRememberedSubmissions = 1 << 16;

 private:
  struct RemoteTask {
    TaskRecord record;  // what the scheduler sees (tasks only)
    transport::ConnectionPtr driver;
    std::uint64_t driver_task_id = 0;
    std::string module_hash, module_name, function;  // function: the method, for actor calls
    std::string code;                                // a Python function's code hash (empty: C++)
    std::vector<std::string> args;
    ActorId actor;  // set for an actor call
    unsigned max_retries = 0;
    bool retry_exceptions = false;  // the task's own exceptions are retried too
    unsigned attempts = 0;
    std::uint64_t node_id = 0;  // where it runs now (0: queued)
    std::uint64_t lease = 0;    // the lease it runs on (tasks)
    std::string last_node;
    bool abandoned = false;  // its driver left while it was queued: dropped when placed
    ObjectId result;         // the driver's id for the result (nil from older drivers)
    struct ArgRef {
      std::uint32_t index = 0;
      ObjectId id;
      std::uint64_t size = 0;
      std::string driver_address;  // set when the driver holds it itself
      std::string driver_name;     // its data plane's name then
      bool by_reference = false;   // an ObjectRef parameter: passed to the worker, not fetched
    };
    std::vector<ArgRef> arg_refs;      // arguments held on nodes
    std::vector<ActorArg> actor_args;  // ActorHandle parameters, passed on as they are
  };

  // One charge of a class's resources on a node, on which that class's tasks run one after
  // another. Short tasks are pipelined: a few are sent ahead, so the node's worker never waits
  // for a round trip to the head between them. The resources go back when the last one is done.
  struct Lease {
    std::uint64_t node_id = 0;
    SchedulingClass* cls = nullptr;
    NodeState* node = nullptr;
    std::size_t in_flight = 0;
  };

  struct RemoteActor {
    enum class State { pending, placed, dead };
    ActorId id;
    TaskRecord placement;  // what the scheduler sees
    transport::ConnectionPtr owner;
    std::string name, class_name, module_hash, module_name, display;
    std::string code;  // a Python class's code hash (empty: C++)
    std::vector<std::string> args;
    std::vector<RemoteTask::ArgRef> arg_refs;  // ObjectRef parameters of its constructor
    std::vector<ActorArg> actor_args;          // and its ActorHandle parameters
    std::vector<std::pair<std::string, double>> resources;
    std::uint32_t max_concurrency = 1;
    int restarts_left = 0;  // after crashes (-1: always); its arguments are kept while > 0
    State state = State::pending;
    bool queued = true;            // the scheduler holds `placement`
    bool holds_resources = false;  // placed, and its node has not reported it exited
    std::uint64_t node_id = 0;
    NodeState* node = nullptr;
    std::vector<std::uint64_t> buffered;  // calls (head ids) waiting for the placement
    bool release_when_placed = false;
    bool released = false;  // its owner dropped the last handle: it never restarts
    std::string death;
  };

  struct RemoteNode final : NodeEndpoint {
    ClusterTasks* owner = nullptr;
    std::uint64_t id = 0;
    std::string name;
    transport::ConnectionPtr conn;
    std::string data_address, data_name;
    NodeState* state = nullptr;
    void run_task(TaskRecord* task) override { owner->send_run(*this, task); }
    void place_actor(TaskRecord* placement) override { owner->send_start(*this, placement); }
  };

  void send_run(RemoteNode& node, TaskRecord* record);
  // Sends queued tasks of the lease's class on it (those taken from the scheduler's queue).
  void send_on_lease(RemoteNode& node, std::uint64_t lease, const std::vector<TaskRecord*>& more);
  void send_on_lease_locked(RemoteNode& node, RemoteTask& task, std::uint64_t lease);
  // How many tasks of `cls` a lease carries at once: more for classes whose tasks are short.
  std::size_t pipeline_depth_locked(SchedulingClass* cls) const;
  static constexpr double kLeaseQueuedMicros = 4000;
  static constexpr std::size_t kMaxLeaseDepth = 64;
  void retry_or_fail(std::uint64_t task_id, const std::string& why);
  // Sends the outcome to the driver and forgets the task.
  // `traceback` and `details`: a binding's exception, passed on as the node reported it.
  void reply(std::uint64_t task_id, const std::string* value, const std::string& remote_type,
             const std::string& message, const std::string& traceback = {},
             const std::string& details = {});
  void placement_failed(TaskRecord* record, const std::string& message);

  // Actors; the *_locked ones with mu_ held.
  void send_start(RemoteNode& node, TaskRecord* placement);
  void forward_call_locked(const RemoteActor& actor, RemoteTask& call, std::uint64_t call_id);
  // A submission's object arguments (a task's, an actor call's or an actor constructor's).
  static std::vector<RemoteTask::ArgRef> read_arg_refs(capnp::List<wire::ArgRef>::Reader refs);
  // Queues a task that raised again, when it asked for that (retry_exceptions) and has attempts
  // left; false otherwise (the caller then reports the failure).
  bool retry_exception(std::uint64_t task_id, const std::string& remote_type);
  // Why a task or actor cannot run: its C++ module or Python code was not uploaded; or "".
  std::string missing_code_locked(const std::string& module_hash, const std::string& code) const;
  // Binds the result's owner id (when not nil) to `driver` (objects are freed by their owner's
  // driver) and records `driver` as the holder of arguments it holds itself. Returns why the
  // submission is refused, or "".
  std::string accept_objects_locked(const transport::ConnectionPtr& driver, const ObjectId& result,
                                    const std::vector<RemoteTask::ArgRef>& refs);
  // The object arguments with their holders' addresses as known now (none: lost, and the node
  // fails the call saying so).
  void write_arg_refs_locked(capnp::List<wire::ArgRef>::Builder out,
                             const std::vector<RemoteTask::ArgRef>& refs);
  void send_stop_locked(const RemoteActor& actor, bool kill);
  // Marks the actor dead (with mu_ held) and collects its calls still waiting for a placement,
  // which the caller fails after unlocking (fail_calls).
  // A crashed actor with restarts left goes back to pending (the caller then submits its
  // placement again, outside the lock); false when it has none left.
  bool restart_locked(RemoteActor& actor);
  void end_actor(RemoteActor& actor, const std::string& why, bool kill_on_node,
                 std::vector<std::pair<std::uint64_t, std::string>>& failed);
  void fail_calls(const std::vector<std::pair<std::uint64_t, std::string>>& failed);

  // Objects, with mu_ held. A push the head asked a holder for, until the holder says how it went.
  struct PendingPush {
    transport::ConnectionPtr requester;             // null: the head's own relay fetch
    const transport::Connection* holder = nullptr;  // compared, never dereferenced
    std::uint64_t attempt = 0;  // the requester's fetch attempt: the holder's answer names it
  };
  // Who holds an object: a node (its large task result) or a driver (a large value it sends as
  // an argument).
  struct Holder {
    std::uint64_t node_id = 0;  // 0: a driver
    std::uint64_t size = 0;
    transport::ConnectionPtr conn;  // the holder's control connection
    std::string address;            // its data plane
    std::string name;               // the name its data plane gives in handshakes
  };
  const Holder* holder_locked(ObjectId id) const;  // null: no live holder has it
  struct FailedPush {
    transport::ConnectionPtr requester;  // null: the head's own relay fetch
    ObjectId id;
    std::string peer;
    std::uint64_t attempt = 0;
  };
  struct RelayReader {
    transport::ConnectionPtr requester;
    std::string peer;
    std::uint64_t attempt = 0;
  };
  // Fetches `id` from its holder into the relay (once for all its readers), then pushes it on.
  void relay_fetch(const transport::ConnectionPtr& requester, ObjectId id, const std::string& peer,
                   std::uint64_t attempt);
  void relayed(ObjectId id, const Buffer& value, ErrorPtr error);
  // The node left: its objects are lost; pushes it was asked for fail (the caller tells their
  // requesters after unlocking, with send_push_failures), pushes to it are dropped.
  std::vector<FailedPush> objects_left_with_node_locked(std::uint64_t node_id);
  void send_push_failures(const std::vector<FailedPush>& failed, const std::string& why);
  // The driver left: every object its owner ids made is freed on the nodes; pushes it was asked
  // for fail (returned, for the caller to send after unlocking).
  std::vector<FailedPush> objects_left_with_driver_locked(const transport::ConnectionPtr& driver);
  // Answers a stored result: the driver learns its size and where it is held.
  void reply_stored(std::uint64_t task_id, std::uint64_t size);
  void forget_dead_locked();

  Scheduler scheduler_;
  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, std::unique_ptr<RemoteTask>> tasks_;
  std::unordered_map<std::uint64_t, std::unique_ptr<RemoteNode>> nodes_;
  std::unordered_map<std::uint64_t, Lease> leases_;
  std::uint64_t next_lease_ = 1;
  std::unordered_map<SchedulingClass*, double> run_micros_;  // moving average per class
  std::unordered_map<ActorId, std::unique_ptr<RemoteActor>> actors_;
  std::unordered_map<std::string, ActorId> named_actors_;  // live actors only
  // Which driver connection each actor owner id belongs to (compared, never dereferenced).
  std::unordered_map<std::uint64_t, const transport::Connection*> owners_;
  std::deque<ActorId> dead_actors_;  // oldest first; kept to answer late calls, then forgotten
  std::map<std::string, std::string> modules_;
  std::uint64_t next_task_ = 1;
  // Task and call ids each driver connection sent (keys compared, never dereferenced).
  std::unordered_map<const transport::Connection*, RecentIds> submitted_;
  std::unordered_map<ObjectId, Holder> holders_;
  std::map<std::pair<ObjectId, std::string>, PendingPush> pushes_;  // by (object, peer)
  std::unordered_map<ObjectId, std::vector<RelayReader>> relays_;   // objects being relayed
  // Last: destroyed first, while what its callbacks touch is still here.
  std::unique_ptr<ObjectTransfer> relay_;
  std::uint64_t duplicates_ = 0;
  std::uint64_t relayed_ = 0;
  // With mu_ held: false (and counted) when `driver` sent `id` before.
  bool first_submission_locked(const transport::ConnectionPtr& driver, std::uint64_t id);
};

}  // namespace atl::runtime
