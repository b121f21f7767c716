#include "runtime/cluster_core.hpp"

#include <capnp/message.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <fstream>
#include <future>
#include <optional>
#include <random>

#include "runtime/invocation.hpp"
#include "runtime/module_store.hpp"
#include "runtime/object_ops.hpp"

namespace atl::runtime {

namespace {

std::pair<std::string, std::uint16_t> split_address(const std::string& address) {
  auto colon = address.rfind(':');
  char* end = nullptr;
  long port = colon == std::string::npos ? 0 : std::strtol(address.c_str() + colon + 1, &end, 10);
  if (colon == std::string::npos || colon == 0 || end == nullptr || *end != '\0' || port < 1 ||
      port > 65535)
    throw Error(ErrorCategory::invalid_argument, "address '" + address + "' must be HOST:PORT");
  return {address.substr(0, colon), static_cast<std::uint16_t>(port)};
}

std::uint64_t random_owner() {
  std::random_device rd;
  std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return v == 0 ? 1 : v;
}

}  // namespace

std::shared_ptr<ClusterCore> ClusterCore::create(InitOptions options) {
  bool has_module = !options.job_module.library.empty() || !options.job_module.name.empty();
  if ((!options.modules.empty() || has_module) &&
      (options.job_module.library.empty() || options.job_module.name.empty()))
    throw Error(ErrorCategory::invalid_argument,
                "a cluster driver needs job_module = {.library = <.so path>, .name = <module>}: "
                "the code its tasks run on the nodes");
  if (options.token.empty())
    if (const char* env = std::getenv("ATOLL_TOKEN")) options.token = env;
  std::shared_ptr<ClusterCore> core(new ClusterCore(std::move(options)));
  core->self_ = core;
  try {
    core->connect();
  } catch (...) {
    core->shutdown();
    throw;
  }
  return core;
}

ClusterCore::ClusterCore(InitOptions options)
    : options_(std::move(options)),
      owner_(random_owner()),
      store_(options_.object_store_memory != 0 ? options_.object_store_memory : (4ull << 30)),
      buffers_(BufferPool::create(store_.capacity() / 4)) {
  for (ModuleFn module : options_.modules) {
    if (module == nullptr) throw Error(ErrorCategory::invalid_argument, "null module function");
    module(registry_);
  }
  store_.set_on_erase([this](const ObjectId& id) { object_erased(id); });
}

ClusterCore::~ClusterCore() {
  shutdown();
  objects_.reset();  // its thread may call back into this core: stop it first
}

void ClusterCore::connect() {
  std::string bytes;
  if (!options_.job_module.library.empty()) {
    std::ifstream in(options_.job_module.library, std::ios::binary);
    if (!in)
      throw Error(ErrorCategory::invalid_argument,
                  "cannot read the job module " + options_.job_module.library);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    module_hash_ = sha256_hex(std::as_bytes(std::span(bytes)));
  }
  auto [host, port] = split_address(options_.address);

  transport::Handlers handlers;
  handlers.on_message = [this](const transport::ConnectionPtr&,
                               const transport::Decoded<wire::Envelope>& m) { on_message(m); };
  handlers.on_closed = [this](const transport::ConnectionPtr&, const std::string& why) {
    on_lost(why);
  };
  // Before the connection exists: its handlers read objects_ from the io thread.
  char name[32];
  std::snprintf(name, sizeof name, "driver-%016llx", static_cast<unsigned long long>(owner_));
  objects_ = std::make_unique<ObjectTransfer>(ObjectTransferOptions{
      .token = options_.token,
      .name = name,
      .listen_host = options_.data_host,
      .advertise_host = options_.data_advertise_host,
      .capacity_bytes = store_.capacity(),
      .allocate = [pool = buffers_](std::size_t size) { return pool->allocate(size); }});
  std::promise<std::pair<transport::ConnectionPtr, std::string>> dialled;
  work_.emplace(io_.get_executor());
  transport::dial(io_, host, port,
                  {.token = options_.token, .role = wire::Role::DRIVER, .name = "driver"}, handlers,
                  [&dialled](transport::ConnectionPtr c, std::string error) {
                    dialled.set_value({std::move(c), std::move(error)});
                  });
  io_thread_ = std::thread([this] { io_.run(); });
  auto [conn, error] = dialled.get_future().get();
  if (!conn) throw Error(ErrorCategory::disconnected, error);
  {
    std::lock_guard lock(mu_);
    conn_ = conn;
  }
  {
    std::lock_guard lock(remote_mu_);
    free_conn_ = conn;
  }
  asio::post(io_, [this] { tick(); });
  try {
    objects_->set_relay(reachable_address(conn->head_data_address(), host));
  } catch (const std::exception&) {
    // A head that advertises a malformed relay: objects then move by direct paths only.
  }
  if (!module_hash_.empty())
    upload(module_hash_, std::as_bytes(std::span(bytes)), "the job module");
}

void ClusterCore::upload(const std::string& hash, std::span<const std::byte> bytes,
                         const std::string& what) {
  capnp::MallocMessageBuilder msg;  // a module is large: no small first segment
  auto blob = msg.initRoot<wire::Envelope>().getBody().initUploadModule();
  blob.setHash(hash);
  blob.setBytes(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
  HeadReply stored = request(msg, std::chrono::seconds(60));
  if (!stored.error.empty())
    throw Error(ErrorCategory::disconnected, "uploading " + what + " failed: " + stored.error);
}

std::string ClusterCore::upload_code(std::span<const std::byte> code) {
  ensure_running();
  std::string hash = sha256_hex(code);
  {
    std::lock_guard lock(code_mu_);
    if (uploaded_code_.contains(hash)) return hash;
  }
  upload(hash, code, "code");
  std::lock_guard lock(code_mu_);
  uploaded_code_.insert(hash);
  return hash;
}

namespace {
// A dotted path of Python identifiers (ASCII), as pickle's global lookup takes it.
bool python_path(std::string_view s) {
  if (s.empty() || s.size() > 200 || s.front() == '.' || s.back() == '.') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool word = std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (c == '.' ? s[i - 1] == '.' : !word) return false;
  }
  return true;
}
}  // namespace

const detail::FunctionEntry& ClusterCore::python_function(std::string_view module,
                                                          std::string_view qualname) {
  ensure_running();
  if (!python_path(module) || !python_path(qualname))
    throw Error(ErrorCategory::invalid_argument,
                "'" + std::string(module) + "', '" + std::string(qualname) +
                    "' is not a Python module and function (dotted identifiers)");
  std::string name = "python:" + std::string(module) + ":" + std::string(qualname);
  if (const auto* found = registry_.find_function(name)) return *found;
  // The code is a pickle of the global itself (protocol 4: the module, the qualified name,
  // STACK_GLOBAL): unpickling it in a node's Python worker imports the module.
  std::string code = "\x80\x04";
  for (std::string_view part : {module, qualname}) {
    code += '\x8c';
    code += static_cast<char>(part.size());
    code.append(part);
  }
  code += "\x93.";
  std::string hash = upload_code(std::as_bytes(std::span(code)));
  Registry more;
  more.dynamic_function(
      name,
      [name](detail::CallFrame&) -> detail::Payload {
        throw Error(ErrorCategory::unimplemented, "'" + name + "' runs on Python workers only");
      },
      hash);
  try {
    registry_.merge(std::move(more));
  } catch (const Error&) {
    // Another thread registered it first: the same code.
  }
  return registry_.require_function(name);
}

void ClusterCore::extend_registry(Registry&& more) {
  ensure_running();
  registry_.merge(std::move(more));
}

void ClusterCore::tick() {
  if (shut_down_.load()) return;
  if (objects_) objects_->expire();
  tick_timer_.expires_after(std::chrono::seconds(1));
  tick_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) tick();
  });
}

