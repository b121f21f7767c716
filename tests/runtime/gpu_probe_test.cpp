// GPU probe: short model names for labels, and a probe that either finds GPUs or says why not.
#include "runtime/gpu_probe.hpp"

#include <gtest/gtest.h>

namespace {

using atl::runtime::probe_gpus;
using atl::runtime::short_gpu_model;

TEST(GpuProbeTest, short_model_names) {
  EXPECT_EQ(short_gpu_model("NVIDIA H100 80GB HBM3"), "H100");
  EXPECT_EQ(short_gpu_model("NVIDIA H200"), "H200");
  EXPECT_EQ(short_gpu_model("NVIDIA GeForce RTX 4090"), "RTX-4090");
  EXPECT_EQ(short_gpu_model("Tesla V100-SXM2-16GB"), "V100");
  EXPECT_EQ(short_gpu_model("NVIDIA A100-SXM4-80GB"), "A100");
  EXPECT_EQ(short_gpu_model("NVIDIA RTX A6000"), "RTX-A6000");
  EXPECT_EQ(short_gpu_model("Quadro RTX 8000"), "RTX-8000");
}

TEST(GpuProbeTest, probe_reports_gpus_or_why_there_are_none) {
  atl::runtime::GpuInventory inv = probe_gpus();
  ASSERT_GE(inv.count, 0);
  if (inv.count == 0) {
    EXPECT_FALSE(inv.note.empty());
    EXPECT_EQ(inv.memory_bytes, 0u);
  } else {
    EXPECT_FALSE(inv.model.empty());
    EXPECT_FALSE(inv.full_name.empty());
    EXPECT_GT(inv.memory_bytes, 0u);
    EXPECT_EQ(inv.model, short_gpu_model(inv.full_name));
  }
}

}  // namespace
