// A task (or an actor's placement) on its way through the runtime: waiting for its arguments,
// queued for resources, running on a node, then done.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "atoll/detail/core.hpp"
#include "runtime/clock.hpp"
#include "runtime/object_store.hpp"

namespace atl::runtime {

struct TaskRecord;
struct SchedulingClass;
struct NodeState;
class ActorRecord;

// Receives a task once all of its ObjectRef arguments are resolved.
class DependencySink {
 public:
  virtual void dependencies_resolved(TaskRecord* task) noexcept = 0;

 protected:
  ~DependencySink() = default;
};

struct DependencyWaiter final : Waiter {
  TaskRecord* task = nullptr;
  void on_ready() noexcept override;
};

struct TaskRecord {
  TaskId id;
  const detail::FunctionEntry* function = nullptr;  // a function call, or
  ActorRecord* actor = nullptr;                     // the placement of this actor
  bool places_actor = false;  // a placement (the embedded `actor`, or a cluster's remote actor)
  std::vector<detail::ArgSpec> args;
  std::string custom_name;
  SchedulingClass* cls = nullptr;
  ObjectEntry* result = nullptr;  // holds a reference until the record is destroyed
  int max_retries = 0;
  bool retry_exceptions = false;
  int attempts = 0;

  std::atomic<int> pending_dependencies{0};
  std::unique_ptr<DependencyWaiter[]> dependency_waiters;
  DependencySink* sink = nullptr;

  NodeState* node = nullptr;  // set by the scheduler when resources are charged
  Clock::time_point queued_at{};

  std::string_view name() const noexcept;
};

}  // namespace atl::runtime