ClusterCore::HeadReply ClusterCore::request(capnp::MallocMessageBuilder& msg,
                                            std::chrono::seconds timeout) {
  std::future<HeadReply> answer;
  transport::ConnectionPtr conn;
  std::uint64_t id;
  {
    std::lock_guard lock(mu_);
    if (!lost_.empty()) throw RuntimeShutdownError("lost the connection to the head: " + lost_);
    id = next_request_++;
    auto env = msg.getRoot<wire::Envelope>();
    env.setRequestId(id);
    // The head answers at once; the deadline tells it (and a reader of a capture) how long the
    // driver waits before giving up on the answer.
    env.setTimeoutMs(static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
    answer = requests_[id].get_future();
    conn = conn_;
  }
  conn->send(msg);
  if (answer.wait_for(timeout) != std::future_status::ready) {
    std::lock_guard lock(mu_);
    requests_.erase(id);
    throw Error(ErrorCategory::timed_out,
                "the head did not answer within " + std::to_string(timeout.count()) + " s");
  }
  HeadReply reply = answer.get();
  if (reply.lost) throw RuntimeShutdownError(reply.error);
  return reply;
}

const detail::FunctionEntry& ClusterCore::function_by_key(std::uintptr_t key) const {
  return registry_.require_function(key);
}

const detail::FunctionEntry& ClusterCore::function_by_name(std::string_view name) const {
  return registry_.require_function(name);
}

void ClusterCore::ensure_running() const {
  if (shut_down_.load()) throw RuntimeShutdownError("the atoll runtime has been shut down");
  std::lock_guard lock(mu_);
  if (!lost_.empty()) throw RuntimeShutdownError("lost the connection to the head: " + lost_);
}

void ClusterCore::check_arguments(const std::vector<detail::ArgSpec>& args,
                                  const std::string& what) const {
  for (const auto& a : args) {
    if ((a.ref && &a.ref->core() != this) || (a.actor && &a.actor->core() != this))
      throw Error(ErrorCategory::invalid_argument,
                  "an argument of " + what + " belongs to another runtime");
  }
}

std::shared_ptr<detail::RefToken> ClusterCore::submit_task(const detail::FunctionEntry& fn,
                                                           std::vector<detail::ArgSpec> args,
                                                           const TaskOptions* options) {
  ensure_running();
  check_arguments(args, "'" + fn.name + "'");
  TaskOptions opts = options != nullptr ? *options : TaskOptions{};
  if (opts.max_retries < 0)
    throw Error(ErrorCategory::invalid_argument, "max_retries must not be negative");
  auto task = std::make_unique<PendingTask>();
  task->resources = resource_request(opts);
  task->label_selector = std::move(opts.label_selector);
  // A binding's code runs only on nodes with that language's workers.
  if (!fn.code.empty()) task->label_selector.push_back(python_nodes());
  task->preferred_labels = std::move(opts.preferred_labels);
  task->function = &fn;
  task->name = opts.name.empty() ? fn.name : opts.name;
  task->max_retries = static_cast<unsigned>(opts.max_retries);
  task->retry_exceptions = opts.retry_exceptions;
  return register_task(std::move(task), std::move(args));
}

std::shared_ptr<detail::RefToken> ClusterCore::register_task(std::unique_ptr<PendingTask> task,
                                                             std::vector<detail::ArgSpec> args) {
  std::size_t refs = 0;
  // An ObjectRef parameter waits too: what a worker borrows must exist (and be where it says).
  auto waits = [](const detail::ArgSpec& a) {
    return a.kind == detail::ArgSpec::Kind::resolve_ref ||
           a.kind == detail::ArgSpec::Kind::pass_ref;
  };
  for (const auto& a : args) refs += waits(a) ? 1 : 0;
  task->args = std::move(args);
  std::uint64_t seq = next_sequence_.fetch_add(1);
  ObjectId id{owner_, seq};
  task->result = store_.create(id, 2);  // the caller's token and the pending task
  auto token = std::make_shared<detail::RefToken>(self_, id, task->result);
  counters_.tasks_submitted.fetch_add(1);
  PendingTask* raw = task.get();
  raw->waiting = static_cast<int>(refs) + 1;  // one extra, held while registering
  raw->waiters = std::make_unique<ArgWaiter[]>(refs);
  {
    std::lock_guard lock(mu_);
    pending_[seq] = std::move(task);
    if (raw->actor != nullptr) raw->actor->outbox.push_back(seq);
  }
  std::size_t k = 0;
  for (const auto& a : raw->args) {
    if (!waits(a)) continue;
    ArgWaiter& w = raw->waiters[k++];
    w.core = this;
    w.task = seq;
    if (!store_.add_waiter(entry_of(*a.ref), &w)) argument_ready(seq);
  }
  argument_ready(seq);  // the registration guard
  return token;
}

void ClusterCore::argument_ready(std::uint64_t task) noexcept {
  std::unique_ptr<PendingTask> disposed;
  bool send = false;
  std::optional<ActorId> actor;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(task);
    if (it == pending_.end() || --it->second->waiting > 0) return;
    if (it->second->finished) {
      disposed = std::move(it->second);  // finished while its arguments were outstanding
      pending_.erase(it);
    } else {
      send = true;
      if (it->second->actor != nullptr) actor = it->second->actor->id;
    }
  }
  if (actor)
    flush_actor(*actor);
  else if (send)
    send_task(task);
}

