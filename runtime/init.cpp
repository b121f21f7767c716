// atl::init: the embedded runtime, or a driver connected to a cluster's head.
#include "atoll/runtime.hpp"
#include "runtime/cluster_core.hpp"
#include "runtime/embedded_core.hpp"

namespace atl {

Runtime init(InitOptions options) {
  if (options.address.empty()) return Runtime(runtime::EmbeddedCore::create(std::move(options)));
  return Runtime(runtime::ClusterCore::create(std::move(options)));
}

}  // namespace atl
