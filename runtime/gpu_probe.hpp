// What GPUs this machine has, through the CUDA runtime when atoll is built with CUDA. A machine
// without a GPU (or a build without CUDA) reports none, with the reason in `note`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace atl::runtime {

struct GpuInventory {
  int count = 0;
  std::string model;               // short form for labels, e.g. "H100", "RTX-4090"
  std::string full_name;           // as the driver reports it
  std::uint64_t memory_bytes = 0;  // of the first GPU
  std::string note;                // why none were found
};

GpuInventory probe_gpus();

// "NVIDIA H100 80GB HBM3" -> "H100", "NVIDIA GeForce RTX 4090" -> "RTX-4090",
// "Tesla V100-SXM2-16GB" -> "V100".
std::string short_gpu_model(std::string_view full_name);

}  // namespace atl::runtime
