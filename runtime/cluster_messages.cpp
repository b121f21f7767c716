#include "runtime/cluster_messages.hpp"

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
}

NodeInfo read_node_info(wire::RegisterNode::Reader in) {
  NodeInfo info;
  read_common(in, info);
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
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace atl::runtime
