// The node agent's side of cluster actors: each actor the head places here lives in its own
// worker process, constructed once and then fed the actor's calls in the order the head sent
// them. Two threads per actor keep the worker busy without a round trip between calls: one sends
// calls from the mailbox, the other reports outcomes to the head as they come back.
//
// A call's object arguments held elsewhere are fetched by this node as soon as the call arrives
// (several calls' fetches at once); the sender hands calls to the worker strictly in order, so a
// call waits for its own arguments and later calls wait behind it. A result larger than 100 KiB
// stays here, as a task's does, until its owner frees it.
//
// An actor ends when the head stops it (after the calls already sent, once its owner released
// it), kills it (at once), or when its worker process dies or its constructor fails. Every call
// not yet answered then fails with ActorDiedError naming the cause, and the head learns the actor
// exited (so it frees the actor's resources).
//
// Thread-safety: `start`, `call`, `stop` and `kill_all` are called from the agent's io thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "atoll/ids.hpp"
#include "runtime/node_modules.hpp"
#include "runtime/node_tasks.hpp"
#include "runtime/object_transfer.hpp"
#include "runtime/worker_process.hpp"
#include "transport/connection.hpp"

namespace atl::runtime {

class NodeActors {
 public:
  // `objects` holds this node's large results and fetches calls' object arguments.
  NodeActors(std::string node_name, NodeModules& modules, ObjectTransfer& objects,
             WorkerLaunch launch);
  ~NodeActors();  // kills every actor still here

  void start(const transport::ConnectionPtr& head, wire::ActorSpec::Reader spec);
  void call(const transport::ConnectionPtr& head, wire::ActorCall::Reader call);
  void stop(const transport::ConnectionPtr& head, wire::StopActor::Reader stop);
  // The head is gone: it counts these actors dead, so end them.
  void kill_all(const std::string& reason);

 private:
  // Object arguments being fetched for a call (guarded by its actor's mu).
  struct Resolving {
    std::size_t left = 0;
    ErrorPtr error;
    std::vector<std::pair<std::uint32_t, Buffer>> values;  // by argument index
  };
  struct Call {
    std::uint64_t id = 0;
    std::string method;
    std::vector<Buffer> args;
    ObjectId result;                       // nil: the value always travels inline
    PassedArgs passed;                     // ObjectRef and ActorHandle parameters, for the worker
    std::shared_ptr<Resolving> resolving;  // set when it has object arguments to fetch
    std::vector<ObjectArg> refs;           // those, until their fetch starts
    bool ready() const { return !resolving || resolving->left == 0; }
  };
  struct Hosted {
    std::weak_ptr<Hosted> self;  // for fetches that may end after it was reaped
    ActorId id;
    std::string display;  // for messages: "actor 'name'" or "actor Class"
    transport::ConnectionPtr head;
    std::string module_hash, module_name, class_name;
    std::string code;  // a Python class's code hash (its worker is a Python one)
    std::vector<Buffer> ctor_args;
    PassedArgs ctor_passed;  // its constructor's ObjectRef and ActorHandle parameters
    std::uint32_t max_concurrency = 1;

    std::mutex mu;
    std::condition_variable cv;
    std::deque<Call> mailbox;
    std::map<std::uint64_t, ObjectId> in_flight;  // sent to the worker: the result's id
    bool draining = false;                        // stop after the calls already received
    std::string kill_reason;                      // set: end at once
    std::unique_ptr<WorkerProcess> worker;        // set by the sender once spawned
    bool started = false;                         // the sender runs (the module was at hand)
    bool finished = false;                        // both threads are done (or about to return)
    std::thread sender, reader;
  };

  void kill(Hosted& actor, const std::string& reason);
  // Starts fetching the object arguments of the next kPrefetchCalls calls in the mailbox that
  // have not started yet: arguments are fetched ahead of the worker, but memory for only a few
  // calls' worth is taken at once however many calls are queued.
  void prefetch(Hosted& actor);
  static constexpr std::size_t kPrefetchCalls = 4;
  // Reports a call's outcome: a large value stays here (the head learns its size).
  void report(Hosted& actor, std::uint64_t call_id, const ObjectId& result, WorkerOutcome& out);
  void run_sender(Hosted& actor, NodeModules::JobFiles files);
  void run_reader(Hosted& actor);
  // Fails every unanswered call, tells the head (`crashed`: its worker died, so the head may
  // restart it), and lets the actor be reaped.
  void end(Hosted& actor, const std::string& reason, bool crashed = false);
  void reap_finished();

  const std::string node_name_;
  NodeModules& modules_;
  ObjectTransfer& objects_;
  const WorkerLaunch launch_;
  mutable std::mutex mu_;
  // Shared: a fetch that ends after its actor was reaped finds it gone (weak references).
  std::map<ActorId, std::shared_ptr<Hosted>> actors_;
  // Why recently ended actors ended, for calls that arrive after them (oldest dropped first).
  std::map<ActorId, std::string> ended_;
  std::deque<ActorId> ended_order_;
  std::atomic<std::size_t> finished_{0};  // ended, not yet reaped
};

}  // namespace atl::runtime
