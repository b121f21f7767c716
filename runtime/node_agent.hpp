// A node: its worker threads for tasks, and the actors placed on it. In the embedded runtime the
// scheduler calls it directly through NodeEndpoint; in a cluster a node agent process receives the
// same calls over the control connection.
#pragma once

#include <string>
#include <vector>

#include "runtime/scheduler.hpp"
#include "runtime/task_executor.hpp"
#include "runtime/worker_pool.hpp"

namespace atl::runtime {

class NodeAgent final : public NodeEndpoint {
 public:
  NodeAgent(TaskExecutor& executor, std::size_t max_threads, std::size_t keep_threads);

  void run_task(TaskRecord* task) override;
  void place_actor(TaskRecord* placement) override;

  // Joins the workers; returns tasks that were handed over but never started.
  std::vector<TaskRecord*> stop() { return pool_.stop(); }
  std::size_t worker_threads() const { return pool_.thread_count(); }

 private:
  TaskExecutor& executor_;
  WorkerPool pool_;
};

}  // namespace atl::runtime