void ClusterCore::send_task(std::uint64_t task) {
  transport::ControlMessage msg;
  ErrorPtr failed;
  transport::ConnectionPtr conn;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(task);
    if (it == pending_.end()) return;
    PendingTask& t = *it->second;
    conn = conn_;
    auto spec = msg.initRoot<wire::Envelope>().getBody().initSubmitTask();
    spec.setTaskId(task);
    spec.setModuleHash(module_hash_);
    spec.setModuleName(options_.job_module.name);
    spec.setFunction(t.function->name);
    if (!t.function->code.empty()) spec.setCode(t.function->code);
    spec.setName(t.name);
    spec.setMaxRetries(t.max_retries);
    spec.setRetryExceptions(t.retry_exceptions);
    write_resources(spec.initResources(static_cast<unsigned>(t.resources.size())), t.resources);
    write_selectors(spec.initLabelSelector(static_cast<unsigned>(t.label_selector.size())),
                    t.label_selector);
    write_selectors(spec.initPreferredLabels(static_cast<unsigned>(t.preferred_labels.size())),
                    t.preferred_labels);
    std::vector<ArgRefOut> refs;
    std::vector<ActorArg> actors;
    failed = write_args(spec.initArgs(static_cast<unsigned>(t.args.size())), t, refs, actors);
    write_arg_refs(spec.initArgRefs(static_cast<unsigned>(refs.size())), refs);
    write_actor_args(spec.initActorArgs(static_cast<unsigned>(actors.size())), actors);
    set_object_key(spec.initResult(), ObjectId{owner_, task});  // the task's sequence names it
    t.sent = failed == nullptr;
    if (!failed && !lost_.empty()) failed = make_error(ErrorKind::shutdown, lost_);
  }
  if (failed) {
    complete(task, nullptr, failed);
    return;
  }
  conn->send(msg);
}

