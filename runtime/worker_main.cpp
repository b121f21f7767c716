// The worker process: load the job's module (after checking its hash), then run tasks until the
// node agent closes the socket.
#include <capnp/message.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "atoll/errors.hpp"
#include "atoll/registry.hpp"
#include "runtime/invocation.hpp"
#include "runtime/module_store.hpp"
#include "runtime/worker_process.hpp"
#include "transport/codec.hpp"

namespace atl::runtime {

namespace {

bool send_frame(int fd, capnp::MessageBuilder& msg) {
  return transport::send_all(fd, transport::encode(msg));
}

bool send_failure(int fd, std::uint64_t task, const std::string& type, const std::string& text) {
  capnp::MallocMessageBuilder msg;
  auto o = msg.initRoot<wire::WorkerMessage>().initOutcome();
  o.setTaskId(task);
  auto f = o.initFailure();
  f.setRemoteType(type.substr(0, transport::kMaxNameBytes));
  f.setMessage(text.substr(0, transport::kMaxMessageTextBytes));
  return send_frame(fd, msg);
}

// Runs one task; the reply is a value or the exception it threw.
bool run_task(int fd, const Registry& registry, wire::ExecuteTask::Reader task) {
  std::string name = task.getFunction();
  const detail::FunctionEntry* fn = registry.find_function(name);
  if (fn == nullptr)
    return send_failure(fd, task.getTaskId(), "atl::Error",
                        "no function named '" + name + "' is registered in the job's module");
  if (fn->takes_runtime)
    return send_failure(fd, task.getTaskId(), "atl::Error",
                        "'" + name +
                            "' submits nested tasks, which worker processes do not run "
                            "yet");
  std::vector<detail::ArgSpec> args(task.getArgs().size());
  for (unsigned i = 0; i < args.size(); ++i) {
    auto data = task.getArgs()[i];
    args[i].value.bytes.assign(reinterpret_cast<const char*>(data.begin()), data.size());
  }
  ArgValues values(args.size());
  collect_arguments(args, values);
  static const std::shared_ptr<detail::Core> no_core;
  detail::CallFrame frame{args, values.span(), no_core};
  try {
    detail::Payload out = fn->invoke(frame);
    if (out.out_of_band)
      return send_failure(fd, task.getTaskId(), "atl::Error",
                          "Buffer results do not cross processes yet");
    capnp::MallocMessageBuilder msg;
    auto o = msg.initRoot<wire::WorkerMessage>().initOutcome();
    o.setTaskId(task.getTaskId());
    o.setValue(
        capnp::Data::Reader(reinterpret_cast<const kj::byte*>(out.bytes.data()), out.bytes.size()));
    return send_frame(fd, msg);
  } catch (const std::exception& e) {
    return send_failure(fd, task.getTaskId(), detail::demangle(typeid(e).name()), e.what());
  } catch (...) {
    return send_failure(fd, task.getTaskId(), "unknown exception", "");
  }
}

}  // namespace

int worker_main(int fd, const std::string& module_path, const std::string& module_hash,
                const std::string& module_name) {
  Registry registry;
  try {
    load_verified_module(module_path, module_hash, module_name, registry);
  } catch (const std::exception& e) {
    send_failure(fd, 0, "atl::Error", e.what());
    return 1;
  }
  {
    capnp::MallocMessageBuilder msg;
    auto ready = msg.initRoot<wire::WorkerMessage>().initReady();
    ready.setPid(static_cast<std::uint32_t>(::getpid()));
    ready.setFunctions(static_cast<std::uint32_t>(registry.function_count()));
    if (!send_frame(fd, msg)) return 1;
  }
  transport::FrameDecoder decoder;
  std::byte buf[64 * 1024];
  for (;;) {
    while (auto frame = decoder.next()) {
      auto decoded = transport::decode_worker_message(std::move(*frame));
      if (!decoded.message || decoded.message->root().which() != wire::WorkerMessage::EXECUTE)
        return 2;  // the node agent sent something else: a bug or an attack, stop
      if (!run_task(fd, registry, decoded.message->root().getExecute())) return 0;
    }
    if (decoder.failed()) return 2;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;  // the node agent is done with this worker
    decoder.feed({buf, static_cast<std::size_t>(n)});
  }
}

}  // namespace atl::runtime
