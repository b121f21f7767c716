// The worker process: load the job's module (after checking its hash), then run what the node
// agent sends until it closes the socket. A task worker runs functions one at a time. An actor
// worker first receives ConstructActor, then runs the actor's methods: in arrival order with
// max_concurrency 1, on that many threads otherwise.
#include <capnp/message.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "atoll/errors.hpp"
#include "atoll/registry.hpp"
#include "atoll/runtime.hpp"
#include "runtime/cluster_core.hpp"
#include "runtime/cluster_messages.hpp"
#include "runtime/invocation.hpp"
#include "runtime/module_store.hpp"
#include "runtime/worker_process.hpp"
#include "runtime/worker_values.hpp"
#include "transport/codec.hpp"

namespace atl::runtime {

namespace {

struct Call {
  std::uint64_t id = 0;
  std::string name;  // a function, or a method of the hosted actor
  std::vector<detail::ArgSpec> args;
};

// What a worker needs to become a driver of the cluster when its code submits nested tasks.
struct ClusterAccess {
  std::string head_address, token;
  std::string data_host = "127.0.0.1", data_advertise_host;
  ModuleFn module = nullptr;
  std::string module_path, module_name;
};

// The worker's end of the socketpair, shared with the release callbacks of lent values: those
// may run after the loop is gone (job code may keep a Buffer in a static), and then send nothing.
struct NodeChannel {
  explicit NodeChannel(int fd) : fd(fd) {}
  const int fd;
  std::mutex mu;     // one frame at a time; no Buffer is released under it (see `released`)
  bool open = true;  // false once the loop has ended
  bool send(std::span<const std::byte> frame, const OutgoingFds& fds) {
    std::lock_guard lock(mu);
    return open && transport::send_all_with_fds(fd, frame, fds.fds);
  }
};

class WorkerLoop {
 public:
  WorkerLoop(int fd, Registry& registry, ClusterAccess cluster, const WorkerBinding* binding)
      : fd_(fd),
        channel_(std::make_shared<NodeChannel>(fd)),
        registry_(registry),
        cluster_(std::move(cluster)),
        binding_(binding) {}
  ~WorkerLoop() {
    stop_threads();
    close_all(fds_);
    {
      std::lock_guard lock(runtime_mu_);
      runtime_.reset();  // leaves the cluster: the head cleans up what it submitted
    }
    std::lock_guard lock(channel_->mu);
    channel_->open = false;
  }

  // Returns the process's exit status once the node agent closes the socket or misbehaves.
  int run() {
    transport::FrameDecoder decoder(kMaxWorkerFrameBytes);
    std::byte buf[64 * 1024];
    for (;;) {
      while (auto frame = decoder.next()) {
        auto decoded = transport::decode_worker_message(std::move(*frame));
        if (!decoded.message) return 2;  // the node agent sent garbage: a bug or an attack
        auto m = decoded.message->root();
        try {
          if (m.which() == wire::WorkerMessage::CONSTRUCT && cls_ == nullptr && !ran_tasks_) {
            auto c = m.getConstruct();
            auto args = arguments(c.getArgs(), c.getSharedArgs());
            std::string why = borrow(c.getObjectRefs(), c.getActorArgs(), args);
            std::string cls = c.getClassName();
            if (why.empty()) why = load_code(cls, c.getCode(), true);
            if (!why.empty()) {
              if (!send_failure(0, "atl::Error", why)) return 0;
              continue;
            }
            if (!construct(cls, c.getMaxConcurrency(), std::move(args))) return 0;
          } else if (m.which() == wire::WorkerMessage::CLUSTER) {
            std::lock_guard lock(runtime_mu_);
            cluster_.head_address = m.getCluster().getHeadAddress();
            cluster_.token = m.getCluster().getToken();
            cluster_.data_host = m.getCluster().getDataHost();
            cluster_.data_advertise_host = m.getCluster().getDataAdvertiseHost();
          } else if (m.which() == wire::WorkerMessage::EXECUTE) {
            auto e = m.getExecute();
            Call call{e.getTaskId(), e.getFunction(), arguments(e.getArgs(), e.getSharedArgs())};
            std::string why = borrow(e.getObjectRefs(), e.getActorArgs(), call.args);
            if (why.empty()) why = load_code(call.name, e.getCode(), false);
            if (!why.empty()) {
              if (!send_failure(call.id, "atl::Error", why)) return 0;
              continue;
            }
            if (!dispatch(std::move(call))) return 0;
          } else {
            return 2;
          }
        } catch (const Error&) {
          return 2;  // shared values the node agent did not send as it said: a bug
        }
      }
      if (decoder.failed()) return 2;
      ssize_t n = transport::receive_with_fds(fd_, buf, fds_);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EMSGSIZE) return 2;
      if (n <= 0) return 0;  // the node agent is done with this worker: finish queued calls
      decoder.feed({buf, static_cast<std::size_t>(n)});
    }
  }

