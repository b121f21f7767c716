// The node side of a task: resolve its arguments, invoke it on a worker thread, store the result
// or the error, retry when asked, and hand its resources back to the scheduler.
//
// While a task blocks in `get` or `wait`, the executor lends the task's resources to the
// scheduler (BlockHooks), so nested tasks can run on the slot; they are reclaimed on resume.
#pragma once

#include <memory>

#include "runtime/awaiting.hpp"
#include "runtime/counters.hpp"
#include "runtime/error_info.hpp"
#include "runtime/object_store.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/task_record.hpp"

namespace atl::runtime {

class TaskExecutor {
 public:
  TaskExecutor(ObjectStore& store, Scheduler& scheduler, Counters& counters,
               const std::shared_ptr<detail::Core>& core)
      : store_(store), scheduler_(scheduler), counters_(counters), core_(core) {}

  // Runs the task and then, while the scheduler hands back more of the same class, those too.
  void run(TaskRecord* task);

  // Fails a task that will not run (infeasible, dependency failed, shutdown) and disposes of it.
  void fail(TaskRecord* task, ErrorPtr error);
  // Disposes of a finished task: releases what it pinned.
  void retire(TaskRecord* task);

  // The hooks of the task running on this thread, if any.
  static BlockHooks* current_hooks() noexcept;

 private:
  TaskRecord* run_one(TaskRecord* task);
  bool invoke(TaskRecord* task);  // true: retry

  ObjectStore& store_;
  Scheduler& scheduler_;
  Counters& counters_;
  const std::shared_ptr<detail::Core>& core_;
};

}  // namespace atl::runtime
