#include "runtime/gpu_probe.hpp"

#include <cctype>
#include <sstream>
#include <vector>

#ifdef ATOLL_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace atl::runtime {

std::string short_gpu_model(std::string_view full_name) {
  std::istringstream in{std::string(full_name)};
  std::vector<std::string> parts;
  for (std::string token; in >> token;) {
    if (token == "NVIDIA" || token == "GeForce" || token == "Tesla" || token == "Quadro") continue;
    bool has_digit = false;
    for (char c : token) has_digit = has_digit || std::isdigit(static_cast<unsigned char>(c));
    if (has_digit) {
      parts.push_back(token.substr(0, token.find('-')));
      break;
    }
    parts.push_back(token);
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "-") + p;
  return out.empty() ? std::string(full_name) : out;
}

GpuInventory probe_gpus() {
  GpuInventory inv;
#ifdef ATOLL_WITH_CUDA
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    inv.note = status != cudaSuccess ? std::string("no usable GPU: ") + cudaGetErrorString(status)
                                     : "no GPU found";
    return inv;
  }
  cudaDeviceProp props{};
  status = cudaGetDeviceProperties(&props, 0);
  if (status != cudaSuccess) {
    inv.note = std::string("cannot read GPU properties: ") + cudaGetErrorString(status);
    return inv;
  }
  inv.count = count;
  inv.full_name = props.name;
  inv.model = short_gpu_model(props.name);
  inv.memory_bytes = props.totalGlobalMem;
#else
  inv.note = "atoll was built without CUDA (ATOLL_WITH_CUDA=OFF)";
#endif
  return inv;
}

}  // namespace atl::runtime