 private:
  bool send(capnp::MessageBuilder& msg, const OutgoingFds& fds = {}) {
    return channel_->send(transport::encode(msg), fds);
  }

  std::vector<detail::ArgSpec> arguments(capnp::List<capnp::Data>::Reader args,
                                         capnp::List<wire::SharedValue>::Reader shared) {
    // Runs wherever the last reference to a lent value goes: any thread, never under the
    // channel's lock, possibly after this loop has ended.
    auto released = [channel = channel_](std::uint64_t lend) {
      transport::ControlMessage msg;
      msg.initRoot<wire::WorkerMessage>().setReleased(lend);
      channel->send(transport::encode(msg), {});
    };
    return read_arguments(args, shared, fds_, released);
  }

  // Makes each ObjectRef parameter a reference of this worker's cluster runtime to the object
  // where it is held, and each ActorHandle parameter a handle of it. Returns why that is not
  // possible, or "".
  std::string borrow(capnp::List<wire::ArgRef>::Reader refs,
                     capnp::List<wire::ActorArg>::Reader actors,
                     std::vector<detail::ArgSpec>& args) {
    if (refs.size() == 0 && actors.size() == 0) return {};
    try {
      auto core = std::static_pointer_cast<ClusterCore>(runtime_core());
      for (auto r : refs) {
        auto& a = args.at(r.getIndex());
        a.kind = detail::ArgSpec::Kind::pass_ref;
        a.ref =
            core->borrow(object_key(r.getObject()), r.getSize(), r.getHolder(), r.getHolderName());
      }
      for (const auto& actor : read_actor_args(actors)) {
        auto& a = args.at(actor.index);
        a.kind = detail::ArgSpec::Kind::actor;
        a.actor = core->adopt_actor(actor);
      }
    } catch (const std::exception& e) {
      return std::string("an ObjectRef or ActorHandle parameter: ") + e.what();
    }
    return {};
  }

  // A call that carries a binding's code runs the entry registered for that code, which is loaded
  // on first use and named by its hash: two jobs' workers may both have an 'f'. Renames `name` to
  // that entry; returns why the code cannot be had, or "".
  std::string load_code(std::string& name, wire::CodeRef::Reader ref, bool actor) {
    if (!ref.hasHash() || ref.getHash().size() == 0) return {};
    CodeRef code{ref.getHash(), ref.getPath()};
    std::string key = "code:" + code.hash;
    if (binding_ == nullptr || !binding_->load_code)
      return "this worker runs no binding's code (a C++ worker was sent Python code)";
    bool known = actor ? registry_.find_actor_class(key) != nullptr
                       : registry_.find_function(key) != nullptr;
    if (!known) {
      try {
        Registry more;
        binding_->load_code(more, key, name, code, actor);
        registry_.merge(std::move(more));
      } catch (const std::exception& e) {
        return "could not load the code of '" + name + "': " + e.what();
      }
    }
    name = std::move(key);
    return {};
  }

  bool send_failure(std::uint64_t id, const std::string& type, const std::string& text,
                    const std::string& traceback = {}, const std::string& details = {}) {
    transport::ControlMessage msg;
    auto o = msg.initRoot<wire::WorkerMessage>().initOutcome();
    o.setTaskId(id);
    auto f = o.initFailure();
    f.setRemoteType(type.substr(0, transport::kMaxNameBytes));
    f.setMessage(text.substr(0, transport::kMaxMessageTextBytes));
    f.setTraceback(traceback.substr(0, transport::kMaxMessageTextBytes));
    if (details.size() <= transport::kMaxFailureDetailsBytes)  // else the caller gets the text
      f.setDetails(
          capnp::Data::Reader(reinterpret_cast<const kj::byte*>(details.data()), details.size()));
    return send(msg);
  }

