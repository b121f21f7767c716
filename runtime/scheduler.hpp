// The head's scheduler: resource accounting per node and placement of ready tasks.
//
// Tasks with the same demand and label selectors share a scheduling class with its own FIFO
// queue, so one class waiting for a GPU never blocks tasks that only need a CPU. Placement picks,
// among the nodes whose total resources and labels can ever satisfy the class, the one that fits
// now and matches the most preferred labels, then the least loaded. A class no node can satisfy
// waits `infeasible_timeout` (a node may join) and then fails with InfeasibleError.
//
// Scheduling runs on the submitting and finishing threads (no scheduler thread): dispatch happens
// after the lock is released. When a task finishes, the next queued task of its class that fits
// the same node is handed straight back to the finishing worker (lease reuse).
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/clock.hpp"
#include "runtime/error_info.hpp"
#include "runtime/resources.hpp"
#include "runtime/task_record.hpp"

namespace atl::runtime {

// What the scheduler asks of a node. The embedded runtime calls the node directly; a cluster
// sends these over the control connection.
class NodeEndpoint {
 public:
  virtual void run_task(TaskRecord* task) = 0;  // resources are already charged
  virtual void place_actor(TaskRecord* placement) = 0;

 protected:
  ~NodeEndpoint() = default;
};

struct NodeState {
  std::size_t index = 0;
  std::string name;
  Labels labels;
  ResourceVector total;
  ResourceVector available;  // guarded by the scheduler's lock
  NodeEndpoint* endpoint = nullptr;
  bool alive = true;  // guarded by the scheduler's lock; a removed node is never chosen again
};

struct SchedulingClass {
  ResourceDemand demand;
  std::vector<LabelSelector> hard, soft;
  std::deque<TaskRecord*> queue;
  // Nodes that can ever satisfy the class, best soft-label score first.
  std::vector<std::pair<NodeState*, std::size_t>> feasible;
  std::string description;
};

class Scheduler {
 public:
  using FailFn = std::function<void(TaskRecord*, ErrorPtr)>;

  Scheduler(const Clock& clock, std::chrono::nanoseconds infeasible_timeout, FailFn fail);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Adds a node; classes that were infeasible and now fit get their waiting tasks dispatched.
  NodeState& add_node(std::string name, Labels labels, const ResourceVector& total,
                      NodeEndpoint* endpoint);
  // The same, from declared amounts (memory in bytes); raises Error(invalid_argument) for a bad
  // amount. Thread-safe, unlike building a ResourceVector through names().
  NodeState& add_node(std::string name, Labels labels,
                      const std::vector<std::pair<std::string, double>>& resources,
                      NodeEndpoint* endpoint);
  // The node died or left: nothing more is placed on it. Classes only it could serve wait for
  // the infeasible timeout again. Tasks running there are the caller's to retry or fail.
  void remove_node(NodeState& node);
  ResourceNames& names() noexcept { return names_; }  // only while adding nodes

  SchedulingClass* default_task_class() const noexcept { return default_class_; }
  // Raise Error(invalid_argument) for invalid amounts or selectors.
  SchedulingClass* class_for(const TaskOptions& options);
  SchedulingClass* class_for(const ActorOptions& options);

  // Queues a ready task (or places it at once). False when the scheduler has stopped; the caller
  // keeps the task.
  bool submit(TaskRecord* task);
  // Returns `demand` to the node and dispatches what now fits. Returns the next task of `prefer`
  // placed on the same node, already charged, for the caller to run itself (or nullptr); never
  // an actor's placement, even one queued in the same class.
  TaskRecord* release(NodeState& node, const ResourceDemand& demand, SchedulingClass* prefer);
  // Takes up to `n` queued tasks of `cls` to run on `node` after a task of `cls` that holds its
  // resources there (pipelining on one lease): nothing more is charged. Empty when none wait or
  // the node cannot serve the class.
  std::vector<TaskRecord*> take_queued(SchedulingClass& cls, NodeState& node, std::size_t n);
  // A worker blocked in `get` lends its resources; it takes them back (even into the negative)
  // when it resumes.
  void lend(NodeState& node, const ResourceDemand& demand);
  void reclaim(NodeState& node, const ResourceDemand& demand);

  // Fails tasks that waited longer than the infeasible timeout.
  void expire(Clock::time_point now);
  bool has_infeasible() const;
  std::size_t queued() const;
  // Refuses further work and returns every queued task.
  std::vector<TaskRecord*> stop();

  std::string describe_nodes() const;
  // What `node` has not handed out now, by resource name (memory in bytes; never negative).
  std::vector<std::pair<std::string, double>> available(const NodeState& node) const;

 private:
  template <class Options>
  SchedulingClass* class_for_options(const Options& options, double default_cpus);
  SchedulingClass* intern_locked(ResourceDemand demand, std::vector<LabelSelector> hard,
                                 std::vector<LabelSelector> soft);
  void compute_feasible_locked(SchedulingClass& c);
  NodeState* pick_locked(const SchedulingClass& c) const;
  void collect_locked(std::vector<TaskRecord*>& out);
  static void send(TaskRecord* task);
  std::string describe_nodes_locked() const;

  const Clock& clock_;
  const std::chrono::nanoseconds infeasible_timeout_;
  FailFn fail_;

  mutable std::mutex mu_;
  bool stopped_ = false;
  ResourceNames names_;
  std::vector<std::unique_ptr<NodeState>> nodes_;
  std::vector<std::unique_ptr<SchedulingClass>> classes_;
  std::unordered_map<std::string, SchedulingClass*> classes_by_key_;
  SchedulingClass* default_class_ = nullptr;
  std::size_t queued_ = 0;              // tasks in feasible classes' queues
  std::size_t infeasible_waiting_ = 0;  // tasks in infeasible classes' queues
};

}  // namespace atl::runtime
