// One actor: its mailbox, the threads that run its methods, and its life from placement to death.
//
// Calls queue in submission order; with max_concurrency = 1 a single thread runs them one after
// another, waiting for each call's ObjectRef arguments in turn so order is kept. The actor dies
// when killed, when its constructor throws, when it cannot be placed, or — for an unnamed actor —
// after its last handle is gone and its queue is empty. Death fails every queued and running call
// with the cause. Threads are joined by the runtime's reaper, never by themselves.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "atoll/detail/core.hpp"
#include "runtime/counters.hpp"
#include "runtime/object_store.hpp"
#include "runtime/scheduler.hpp"

namespace atl::runtime {

struct ActorCall {
  const detail::MethodEntry* method = nullptr;
  std::vector<detail::ArgSpec> args;
  ObjectEntry* result = nullptr;  // holds a reference until the call is done
};

class ActorRecord {
 public:
  struct Services {
    ObjectStore& store;
    Scheduler& scheduler;
    Counters& counters;
    const std::shared_ptr<detail::Core>& core;
    std::function<void(ActorRecord*)> on_dead;      // once, when the actor dies
    std::function<void(ActorRecord*)> on_reapable;  // once: dead, threads done, no handles
  };

  ActorRecord(Services& services, ActorId id, const detail::ActorClassEntry& cls, std::string name,
              int max_concurrency, SchedulingClass* sched, std::vector<detail::ArgSpec> ctor_args);
  ~ActorRecord();
  ActorRecord(const ActorRecord&) = delete;
  ActorRecord& operator=(const ActorRecord&) = delete;

  const ActorId& id() const noexcept { return id_; }
  const std::string& name() const noexcept { return name_; }
  const std::string& display_name() const noexcept { return display_name_; }
  const detail::ActorClassEntry& actor_class() const noexcept { return cls_; }
  SchedulingClass* scheduling_class() const noexcept { return sched_; }
  bool dead() const;

  void add_handle();
  void release_handle();

  // Queues a call, or fails it at once when the actor is dead.
  void enqueue(const detail::MethodEntry& method, std::vector<detail::ArgSpec> args,
               ObjectEntry* result);
  // The scheduler placed the actor on `node` (its resources are charged): start the threads.
  void start(NodeState& node);
  void fail_placement(const ErrorPtr& cause);
  void kill(ErrorPtr cause);
  // Joins the actor's threads (skipping the calling thread, if it is one of them).
  void join();
  // Drops constructor arguments never consumed (an actor killed before it started).
  void drop_arguments();

 private:
  enum class State { pending, alive, dead };

  void thread_main(bool constructs);
  void construct();
  void execute(ActorCall& call);
  bool wait_for_work(std::unique_lock<std::mutex>& lock);
  // Marks the actor dead; returns the calls to fail. Call with mu_ held.
  std::deque<ActorCall> die_locked(ErrorPtr cause, std::vector<ObjectEntry*>& running);
  void finish_death(std::deque<ActorCall> queued, std::vector<ObjectEntry*> running,
                    const ErrorPtr& cause);
  void thread_exit();
  bool take_reapable_locked();

  Services& services_;
  const ActorId id_;
  const detail::ActorClassEntry& cls_;
  const std::string name_;
  const std::string display_name_;
  const int max_concurrency_;
  SchedulingClass* const sched_;
  std::vector<detail::ArgSpec> ctor_args_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::pending;
  ErrorPtr death_;
  bool draining_ = false;  // no handles left: end once the queue is empty
  std::deque<ActorCall> mailbox_;
  std::atomic<std::size_t> mailbox_size_{0};
  std::vector<ObjectEntry*> running_;  // results of calls in progress
  int sleeping_ = 0;
  int live_threads_ = 0;
  bool threads_started_ = false;
  bool threads_done_ = false;  // no thread will run again (or none ever started)
  bool counted_alive_ = false;
  std::int64_t handles_ = 0;
  bool reap_signalled_ = false;
  std::shared_ptr<void> instance_;
  NodeState* node_ = nullptr;
  std::vector<std::thread> threads_;
};

}  // namespace atl::runtime
