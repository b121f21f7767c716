#include "runtime/node_agent.hpp"

#include "runtime/actor_record.hpp"

namespace atl::runtime {

NodeAgent::NodeAgent(TaskExecutor& executor, std::size_t max_threads, std::size_t keep_threads)
    : executor_(executor),
      pool_([&executor](TaskRecord* t) { executor.run(t); }, max_threads, keep_threads) {}

void NodeAgent::run_task(TaskRecord* task) {
  if (!pool_.submit(task))
    executor_.fail(task, make_error(ErrorKind::shutdown, "runtime shut down"));
}

void NodeAgent::place_actor(TaskRecord* placement) {
  placement->actor->start(*placement->node);
  delete placement;
}

}  // namespace atl::runtime