void ClusterCore::on_message(const transport::Decoded<wire::Envelope>& message) {
  auto env = message.root();
  auto body = env.getBody();
  if (env.getRequestId() != 0 && (body.which() == wire::Envelope::Body::MODULE_STORED ||
                                  body.which() == wire::Envelope::Body::ERROR ||
                                  body.which() == wire::Envelope::Body::ACTOR_FOUND)) {
    HeadReply reply;
    if (body.which() == wire::Envelope::Body::ERROR) reply.error = body.getError().getMessage();
    if (body.which() == wire::Envelope::Body::ACTOR_FOUND) {
      auto found = body.getActorFound();
      reply.found = found.getFound();
      reply.actor = actor_key(found.getActor());
      reply.class_name = found.getClassName();
    }
    std::lock_guard lock(mu_);
    if (auto it = requests_.find(env.getRequestId()); it != requests_.end()) {
      it->second.set_value(std::move(reply));
      requests_.erase(it);
    }
  } else if (body.which() == wire::Envelope::Body::PUSH_OBJECT) {
    transport::ConnectionPtr conn;
    {
      std::lock_guard lock(mu_);
      conn = conn_;
    }
    if (objects_ && conn) objects_->answer_push(conn, body.getPushObject());
  } else if (body.which() == wire::Envelope::Body::OBJECT_PUSHED) {
    auto pushed = body.getObjectPushed();
    if (objects_)
      objects_->fetch_failed(object_key(pushed.getObject()), pushed.getAttempt(),
                             pushed.getError());
  } else if (body.which() == wire::Envelope::Body::TASK_FINISHED) {
    auto done = body.getTaskFinished();
    auto outcome = done.getOutcome();
    if (outcome.isStored()) {
      on_stored(done.getTaskId(), outcome.getStored(), done.getHolder(), done.getHolderName());
      return;
    }
    if (outcome.isValue()) {
      detail::Payload value = payload_of(outcome.getValue().begin(), outcome.getValue().size());
      complete(done.getTaskId(), &value, nullptr);
      return;
    }
    auto e = std::make_shared<ErrorInfo>();
    auto failure = outcome.getFailure();
    e->remote_type = failure.getRemoteType();
    e->message = failure.getMessage();
    e->traceback = failure.getTraceback();
    e->details.assign(reinterpret_cast<const char*>(failure.getDetails().begin()),
                      failure.getDetails().size());
    e->node = done.getNode();
    e->kind = e->remote_type == "atl::InfeasibleError"        ? ErrorKind::infeasible
              : e->remote_type == "atl::ActorDiedError"       ? ErrorKind::actor_died
              : e->remote_type == "atl::ObjectLostError"      ? ErrorKind::object_lost
              : e->remote_type == "atl::ObjectStoreFullError" ? ErrorKind::store_full
                                                              : ErrorKind::task_error;
    {
      std::lock_guard lock(mu_);
      if (auto it = pending_.find(done.getTaskId()); it != pending_.end())
        e->task_name = it->second->name;
    }
    complete(done.getTaskId(), nullptr, e);
  }
}

