// The embedded runtime: the head's components (scheduler, actor directory) and the nodes'
// components (object store, node agents with their workers, actors) wired inside one process.
// The components talk through the same interfaces a cluster will put on the wire (NodeEndpoint
// between scheduler and nodes, detail::Core between the API and the runtime).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "atoll/runtime.hpp"
#include "runtime/actor_record.hpp"
#include "runtime/buffer_pool.hpp"
#include "runtime/clock.hpp"
#include "runtime/counters.hpp"
#include "runtime/node_agent.hpp"
#include "runtime/object_store.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/task_executor.hpp"

namespace atl::runtime {

class EmbeddedCore final : public detail::Core, private DependencySink {
 public:
  // Raises Error(invalid_argument) for invalid options or registrations.
  static std::shared_ptr<EmbeddedCore> create(InitOptions options);
  ~EmbeddedCore() override;

  const detail::FunctionEntry& function_by_key(std::uintptr_t key) const override;
  const detail::FunctionEntry& function_by_name(std::string_view name) const override;
  const detail::ActorClassEntry& actor_class(std::type_index type) const override;
  const detail::ActorClassEntry& actor_class_by_name(std::string_view name) const override;

  std::shared_ptr<detail::RefToken> submit_task(const detail::FunctionEntry& fn,
                                                std::vector<detail::ArgSpec> args,
                                                const TaskOptions* options) override;
  std::shared_ptr<detail::RefToken> put(detail::Payload value) override;
  const detail::Payload& get(const detail::RefToken& ref, detail::Deadline deadline) override;
  void await_all(std::span<const detail::RefToken* const> refs, detail::Deadline deadline) override;
  void wait(std::span<const detail::RefToken* const> refs, std::size_t num_ready,
            detail::Deadline deadline, std::vector<bool>& ready) override;
  bool cancel(const detail::RefToken& ref) override;

  std::shared_ptr<detail::ActorToken> create_actor(const detail::ActorClassEntry& cls,
                                                   std::vector<detail::ArgSpec> args,
                                                   const ActorOptions& options) override;
  std::shared_ptr<detail::ActorToken> find_actor(std::string_view name,
                                                 std::type_index type) override;
  std::shared_ptr<detail::RefToken> submit_actor_call(const detail::ActorToken& actor,
                                                      const detail::MethodEntry& method,
                                                      std::vector<detail::ArgSpec> args) override;
  void kill_actor(const detail::ActorToken& actor) override;

  void extend_registry(Registry&& more) override;

  MutableBuffer create_buffer(std::size_t size) override;
  RuntimeStats stats() const override;
  void shutdown() override;

  void release_object(void* entry) noexcept override;
  void release_actor(void* record) noexcept override;

 private:
  explicit EmbeddedCore(InitOptions options);
  void add_nodes(const std::vector<NodeOptions>& nodes);

  void dependencies_resolved(TaskRecord* task) noexcept override;
  void start_when_ready(TaskRecord* task);
  void schedule(TaskRecord* task) noexcept;
  void ensure_running() const;
  template <class Id>
  Id next_id() noexcept {
    return Id{owner_, next_sequence_.fetch_add(1, std::memory_order_relaxed)};
  }

  void maintenance_loop();
  void actor_died(ActorRecord* actor);
  void actor_reapable(ActorRecord* actor);
  void reap_actors();

  const InitOptions options_;
  const std::uint64_t owner_;
  std::atomic<std::uint64_t> next_sequence_{1};
  std::atomic<bool> shut_down_{false};

  Registry registry_;
  SteadyClock clock_;
  Counters counters_;
  std::shared_ptr<detail::Core> self_;  // handed to tokens; reset at shutdown
  ObjectStore store_;
  std::shared_ptr<BufferPool> buffers_;
  Scheduler scheduler_;
  TaskExecutor executor_;
  std::vector<std::unique_ptr<NodeAgent>> nodes_;

  ActorRecord::Services actor_services_;
  mutable std::mutex actors_mu_;
  std::unordered_map<ActorId, std::unique_ptr<ActorRecord>> actors_;
  std::unordered_map<std::string, ActorRecord*> named_actors_;
  std::vector<ActorRecord*> reapable_;

  std::mutex maintenance_mu_;
  std::condition_variable maintenance_cv_;
  bool stop_maintenance_ = false;
  std::thread maintenance_;
};

}  // namespace atl::runtime
