#include "runtime/task_executor.hpp"

#include "runtime/actor_record.hpp"
#include "runtime/invocation.hpp"

namespace atl::runtime {

namespace {

struct ExecutionContext final : BlockHooks {
  ExecutionContext(Scheduler& s, TaskRecord* t) : scheduler(s), task(t) {}
  void on_block() noexcept override { scheduler.lend(*task->node, task->cls->demand); }
  void on_resume() noexcept override { scheduler.reclaim(*task->node, task->cls->demand); }
  Scheduler& scheduler;
  TaskRecord* task;
};

// The task this thread is executing: per-thread execution state, like std::this_thread, so that
// a `get` deep inside user code knows whose CPU slot it may lend.
thread_local ExecutionContext* current_context = nullptr;

class ContextScope {
 public:
  explicit ContextScope(ExecutionContext* ctx) : outer_(std::exchange(current_context, ctx)) {}
  ~ContextScope() { current_context = outer_; }

 private:
  ExecutionContext* outer_;
};

}  // namespace

BlockHooks* TaskExecutor::current_hooks() noexcept {
  return current_context;
}

void TaskExecutor::run(TaskRecord* task) {
  while (task != nullptr) task = run_one(task);
}

TaskRecord* TaskExecutor::run_one(TaskRecord* task) {
  NodeState& node = *task->node;
  SchedulingClass* cls = task->cls;
  // A result resolved before the task ran means it was cancelled while queued.
  bool retry = !task->result->resolved() && invoke(task);
  TaskRecord* next = scheduler_.release(node, cls->demand, cls);
  if (!retry)
    retire(task);
  else if (!scheduler_.submit(task))
    fail(task, make_error(ErrorKind::shutdown, "runtime shut down"));
  return next;
}

bool TaskExecutor::invoke(TaskRecord* task) {
  ArgValues values(task->args.size());
  if (ErrorPtr failed = collect_arguments(task->args, values)) {
    store_.fail(task->result, std::move(failed));
    return false;
  }
  detail::CallFrame frame{task->args, values.span(), core_};
  ExecutionContext ctx(scheduler_, task);
  try {
    detail::Payload out;
    {
      ContextScope scope(&ctx);
      out = task->function->invoke(frame);
    }
    store_.seal(task->result, std::move(out));
    return false;
  } catch (...) {
    ++task->attempts;
    if (task->retry_exceptions && task->attempts <= task->max_retries && !task->result->resolved())
      return true;
    store_.fail(task->result,
                error_from_current_exception(std::string(task->name()), task->node->name));
    return false;
  }
}

void TaskExecutor::fail(TaskRecord* task, ErrorPtr error) {
  if (task->actor != nullptr) {
    task->actor->fail_placement(std::move(error));
    delete task;
    return;
  }
  store_.fail(task->result, std::move(error));
  retire(task);
}

void TaskExecutor::retire(TaskRecord* task) {
  if (task->result != nullptr) store_.release(task->result);
  delete task;
  counters_.tasks_finished.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace atl::runtime
