#include "runtime/task_record.hpp"

#include "runtime/actor_record.hpp"

namespace atl::runtime {

void DependencyWaiter::on_ready() noexcept {
  if (task->pending_dependencies.fetch_sub(1, std::memory_order_acq_rel) == 1)
    task->sink->dependencies_resolved(task);
}

std::string_view TaskRecord::name() const noexcept {
  if (!custom_name.empty()) return custom_name;
  if (function != nullptr) return function->name;
  if (actor != nullptr) return actor->display_name();
  return "task";
}

}  // namespace atl::runtime