void ClusterCore::complete(std::uint64_t task, const detail::Payload* value,
                           const ErrorPtr& error) {
  std::unique_ptr<PendingTask> disposed;
  ObjectEntry* result;
  std::vector<ObjectId> held;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(task);
    if (it == pending_.end() || it->second->finished) return;
    it->second->finished = true;
    result = it->second->result;
    held.swap(it->second->held_args);
    if (it->second->waiting == 0) {
      disposed = std::move(it->second);
      pending_.erase(it);
    }
  }
  if (value != nullptr)
    store_.seal(result, *value);
  else
    store_.fail(result, error);
  release_held(held);  // its large by-value arguments: the node has them or will not need them
  store_.release(result);
  counters_.tasks_finished.fetch_add(1);
}

void ClusterCore::on_lost(const std::string& reason) {
  std::vector<std::uint64_t> tasks;
  {
    std::lock_guard lock(mu_);
    lost_ = reason.empty() ? "the connection closed" : reason;
    for (const auto& [id, t] : pending_) tasks.push_back(id);
    for (auto& [id, answer] : requests_) {
      HeadReply lost;
      lost.lost = true;
      lost.error = "lost the connection to the head: " + lost_;
      answer.set_value(std::move(lost));
    }
    requests_.clear();
  }
  auto error = make_error(ErrorKind::shutdown, "lost the connection to the head: " + reason);
  for (auto id : tasks) complete(id, nullptr, error);
  if (objects_)
    objects_->fail_fetches("lost the connection to the head: " + reason, ErrorKind::shutdown);
}

std::shared_ptr<detail::RefToken> ClusterCore::put(detail::Payload value) {
  ensure_running();
  return put_object(store_, self_, ObjectId{owner_, next_sequence_.fetch_add(1)}, std::move(value));
}

void ClusterCore::await_all(std::span<const detail::RefToken* const> refs,
                            detail::Deadline deadline) {
  std::vector<ObjectEntry*> entries;
  entries.reserve(refs.size());
  for (const auto* r : refs) entries.push_back(entry_for(*this, *r));
  runtime::await_all(store_, entries, deadline, nullptr, kClusterSpinMicros);
}

void ClusterCore::wait(std::span<const detail::RefToken* const> refs, std::size_t num_ready,
                       detail::Deadline deadline, std::vector<bool>& ready) {
  std::vector<ObjectEntry*> entries;
  for (const auto* r : refs) entries.push_back(entry_for(*this, *r));
  wait_objects(store_, entries, num_ready, deadline, nullptr, ready);
}

bool ClusterCore::cancel(const detail::RefToken& ref) {
  // The result fails at once; a task already on a node still runs, and its value is discarded.
  return cancel_object(store_, entry_for(*this, ref), ref.id());
}

MutableBuffer ClusterCore::create_buffer(std::size_t size) {
  return buffers_->allocate(size);
}

RuntimeStats ClusterCore::stats() const {
  RuntimeStats s = object_and_task_stats(store_, counters_);
  std::lock_guard lock(mu_);
  for (const auto& [id, t] : pending_) s.tasks_waiting_for_dependencies += t->sent ? 0 : 1;
  return s;
}

void ClusterCore::shutdown() {
  if (shut_down_.exchange(true)) return;
  transport::ConnectionPtr conn;
  {
    std::lock_guard lock(mu_);
    conn = conn_;
  }
  if (conn) conn->close("driver leaving");
  asio::post(io_, [this] { tick_timer_.cancel(); });
  work_.reset();
  if (io_thread_.joinable()) io_thread_.join();
  store_.fail_all_pending(make_error(ErrorKind::shutdown, "the atoll runtime shut down"));
  std::map<std::uint64_t, std::unique_ptr<PendingTask>> pending;
  std::unordered_map<ActorId, std::vector<detail::ArgSpec>> pins;  // they also hold this core
  {
    std::lock_guard lock(mu_);
    pending.swap(pending_);
    pins.swap(actor_pins_);
    conn_.reset();
  }
  for (auto& [id, t] : pending)
    if (!t->finished) store_.release(t->result);  // failed above; drop their pins
  self_.reset();
}

void ClusterCore::release_object(void* entry) noexcept {
  store_.release(static_cast<ObjectEntry*>(entry));
}

}  // namespace atl::runtime
