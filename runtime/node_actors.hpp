// The node agent's side of cluster actors: each actor the head places here lives in its own
// worker process, constructed once and then fed the actor's calls in the order the head sent
// them. Two threads per actor keep the worker busy without a round trip between calls: one sends
// calls from the mailbox, the other reports outcomes to the head as they come back.
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
#include "runtime/worker_process.hpp"
#include "transport/connection.hpp"

namespace atl::runtime {

class NodeActors {
 public:
  NodeActors(std::string node_name, NodeModules& modules, std::string worker_executable);
  ~NodeActors();  // kills every actor still here

  void start(const transport::ConnectionPtr& head, wire::ActorSpec::Reader spec);
  void call(const transport::ConnectionPtr& head, wire::ActorCall::Reader call);
  void stop(const transport::ConnectionPtr& head, wire::StopActor::Reader stop);
  // The head is gone: it counts these actors dead, so end them.
  void kill_all(const std::string& reason);

 private:
  struct Call {
    std::uint64_t id = 0;
    std::string method;
    std::vector<Buffer> args;
  };
  struct Hosted {
    ActorId id;
    std::string display;  // for messages: "actor 'name'" or "actor Class"
    transport::ConnectionPtr head;
    std::string module_hash, module_name, class_name;
    std::vector<Buffer> ctor_args;
    std::uint32_t max_concurrency = 1;

    std::mutex mu;
    std::condition_variable cv;
    std::deque<Call> mailbox;
    std::map<std::uint64_t, bool> in_flight;  // sent to the worker, not answered yet
    bool draining = false;                    // stop after the calls already received
    std::string kill_reason;                  // set: end at once
    std::unique_ptr<WorkerProcess> worker;    // set by the sender once spawned
    bool started = false;                     // the sender runs (the module was at hand)
    bool finished = false;                    // both threads are done (or about to return)
    std::thread sender, reader;
  };

  void kill(Hosted& actor, const std::string& reason);
  void run_sender(Hosted& actor, std::filesystem::path module_path);
  void run_reader(Hosted& actor);
  // Fails every unanswered call, tells the head, and lets the actor be reaped.
  void end(Hosted& actor, const std::string& reason);
  void reap_finished();

  const std::string node_name_;
  NodeModules& modules_;
  const std::string worker_executable_;
  mutable std::mutex mu_;
  std::map<ActorId, std::unique_ptr<Hosted>> actors_;
  // Why recently ended actors ended, for calls that arrive after them (oldest dropped first).
  std::map<ActorId, std::string> ended_;
  std::deque<ActorId> ended_order_;
  std::atomic<std::size_t> finished_{0};  // ended, not yet reaped
};

}  // namespace atl::runtime