  // The failure of call `id` from the exception being handled (call in a catch block).
  bool send_current_exception(std::uint64_t id) {
    try {
      throw;
    } catch (const ForeignException& e) {  // a binding's exception keeps its type and stack
      return send_failure(id, e.type(), e.message(), e.traceback(), e.details());
    } catch (const std::exception& e) {
      return send_failure(id, detail::demangle(typeid(e).name()), e.what());
    } catch (...) {
      return send_failure(id, "unknown exception", "");
    }
  }

  bool send_value(std::uint64_t id, const detail::Payload& out) {
    transport::ControlMessage msg;
    auto o = msg.initRoot<wire::WorkerMessage>().initOutcome();
    o.setTaskId(id);
    OutgoingFds fds;
    try {
      write_result(o, out, fds);
    } catch (const Error& e) {
      return send_failure(id, "atl::Error", std::string("the result: ") + e.what());
    }
    return send(msg, fds);
  }

  // Answers with taskId 0: an empty value once constructed, or why it could not be.
  bool construct(const std::string& name, std::uint32_t max_concurrency,
                 std::vector<detail::ArgSpec> args) {
    const detail::ActorClassEntry* cls = registry_.find_actor_class(name);
    if (cls == nullptr)
      return send_failure(0, "atl::Error",
                          "no actor class named '" + name + "' is registered in the job's module");
    const detail::ConstructorEntry* ctor = cls->find_constructor(args.size());
    if (ctor == nullptr)
      return send_failure(0, "atl::Error",
                          "actor class '" + name + "' has no constructor taking " +
                              std::to_string(args.size()) + " arguments");
    ArgValues values(args.size());
    collect_arguments(args, values);
    static const std::shared_ptr<detail::Core> no_core;
    detail::CallFrame frame{args, values.span(), no_core};
    try {
      instance_ = ctor->construct(frame);
    } catch (...) {
      return send_current_exception(0);
    }
    cls_ = cls;
    args.clear();  // the actor keeps what it kept; the rest of the lent values go back now
    // With max_concurrency 1 calls run on the reading thread, strictly in arrival order.
    if (max_concurrency > 1)
      for (std::uint32_t i = 0; i < max_concurrency; ++i)
        threads_.emplace_back([this] { thread_main(); });
    return send_value(0, detail::Payload{});
  }

