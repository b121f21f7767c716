#include "runtime/head_server.hpp"

#include <capnp/message.h>

#include <random>

#include "runtime/cluster_messages.hpp"
#include "runtime/module_store.hpp"

namespace atl::runtime {

namespace {

void reply_error(const transport::ConnectionPtr& conn, std::uint64_t request,
                 wire::ErrorCategory category, const std::string& message) {
  transport::ControlMessage msg;
  auto env = msg.initRoot<wire::Envelope>();
  env.setRequestId(request);
  auto err = env.getBody().initError();
  err.setCategory(category);
  err.setMessage(message);
  conn->send(msg);
}

}  // namespace

HeadServer::HeadServer(HeadOptions options)
    : options_(std::move(options)),
      membership_(clock_, options_.detector),
      tasks_(clock_, options_.infeasible_timeout),
      work_(asio::make_work_guard(io_)),
      sweep_timer_(io_),
      stop_timer_(io_) {
  transport::Handlers handlers;
  handlers.on_message = [this](const transport::ConnectionPtr& c,
                               const transport::Decoded<wire::Envelope>& m) { on_message(c, m); };
  handlers.on_closed = [this](const transport::ConnectionPtr& c, const std::string&) {
    on_closed(c);
  };
  // The relay listens where the control service does; a client reaching the head by another
  // name replaces an unspecified host (0.0.0.0) with the one it dialled.
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", std::random_device{}());
  std::string relay_address = tasks_.start_relay({.token = options_.token,
                                                  .name = std::string(kRelayNamePrefix) + suffix,
                                                  .listen_host = options_.bind,
                                                  .capacity_bytes = options_.relay_bytes});
  listener_ = std::make_unique<transport::Listener>(
      io_, asio::ip::tcp::endpoint(asio::ip::make_address(options_.bind), options_.port),
      transport::ListenerOptions{.token = options_.token, .data_address = relay_address}, handlers,
      [this](transport::ConnectionPtr c) {
        std::lock_guard lock(mu_);
        connections_[c.get()] = c;
      });
  sweep_soon();
}

HeadServer::~HeadServer() {
  stop();
}

void HeadServer::run() {
  io_.run();
}

void HeadServer::stop() {
  asio::post(io_, [this] {
    if (stopping_) return;
    stopping_ = true;
    listener_->close();
    sweep_timer_.cancel();
    {
      std::lock_guard lock(mu_);
      // Every peer (nodes and drivers) learns at once that the head is gone.
      for (auto& [raw, conn] : connections_) conn->close("head shutting down");
    }
    work_.reset();
    // Connections still in their handshake, or idle drivers, must not keep the head alive.
    stop_timer_.expires_after(std::chrono::milliseconds(500));
    stop_timer_.async_wait([this](const asio::error_code&) { io_.stop(); });
  });
}

void HeadServer::sweep_soon() {
  sweep_timer_.expires_after(std::chrono::milliseconds(200));
  sweep_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || stopping_) return;
    auto died = membership_.sweep();
    for (auto id : died) tasks_.node_left(id);
    tasks_.expire();
    if (!died.empty()) {
      std::lock_guard lock(mu_);
      for (auto& [raw, entry] : nodes_by_connection_)
        for (auto id : died)
          if (entry.second == id) entry.first->close("missed heartbeats: declared dead");
    }
    sweep_soon();
  });
}

