// Converting membership records, label selectors and resource requests to and from their wire
// messages.
#pragma once

#include <span>
#include <vector>

#include "atoll/ids.hpp"
#include "atoll/options.hpp"
#include "runtime/membership.hpp"
#include "transport/connection.hpp"

namespace atl::runtime {

void write_node_info(wire::RegisterNode::Builder out, const NodeInfo& info);
NodeInfo read_node_info(wire::RegisterNode::Reader in);
void write_status(wire::ClusterStatus::Builder out, const std::vector<NodeView>& nodes);
std::vector<NodeView> read_status(wire::ClusterStatus::Reader in);

capnp::Data::Reader data_of(const std::string& s);

// The label a node that runs Python code carries (the Python version, e.g. "3.11"), and the
// selector that asks for such a node.
inline constexpr const char* kPythonLabel = "python";
LabelSelector python_nodes();
std::string string_of(capnp::Data::Reader d);

// Sends a TaskFinished: the value, or a failure of `remote_type` with `message` (and a binding's
// traceback and details of the exception, when it has them).
void send_task_outcome(transport::Connection& conn, std::uint64_t task_id, const std::string& node,
                       const std::string* value, const std::string& remote_type,
                       const std::string& message, const std::string& traceback = {},
                       const std::string& details = {});

void set_actor_key(wire::ActorKey::Builder out, const ActorId& id);
ActorId actor_key(wire::ActorKey::Reader in);
void set_object_key(wire::ObjectKey::Builder out, const ObjectId& id);
ObjectId object_key(wire::ObjectKey::Reader in);

// ObjectPushed: how the push of `id` to `peer` for its fetch `attempt` ended ("" when the peer
// holds every byte).
void send_object_pushed(transport::Connection& to, const ObjectId& id, const std::string& peer,
                        std::uint64_t attempt, const std::string& error);
// A data-plane address `peer` advertised, with an unspecified host (it listens on every
// interface) replaced by the host its control connection comes from: where others can reach
// it. Unchanged when that cannot be worked out (a malformed address, a closed connection).
std::string reachable_from(const transport::Connection& peer, const std::string& advertised);
// FreeObjects naming `ids`.
void send_free_objects(transport::Connection& to, std::span<const ObjectId> ids);

void write_selectors(capnp::List<wire::Selector>::Builder out,
                     const std::vector<LabelSelector>& selectors);
std::vector<LabelSelector> read_selectors(capnp::List<wire::Selector>::Reader in);

// The resources a request names, as the driver sends them ("CPU" only when given, so the head
// applies the task's or actor's default).
using ResourceRequest = std::vector<std::pair<std::string, double>>;
template <class Options>
ResourceRequest resource_request(const Options& o) {
  ResourceRequest r;
  if (o.num_cpus) r.emplace_back("CPU", *o.num_cpus);
  if (o.num_gpus != 0) r.emplace_back("GPU", o.num_gpus);
  if (o.memory != 0) r.emplace_back("memory", static_cast<double>(o.memory));
  for (const auto& [name, amount] : o.resources) r.emplace_back(name, amount);
  return r;
}
void write_resources(capnp::List<wire::Resource>::Builder out, const ResourceRequest& request);
// Fills the resource fields of TaskOptions or ActorOptions back from the wire.
template <class Options>
void read_resources(capnp::List<wire::Resource>::Reader in, Options& o) {
  for (auto r : in) o.resources[r.getName()] = r.getAmount();
}

}  // namespace atl::runtime