  bool dispatch(Call call) {
    if (threads_.empty()) return execute(std::move(call));
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(call));
    }
    cv_.notify_one();
    return !write_failed_.load();
  }

  void thread_main() {
    for (;;) {
      Call call;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
        if (queue_.empty()) return;  // closing, and nothing left to run
        call = std::move(queue_.front());
        queue_.pop_front();
      }
      if (!execute(std::move(call))) write_failed_.store(true);
    }
  }

  void stop_threads() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 public:
  // Runs the calls still queued (an actor's, with max_concurrency > 1) to their end.
  void finish_calls() { stop_threads(); }

  // The cluster runtime nested tasks go through, connected on first use and kept. Raises
  // atl::Error when there is no cluster to reach or it cannot be reached.
  const std::shared_ptr<detail::Core>& runtime_core() {
    std::lock_guard lock(runtime_mu_);
    if (!runtime_) {
      if (cluster_.head_address.empty())
        throw Error(ErrorCategory::unimplemented,
                    "nested tasks need a cluster: this worker was started without one");
      try {
        std::vector<ModuleFn> modules;
        if (cluster_.module != nullptr) modules.push_back(cluster_.module);
        runtime_.emplace(atl::init(
            {.address = cluster_.head_address,
             .token = cluster_.token,
             .modules = std::move(modules),
             .job_module = {.library = cluster_.module_path, .name = cluster_.module_name},
             .data_host = cluster_.data_host,
             .data_advertise_host = cluster_.data_advertise_host}));
      } catch (const std::exception& e) {
        throw Error(
            ErrorCategory::disconnected,
            std::string("a worker could not join the cluster for nested tasks: ") + e.what());
      }
    }
    return runtime_->core();
  }

 private:
  bool execute(Call call) {
    const detail::FunctionEntry* fn = nullptr;
    const detail::MethodEntry* method = nullptr;
    if (cls_ != nullptr) {
      method = cls_->find_method(call.name);
      if (method == nullptr)
        return send_failure(call.id, "atl::Error",
                            "actor class '" + cls_->name + "' has no method named '" + call.name +
                                "' in the job's module");
    } else {
      ran_tasks_ = true;
      fn = registry_.find_function(call.name);
      if (fn == nullptr)
        return send_failure(
            call.id, "atl::Error",
            "no function named '" + call.name + "' is registered in the job's module");
    }
    static const std::shared_ptr<detail::Core> no_core;
    const std::shared_ptr<detail::Core>* core = &no_core;
    if (method != nullptr ? method->takes_runtime : fn->takes_runtime) {
      try {
        core = &runtime_core();
      } catch (const Error& e) {
        return send_failure(call.id, "atl::Error",
                            "'" + call.name + "' submits nested tasks: " + e.what());
      }
    }
    ArgValues values(call.args.size());
    collect_arguments(call.args, values);
    detail::CallFrame frame{call.args, values.span(), *core};
    try {
      detail::Payload out =
          method != nullptr ? method->invoke(instance_.get(), frame) : fn->invoke(frame);
      // Lent arguments go back before the outcome, so the node may reuse their blocks at once.
      call.args.clear();
      return send_value(call.id, out);
    } catch (...) {
      return send_current_exception(call.id);
    }
  }

  const int fd_;
  const std::shared_ptr<NodeChannel> channel_;
  Registry& registry_;     // grows as a binding's code is loaded (reading thread; lookups anywhere)
  ClusterAccess cluster_;  // the head's address and token arrive after ready (under runtime_mu_)
  const WorkerBinding* binding_;
  std::mutex runtime_mu_;
  std::optional<Runtime> runtime_;
  std::deque<int> fds_;  // received with the node's frames, not yet claimed (reading thread)
  const detail::ActorClassEntry* cls_ = nullptr;
  std::shared_ptr<void> instance_;
  bool ran_tasks_ = false;  // a task worker never becomes an actor's host

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Call> queue_;
  bool closing_ = false;
  std::atomic<bool> write_failed_{false};
  std::vector<std::thread> threads_;
};

}  // namespace

int worker_main(int fd, const std::string& module_path, const std::string& module_hash,
                const std::string& module_name, const WorkerBinding* binding) {
  // Processes the job's code starts must not inherit the node's socket: they would keep it open
  // after this worker dies (hiding its death) and could write to it.
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  ClusterAccess cluster{.module_path = module_path, .module_name = module_name};
  Registry registry;
  try {
    if (!module_path.empty())
      cluster.module = load_verified_module(module_path, module_hash, module_name, registry);
  } catch (const std::exception& e) {
    transport::ControlMessage msg;
    auto f = msg.initRoot<wire::WorkerMessage>().initOutcome().initFailure();
    f.setRemoteType("atl::Error");
    f.setMessage(std::string(e.what()).substr(0, transport::kMaxMessageTextBytes));
    transport::send_all(fd, transport::encode(msg));
    return 1;
  }
  {
    transport::ControlMessage msg;
    auto ready = msg.initRoot<wire::WorkerMessage>().initReady();
    ready.setPid(static_cast<std::uint32_t>(::getpid()));
    ready.setFunctions(static_cast<std::uint32_t>(registry.function_count()));
    if (!transport::send_all(fd, transport::encode(msg))) return 1;
  }
  WorkerLoop loop(fd, registry, std::move(cluster), binding);
  if (binding == nullptr || !binding->attach) return loop.run();
  binding->attach([&loop] { return loop.runtime_core(); });
  // Detached only once no call can still run: an actor's queued calls finish first.
  struct Detach {
    const WorkerBinding* binding;
    WorkerLoop& loop;
    ~Detach() {
      loop.finish_calls();
      binding->attach(nullptr);
    }
  } detach{binding, loop};
  return loop.run();
}

}  // namespace atl::runtime
