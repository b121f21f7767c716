#include "runtime/cluster_client.hpp"

#include <capnp/message.h>
#include <sys/resource.h>

#include <cmath>
#include <optional>
#include <random>

#include "atoll/errors.hpp"
#include "runtime/cluster_messages.hpp"
#include "runtime/shared_memory.hpp"

namespace atl::runtime {

namespace {

ObjectTransferOptions object_transfer_options(const NodeAgentOptions& node) {
  std::uint64_t capacity = node.object_store_bytes;
  if (capacity == 0) {
    double memory = 0;
    for (const auto& [name, amount] : node.info.resources)
      if (name == "memory") memory = amount;
    capacity = std::max<std::uint64_t>(64ull << 20, static_cast<std::uint64_t>(memory * 0.3));
  }
  // A random suffix: a node restarted under the same name is a different peer, and its readers'
  // cached channels to the old process must not be mistaken for channels to the new one.
  std::random_device rd;
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", rd());
  // Fetched objects land in shared memory, so the node's workers map them instead of copying;
  // freed blocks are kept for reuse (fresh shared pages are slow to fault in).
  auto pool = SharedMemoryPool::create(capacity / 4);
  return {.token = node.token,
          .name = node.name.substr(0, 48) + "-" + suffix,
          .listen_host = node.data_host,
          .advertise_host = node.data_advertise_host,
          .capacity_bytes = capacity,
          .allocate = [pool](std::size_t size) { return pool->allocate(size); }};
}

// Every object over 100 KiB a node holds or fetches is a memfd, open for as long as it lives: the
// usual soft limit of 1024 descriptors would cap a node at about a thousand objects.
void raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

NodeAgentProcess::NodeAgentProcess(NodeAgentOptions options)
    : options_(std::move(options)), heartbeat_timer_(io_), retry_timer_(io_) {
  if (!options_.module_dir.empty() && !options_.worker_executable.empty()) {
    double cpus = 1;
    for (const auto& [name, amount] : options_.info.resources)
      if (name == "CPU") cpus = amount;
    raise_open_file_limit();
    modules_ = std::make_unique<NodeModules>(options_.module_dir);
    objects_ = std::make_unique<ObjectTransfer>(object_transfer_options(options_));
    options_.info.data_address = objects_->address();
    options_.info.data_name = objects_->name();
    // Workers reach the head as this node does, for nested tasks.
    WorkerLaunch launch{options_.worker_executable,
                        options_.python_executable,
                        options_.host + ":" + std::to_string(options_.port),
                        options_.token,
                        options_.data_host,
                        options_.data_advertise_host};
    runner_ = std::make_unique<NodeTaskRunner>(options_.name, *modules_, *objects_, launch,
                                               static_cast<std::size_t>(std::ceil(cpus)));
    actors_ = std::make_unique<NodeActors>(options_.name, *modules_, *objects_, launch);
  }
}

NodeAgentProcess::~NodeAgentProcess() {
  // Its running tasks and actors hold connections: end them before the io_context goes. Fetches
  // for tasks' arguments call back into the runner: end them while it is still there.
  if (objects_) objects_->fail_fetches("the node agent is stopping");
  actors_.reset();
  runner_.reset();
  objects_.reset();
}

std::string NodeAgentProcess::run(std::function<void(std::uint64_t)> on_registered) {
  on_registered_ = std::move(on_registered);
  work_.emplace(io_.get_executor());
  asio::post(io_, [this] { connect(); });
  io_.run();
  return fatal_;
}

void NodeAgentProcess::stop() {
  asio::post(io_, [this] {
    stopping_ = true;
    heartbeat_timer_.cancel();
    retry_timer_.cancel();
    if (conn_) conn_->close("node agent stopping");  // run() returns once the close is sent
    work_.reset();
  });
}

void NodeAgentProcess::connect() {
  // io_ runs on one thread, so the connection's handlers never overlap ours: call straight in.
  transport::Handlers handlers;
  handlers.on_message = [this](const transport::ConnectionPtr&,
                               const transport::Decoded<wire::Envelope>& m) { on_message(m); };
  handlers.on_closed = [this](const transport::ConnectionPtr&, const std::string&) { on_lost(); };
  transport::dial(io_, options_.host, options_.port,
                  {.token = options_.token, .role = wire::Role::NODE, .name = options_.name},
                  handlers,
                  [this](transport::ConnectionPtr c, std::string error) { on_dialled(c, error); });
}

void NodeAgentProcess::on_dialled(transport::ConnectionPtr conn, const std::string& error) {
  if (stopping_) {
    if (conn) conn->close("node agent stopping");
    return;
  }
  if (!conn) {
    if (!ever_registered_) {
      fatal_ = error;
      work_.reset();
      return;
    }
    on_lost();
    return;
  }
  conn_ = conn;
  transport::ControlMessage msg;
  auto env = msg.initRoot<wire::Envelope>();
  env.setRequestId(1);
  write_node_info(env.getBody().initRegisterNode(), options_.info);
  conn_->send(msg);
}

void NodeAgentProcess::on_message(const transport::Decoded<wire::Envelope>& message) {
  auto body = message.root().getBody();
  if (body.which() == wire::Envelope::Body::NODE_REGISTERED) {
    ever_registered_ = true;
    backoff_ = std::chrono::milliseconds(100);
    interval_ = std::chrono::milliseconds(
        std::max<std::uint32_t>(10, body.getNodeRegistered().getHeartbeatIntervalMs()));
    if (on_registered_) on_registered_(body.getNodeRegistered().getNodeId());
    if (objects_) {
      try {
        objects_->set_relay(reachable_address(conn_->head_data_address(), options_.host));
      } catch (const std::exception&) {
        // A head that advertises a malformed relay: objects then move by direct paths only.
      }
    }
    beat();
  } else if (runner_ && conn_ && (dispatch_work(message) || dispatch_objects(message))) {
    return;
  } else if (body.which() == wire::Envelope::Body::ERROR && !ever_registered_) {
    fatal_ = "the head refused the registration: " + std::string(body.getError().getMessage());
    conn_->close("registration refused");
    work_.reset();
  }
}

bool NodeAgentProcess::dispatch_work(const transport::Decoded<wire::Envelope>& message) {
  auto body = message.root().getBody();
  switch (body.which()) {
    case wire::Envelope::Body::RUN_TASK:
      runner_->run(conn_, body.getRunTask());
      return true;
    case wire::Envelope::Body::START_ACTOR:
      actors_->start(conn_, body.getStartActor());
      return true;
    case wire::Envelope::Body::ACTOR_CALL:
      actors_->call(conn_, body.getActorCall());
      return true;
    case wire::Envelope::Body::STOP_ACTOR:
      actors_->stop(conn_, body.getStopActor());
      return true;
    case wire::Envelope::Body::MODULE_BYTES:
      modules_->arrived(body.getModuleBytes());
      return true;
    case wire::Envelope::Body::ERROR:
      return modules_->fetch_failed(message.root().getRequestId(), body.getError().getMessage());
    default:
      return false;
  }
}

void NodeAgentProcess::beat() {
  if (stopping_ || !conn_ || conn_->closed()) return;
  transport::ControlMessage msg;
  msg.initRoot<wire::Envelope>().getBody().initHeartbeat().setSequence(++sequence_);
  conn_->send(msg);
  if (modules_) modules_->expire();
  if (objects_) objects_->expire();
  heartbeat_timer_.expires_after(interval_);
  heartbeat_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) beat();
  });
}