void HeadServer::on_message(const transport::ConnectionPtr& conn,
                            const transport::Decoded<wire::Envelope>& message) {
  auto env = message.root();
  auto body = env.getBody();
  switch (body.which()) {
    case wire::Envelope::Body::REGISTER_NODE: {
      if (conn->peer_role() != wire::Role::NODE) {
        reply_error(conn, env.getRequestId(), wire::ErrorCategory::INVALID_ARGUMENT,
                    "only node agents register as nodes");
        return;
      }
      NodeInfo info = read_node_info(body.getRegisterNode());
      info.name = conn->peer_name();
      info.address = conn->remote_endpoint();
      // A node listening on every interface advertises no host: readers dial the one it came from.
      info.data_address = reachable_from(*conn, info.data_address);
      std::uint64_t id;
      {
        std::lock_guard lock(mu_);
        if (nodes_by_connection_.contains(conn.get())) {
          reply_error(conn, env.getRequestId(), wire::ErrorCategory::INVALID_ARGUMENT,
                      "this connection already registered a node");
          return;
        }
        id = membership_.add(info);
        nodes_by_connection_[conn.get()] = {conn, id};
      }
      tasks_.node_joined(id, info, conn);
      transport::ControlMessage msg;
      auto reply = msg.initRoot<wire::Envelope>();
      reply.setRequestId(env.getRequestId());
      auto registered = reply.getBody().initNodeRegistered();
      registered.setNodeId(id);
      registered.setHeartbeatIntervalMs(
          static_cast<std::uint32_t>(options_.heartbeat_interval.count()));
      conn->send(msg);
      return;
    }
    case wire::Envelope::Body::HEARTBEAT: {
      std::uint64_t id = node_of(conn);
      if (id == 0 || !membership_.heartbeat(id))
        conn->close("heartbeat from a node that is not registered or was declared dead");
      return;
    }
    case wire::Envelope::Body::STATUS_REQUEST: {
      transport::ControlMessage msg;
      auto reply = msg.initRoot<wire::Envelope>();
      reply.setRequestId(env.getRequestId());
      auto nodes = membership_.snapshot();
      tasks_.fill_available(nodes);
      write_status(reply.getBody().initClusterStatus(), nodes);
      conn->send(msg);
      return;
    }
    case wire::Envelope::Body::UPLOAD_MODULE: {
      if (conn->peer_role() != wire::Role::DRIVER) break;
      auto blob = body.getUploadModule();
      std::string hash = blob.getHash();
      std::string bytes(reinterpret_cast<const char*>(blob.getBytes().begin()),
                        blob.getBytes().size());
      if (sha256_hex(std::as_bytes(std::span(bytes))) != hash) {
        reply_error(conn, env.getRequestId(), wire::ErrorCategory::INVALID_ARGUMENT,
                    "the module's bytes do not match its hash");
        return;
      }
      tasks_.store_module(hash, std::move(bytes));
      transport::ControlMessage msg;
      auto reply = msg.initRoot<wire::Envelope>();
      reply.setRequestId(env.getRequestId());
      reply.getBody().initModuleStored().setHash(hash);
      conn->send(msg);
      return;
    }
    case wire::Envelope::Body::FETCH_MODULE: {
      std::string hash = body.getFetchModule().getHash();
      auto bytes = tasks_.module(hash);
      if (!bytes) {
        reply_error(conn, env.getRequestId(), wire::ErrorCategory::FAILED,
                    "the head has no module " + hash);
        return;
      }
      transport::ControlMessage msg;
      auto reply = msg.initRoot<wire::Envelope>();
      reply.setRequestId(env.getRequestId());
      auto blob = reply.getBody().initModuleBytes();
      blob.setHash(hash);
      blob.setBytes(
          capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes->data()), bytes->size()));
      conn->send(msg);
      return;
    }
    case wire::Envelope::Body::SUBMIT_TASK:
      if (conn->peer_role() != wire::Role::DRIVER) break;
      tasks_.submit(conn, body.getSubmitTask());
      return;
    case wire::Envelope::Body::TASK_FINISHED: {
      std::uint64_t id = node_of(conn);
      if (id != 0) tasks_.finished(id, body.getTaskFinished());
      return;
    }
    case wire::Envelope::Body::FETCH_OBJECT:
      if (conn->peer_role() == wire::Role::DRIVER || node_of(conn) != 0)
        tasks_.fetch_object(conn, body.getFetchObject());
      return;
    case wire::Envelope::Body::OBJECT_PUSHED:  // from the holder: a node or a driver
      if (conn->peer_role() == wire::Role::DRIVER || node_of(conn) != 0)
        tasks_.object_pushed(conn, body.getObjectPushed());
      return;
    case wire::Envelope::Body::FREE_OBJECTS:
      if (conn->peer_role() != wire::Role::DRIVER) break;
      tasks_.free_objects(conn, body.getFreeObjects());
      return;
    case wire::Envelope::Body::CREATE_ACTOR: {
      if (conn->peer_role() != wire::Role::DRIVER) break;
      auto spec = body.getCreateActor();
      std::string error = tasks_.create_actor(conn, spec);
      if (!error.empty()) {
        reply_error(conn, env.getRequestId(), wire::ErrorCategory::INVALID_ARGUMENT, error);
        return;
      }
      transport::ControlMessage msg;
      auto reply = msg.initRoot<wire::Envelope>();
      reply.setRequestId(env.getRequestId());
      auto found = reply.getBody().initActorFound();
      found.setFound(true);
      found.setActor(spec.getActor());
      found.setClassName(spec.getClassName());
      conn->send(msg);
      return;
    }
    case wire::Envelope::Body::ACTOR_CALL:
      if (conn->peer_role() != wire::Role::DRIVER) break;
      tasks_.actor_call(conn, body.getActorCall());
      return;
    case wire::Envelope::Body::STOP_ACTOR:
      if (conn->peer_role() != wire::Role::DRIVER) break;
      tasks_.stop_actor(conn, body.getStopActor());
      return;
    case wire::Envelope::Body::ACTOR_EXITED: {
      std::uint64_t id = node_of(conn);
      if (id != 0) tasks_.actor_exited(id, body.getActorExited());
      return;
    }
    case wire::Envelope::Body::LOOKUP_ACTOR: {
      auto found = tasks_.lookup_actor(body.getLookupActor().getName());
      transport::ControlMessage msg;
      auto reply = msg.initRoot<wire::Envelope>();
      reply.setRequestId(env.getRequestId());
      auto out = reply.getBody().initActorFound();
      out.setFound(found.has_value());
      if (found) {
        set_actor_key(out.initActor(), found->id);
        out.setClassName(found->class_name);
      }
      conn->send(msg);
      return;
    }
    case wire::Envelope::Body::PONG:
      return;
    default:
      break;
  }
  reply_error(conn, env.getRequestId(), wire::ErrorCategory::UNIMPLEMENTED,
              "the head does not handle this message from this peer");
}

std::uint64_t HeadServer::node_of(const transport::ConnectionPtr& conn) {
  std::lock_guard lock(mu_);
  auto it = nodes_by_connection_.find(conn.get());
  return it == nodes_by_connection_.end() ? 0 : it->second.second;
}

void HeadServer::on_closed(const transport::ConnectionPtr& conn) {
  std::uint64_t node = 0;
  {
    std::lock_guard lock(mu_);
    connections_.erase(conn.get());
    if (auto it = nodes_by_connection_.find(conn.get()); it != nodes_by_connection_.end()) {
      node = it->second.second;
      membership_.disconnected(node);
      nodes_by_connection_.erase(it);
    }
  }
  if (node != 0)
    tasks_.node_left(node);
  else if (conn->peer_role() == wire::Role::DRIVER)
    tasks_.driver_left(conn);  // its actors end, its queued tasks are dropped
}

}  // namespace atl::runtime
