#include "runtime/cluster_messages.hpp"

#include <capnp/message.h>

#include "runtime/object_transfer.hpp"

namespace atl::runtime {

namespace {

template <class Builder>
void write_common(Builder out, const NodeInfo& info) {
  auto resources = out.initResources(static_cast<unsigned>(info.resources.size()));
  for (unsigned i = 0; i < info.resources.size(); ++i) {
    resources[i].setName(info.resources[i].first);
    resources[i].setAmount(info.resources[i].second);
  }
  auto labels = out.initLabels(static_cast<unsigned>(info.labels.size()));
  unsigned i = 0;
  for (const auto& [k, v] : info.labels) {
    labels[i].setKey(k);
    labels[i++].setValue(v);
  }
  out.setIsland(info.island);
  out.setGpuModel(info.gpu_model);
  out.setGpusDeclared(info.gpus_declared);
  out.setHostname(info.hostname);
  out.setPid(info.pid);
}

template <class Reader>
void read_common(Reader in, NodeInfo& info) {
  for (auto r : in.getResources()) info.resources.emplace_back(r.getName(), r.getAmount());
  for (auto l : in.getLabels()) info.labels[l.getKey()] = l.getValue();
  info.island = in.getIsland();
  info.gpu_model = in.getGpuModel();
  info.gpus_declared = in.getGpusDeclared();
  info.hostname = in.getHostname();
  info.pid = in.getPid();
}

wire::NodeLiveness to_wire(Liveness l) {
  switch (l) {
    case Liveness::alive:
      return wire::NodeLiveness::ALIVE;
    case Liveness::suspect:
      return wire::NodeLiveness::SUSPECT;
    case Liveness::dead:
      return wire::NodeLiveness::DEAD;
  }
  return wire::NodeLiveness::DEAD;
}

Liveness from_wire(wire::NodeLiveness l) {
  switch (l) {
    case wire::NodeLiveness::ALIVE:
      return Liveness::alive;
    case wire::NodeLiveness::SUSPECT:
      return Liveness::suspect;
    case wire::NodeLiveness::DEAD:
      return Liveness::dead;
  }
  return Liveness::dead;
}

}  // namespace

void write_node_info(wire::RegisterNode::Builder out, const NodeInfo& info) {
  write_common(out, info);
  out.setDataAddress(info.data_address);
  out.setDataName(info.data_name);
}

NodeInfo read_node_info(wire::RegisterNode::Reader in) {
  NodeInfo info;
  read_common(in, info);
  info.data_address = in.getDataAddress();
  info.data_name = in.getDataName();
  return info;
}

void write_status(wire::ClusterStatus::Builder out, const std::vector<NodeView>& nodes) {
  auto list = out.initNodes(static_cast<unsigned>(nodes.size()));
  for (unsigned i = 0; i < nodes.size(); ++i) {
    const NodeView& v = nodes[i];
    auto n = list[i];
    n.setNodeId(v.id);
    n.setName(v.info.name);
    n.setLiveness(to_wire(v.liveness));
    n.setHeartbeatAgeMs(static_cast<std::uint64_t>(v.heartbeat_age.count()));
    n.setAddress(v.info.address);
    write_common(n, v.info);
    auto available = n.initAvailable(static_cast<unsigned>(v.available.size()));
    for (unsigned j = 0; j < v.available.size(); ++j) {
      available[j].setName(v.available[j].first);
      available[j].setAmount(v.available[j].second);
    }
  }
}

std::vector<NodeView> read_status(wire::ClusterStatus::Reader in) {
  std::vector<NodeView> out;
  for (auto n : in.getNodes()) {
    NodeView v;
    v.id = n.getNodeId();
    v.info.name = n.getName();
    v.info.address = n.getAddress();
    v.liveness = from_wire(n.getLiveness());
    v.heartbeat_age = std::chrono::milliseconds(n.getHeartbeatAgeMs());
    read_common(n, v.info);
    for (auto r : n.getAvailable()) v.available.emplace_back(r.getName(), r.getAmount());
    out.push_back(std::move(v));
  }
  return out;
}

static_assert(static_cast<int>(wire::SelectorOp::IN) == static_cast<int>(LabelSelector::Op::in) &&
                  static_cast<int>(wire::SelectorOp::NOT_IN) ==
                      static_cast<int>(LabelSelector::Op::not_in) &&
                  static_cast<int>(wire::SelectorOp::EXISTS) ==
                      static_cast<int>(LabelSelector::Op::exists) &&
                  static_cast<int>(wire::SelectorOp::DOES_NOT_EXIST) ==
                      static_cast<int>(LabelSelector::Op::does_not_exist),
              "the wire's selector operators mirror LabelSelector::Op");

void write_selectors(capnp::List<wire::Selector>::Builder out,
                     const std::vector<LabelSelector>& selectors) {
  for (unsigned i = 0; i < selectors.size(); ++i) {
    const LabelSelector& sel = selectors[i];
    out[i].setKey(sel.key);
    out[i].setOp(static_cast<wire::SelectorOp>(sel.op));
    auto values = out[i].initValues(static_cast<unsigned>(sel.values.size()));
    for (unsigned j = 0; j < sel.values.size(); ++j) values.set(j, sel.values[j]);
  }
}

std::vector<LabelSelector> read_selectors(capnp::List<wire::Selector>::Reader in) {
  std::vector<LabelSelector> out;
  for (auto sel : in) {
    LabelSelector s;
    s.key = sel.getKey();
    s.op = static_cast<LabelSelector::Op>(sel.getOp());  // the codec admitted known values only
    for (auto v : sel.getValues()) s.values.emplace_back(v);
    out.push_back(std::move(s));
  }
  return out;
}

void write_resources(capnp::List<wire::Resource>::Builder out, const ResourceRequest& request) {
  for (unsigned i = 0; i < request.size(); ++i) {
    out[i].setName(request[i].first);
    out[i].setAmount(request[i].second);
  }
}

capnp::Data::Reader data_of(const std::string& s) {
  return {reinterpret_cast<const kj::byte*>(s.data()), s.size()};
}

LabelSelector python_nodes() {
  return {kPythonLabel, LabelSelector::Op::exists, {}};
}

std::string string_of(capnp::Data::Reader d) {
  return {reinterpret_cast<const char*>(d.begin()), d.size()};
}

void send_task_outcome(transport::Connection& conn, std::uint64_t task_id, const std::string& node,
                       const std::string* value, const std::string& remote_type,
                       const std::string& message, const std::string& traceback,
                       const std::string& details) {
  transport::ControlMessage msg;
  auto done = msg.initRoot<wire::Envelope>().getBody().initTaskFinished();
  done.setTaskId(task_id);
  done.setNode(node);
  if (value != nullptr) {
    done.getOutcome().setValue(data_of(*value));
  } else {
    auto failure = done.getOutcome().initFailure();
    failure.setRemoteType(remote_type.substr(0, transport::kMaxNameBytes));
    failure.setMessage(message.substr(0, transport::kMaxMessageTextBytes));
    failure.setTraceback(traceback.substr(0, transport::kMaxMessageTextBytes));
    if (details.size() <= transport::kMaxFailureDetailsBytes) failure.setDetails(data_of(details));
  }
  conn.send(msg);
}

void set_actor_key(wire::ActorKey::Builder out, const ActorId& id) {
  out.setOwner(id.owner);
  out.setSequence(id.sequence);
}

ActorId actor_key(wire::ActorKey::Reader in) {
  return ActorId{in.getOwner(), in.getSequence()};
}

void set_object_key(wire::ObjectKey::Builder out, const ObjectId& id) {
  out.setOwner(id.owner);
  out.setSequence(id.sequence);
}

ObjectId object_key(wire::ObjectKey::Reader in) {
  return ObjectId{in.getOwner(), in.getSequence()};
}

void send_object_pushed(transport::Connection& to, const ObjectId& id, const std::string& peer,
                        std::uint64_t attempt, const std::string& error) {
  transport::ControlMessage msg;
  auto pushed = msg.initRoot<wire::Envelope>().getBody().initObjectPushed();
  set_object_key(pushed.initObject(), id);
  pushed.setPeer(peer);
  pushed.setAttempt(attempt);
  pushed.setError(error.substr(0, transport::kMaxMessageTextBytes));
  to.send(msg);
}

std::string reachable_from(const transport::Connection& peer, const std::string& advertised) {
  // "10.1.2.3:5555" or "::1:5555": the host is what precedes the last colon.
  std::string endpoint = peer.remote_endpoint();
  auto colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon == 0) return advertised;  // "(disconnected)"
  try {
    return reachable_address(advertised, endpoint.substr(0, colon));
  } catch (const std::exception&) {
    return advertised;  // malformed: its readers find it unreachable and use the relay
  }
}

void send_free_objects(transport::Connection& to, std::span<const ObjectId> ids) {
  transport::ControlMessage msg;
  auto list = msg.initRoot<wire::Envelope>().getBody().initFreeObjects().initObjects(
      static_cast<unsigned>(ids.size()));
  for (unsigned i = 0; i < ids.size(); ++i) set_object_key(list[i], ids[i]);
  to.send(msg);
}

}  // namespace atl::runtime