bool NodeAgentProcess::dispatch_objects(const transport::Decoded<wire::Envelope>& message) {
  auto body = message.root().getBody();
  switch (body.which()) {
    case wire::Envelope::Body::PUSH_OBJECT:
      objects_->answer_push(conn_, body.getPushObject());
      return true;
    case wire::Envelope::Body::OBJECT_PUSHED: {  // a fetch of ours that the holder could not serve
      auto pushed = body.getObjectPushed();
      objects_->fetch_failed(object_key(pushed.getObject()), pushed.getAttempt(),
                             pushed.getError());
      return true;
    }
    case wire::Envelope::Body::FREE_OBJECTS: {
      auto free = body.getFreeObjects();
      if (free.getOwner() != 0) objects_->release_owner(free.getOwner());
      for (auto k : free.getObjects()) objects_->release(object_key(k));
      return true;
    }
    default:
      return false;
  }
}

void NodeAgentProcess::on_lost() {
  if (actors_) actors_->kill_all("the node lost the head, which counts its actors dead");
  if (modules_) modules_->head_lost("the node lost its connection to the head");
  // The head forgets what this node held; it registers anew with nothing.
  if (objects_) {
    objects_->fail_fetches("the node lost its connection to the head");
    objects_->release_all();
  }
  if (stopping_) return;
  heartbeat_timer_.cancel();
  conn_.reset();
  if (!ever_registered_) {
    // Authenticated, then closed before registering: the head refused what this node declared.
    if (fatal_.empty())
      fatal_ = "the head closed the connection before registering this node (see the head's log)";
    work_.reset();
    return;
  }
  retry_timer_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  retry_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec && !stopping_) connect();
  });
}

std::vector<NodeView> fetch_status(const std::string& host, std::uint16_t port,
                                   const std::string& token, std::chrono::milliseconds timeout) {
  asio::io_context io;
  std::optional<std::vector<NodeView>> result;
  std::string error;
  transport::Handlers handlers;
  handlers.on_message = [&](const transport::ConnectionPtr& c,
                            const transport::Decoded<wire::Envelope>& m) {
    auto body = m.root().getBody();
    if (body.which() == wire::Envelope::Body::CLUSTER_STATUS) {
      result = read_status(body.getClusterStatus());
      c->close("done");
    } else if (body.which() == wire::Envelope::Body::ERROR) {
      error = body.getError().getMessage();
      c->close("done");
    }
  };
  transport::dial(io, host, port,
                  {.token = token, .role = wire::Role::DRIVER, .name = "atoll status"}, handlers,
                  [&](transport::ConnectionPtr c, std::string e) {
                    if (!c) {
                      error = e;
                      return;
                    }
                    transport::ControlMessage msg;
                    auto env = msg.initRoot<wire::Envelope>();
                    env.setRequestId(1);
                    env.getBody().initStatusRequest();
                    c->send(msg);
                  });
  io.run_for(timeout);
  if (result) return std::move(*result);
  if (!error.empty()) throw Error(ErrorCategory::disconnected, error);
  throw Error(ErrorCategory::timed_out, "the head at " + host + ":" + std::to_string(port) +
                                            " did not answer within " +
                                            std::to_string(timeout.count()) + " ms");
}

}  // namespace atl::runtime
