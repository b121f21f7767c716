// Converting membership records to and from their wire messages.
#pragma once

#include <vector>

#include "runtime/membership.hpp"
#include "transport/schema/control.capnp.h"

namespace atl::runtime {

void write_node_info(wire::RegisterNode::Builder out, const NodeInfo& info);
NodeInfo read_node_info(wire::RegisterNode::Reader in);
void write_status(wire::ClusterStatus::Builder out, const std::vector<NodeView>& nodes);
std::vector<NodeView> read_status(wire::ClusterStatus::Reader in);

}  // namespace atl::runtime
