// A driver connected to a cluster: the same Core interface as the embedded runtime, with tasks
// sent to the head (which places them on node agents) instead of run in this process. Objects the
// driver creates live in its own store, shared with the embedded runtime's code (object_ops), and
// ObjectRef arguments are resolved here before a task is sent, so nodes receive values.
//
// Not yet in cluster mode (Error(unimplemented)): actors, ObjectRef parameters passed unresolved,
// and Buffers crossing processes.
#pragma once

#include <asio.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "atoll/runtime.hpp"
#include "runtime/buffer_pool.hpp"
#include "runtime/counters.hpp"
#include "runtime/object_store.hpp"
#include "transport/connection.hpp"

namespace atl::runtime {

class ClusterCore final : public detail::Core {
 public:
  // Connects, authenticates and uploads the job's module. Raises Error(disconnected) with the
  // reason when the head cannot be reached or refuses, Error(invalid_argument) for bad options.
  static std::shared_ptr<ClusterCore> create(InitOptions options);
  ~ClusterCore() override;

  const detail::FunctionEntry& function_by_key(std::uintptr_t key) const override;
  const detail::FunctionEntry& function_by_name(std::string_view name) const override;
  const detail::ActorClassEntry& actor_class(std::type_index type) const override;

  std::shared_ptr<detail::RefToken> submit_task(const detail::FunctionEntry& fn,
                                                std::vector<detail::ArgSpec> args,
                                                const TaskOptions* options) override;
  std::shared_ptr<detail::RefToken> put(detail::Payload value) override;
  const detail::Payload& get(const detail::RefToken& ref, detail::Deadline deadline) override;
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

  MutableBuffer create_buffer(std::size_t size) override;
  RuntimeStats stats() const override;
  void shutdown() override;
  void release_object(void* entry) noexcept override;
  void release_actor(void* record) noexcept override;

 private:
  struct PendingTask;
  struct ArgWaiter final : Waiter {
    ClusterCore* core = nullptr;
    std::uint64_t task = 0;
    void on_ready() noexcept override { core->argument_ready(task); }
  };
  struct PendingTask {
    const detail::FunctionEntry* function = nullptr;
    std::vector<detail::ArgSpec> args;  // keeps ObjectRef arguments alive until sent
    ObjectEntry* result = nullptr;      // one reference held until the task is done
    std::string name;
    std::vector<std::pair<std::string, double>> resources;
    unsigned max_retries = 0;
    // Guarded by mu_. The task is destroyed only when it is finished and no waiter of its can
    // still fire (waiting == 0), whichever of the two comes last.
    int waiting = 0;
    bool finished = false;
    std::unique_ptr<ArgWaiter[]> waiters;
    bool sent = false;
  };

  explicit ClusterCore(InitOptions options);
  void connect();
  void argument_ready(std::uint64_t task) noexcept;
  void send_task(std::uint64_t task);
  void on_message(const transport::Decoded<wire::Envelope>& message);
  void on_lost(const std::string& reason);
  void complete(std::uint64_t task, const detail::Payload* value, const ErrorPtr& error);
  void ensure_running() const;

  const InitOptions options_;
  const std::uint64_t owner_;
  std::string module_hash_;
  std::atomic<std::uint64_t> next_sequence_{1};
  std::atomic<bool> shut_down_{false};
  Registry registry_;
  Counters counters_;
  std::shared_ptr<detail::Core> self_;  // handed to tokens; reset at shutdown
  ObjectStore store_;
  std::shared_ptr<BufferPool> buffers_;

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread io_thread_;
  transport::ConnectionPtr conn_;
  std::promise<std::string> uploaded_;  // "" once the head stored the module, else the error

  mutable std::mutex mu_;
  std::map<std::uint64_t, std::unique_ptr<PendingTask>> pending_;
  std::string lost_;  // why the connection to the head is gone, once it is
};

}  // namespace atl::runtime
