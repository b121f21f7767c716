// Limits and placement: a full object store, GPUs held by actors, fractional GPUs, GPU-model
// labels, actors that cannot be placed, and init's own errors.
#include <gtest/gtest.h>

#include <string>

#include "test_module.hpp"

namespace {

using api_test::kWait;
using atl::ErrorCategory;
using namespace std::chrono_literals;

class LimitsTest : public ::testing::Test {
 protected:
  void SetUp() override { api_test::reset_state(); }
};

atl::Runtime gpu_runtime() {
  return atl::init(
      {.modules = {api_test_module},
       .nodes = {{.name = "gpu-box", .num_cpus = 4, .num_gpus = 1, .gpu_model = "H100"}},
       .infeasible_timeout = 100ms});
}

TEST_F(LimitsTest, put_beyond_the_store_capacity_is_store_full) {
  auto rt = atl::init(
      {.modules = {api_test_module}, .nodes = {{.num_cpus = 2}}, .object_store_memory = 1 << 20});
  auto big = atl::Buffer::copy_of(std::string(2 << 20, 'x').data(), 2 << 20);
  EXPECT_THROW(rt.put(big), atl::ObjectStoreFullError);
  EXPECT_EQ(api_test::thrown_category([&] { rt.put(big); }), ErrorCategory::overloaded);
  EXPECT_EQ(rt.put(7).get(kWait), 7);  // small values still fit
}

TEST_F(LimitsTest, task_result_beyond_the_store_capacity_fails_that_object) {
  auto rt = atl::init(
      {.modules = {api_test_module}, .nodes = {{.num_cpus = 2}}, .object_store_memory = 1 << 20});
  auto ref = rt.task(api_test::make_buffer).remote(std::uint64_t{2} << 20, 1);
  EXPECT_THROW(ref.get(kWait), atl::ObjectStoreFullError);
  EXPECT_EQ(rt.task(api_test::add).remote(1, 2).get(kWait), 3);
}

TEST_F(LimitsTest, stored_bytes_are_returned_when_objects_are_freed) {
  auto rt = api_test::make_runtime(2);
  const auto before = rt.stats().object_bytes;
  {
    auto ref = rt.put(atl::Buffer::copy_of(std::string(1 << 16, 'y').data(), 1 << 16));
    EXPECT_GE(rt.stats().object_bytes, before + (1 << 16));
  }
  EXPECT_EQ(rt.stats().object_bytes, before);
}

TEST_F(LimitsTest, an_actor_holding_the_only_gpu_blocks_the_next_until_killed) {
  auto rt = gpu_runtime();
  auto first = rt.actor<api_test::Counter>().options({.num_gpus = 1}).remote();
  EXPECT_EQ(first.call(&api_test::Counter::incr, 1).get(kWait), 1);
  auto second = rt.actor<api_test::Counter>().options({.num_gpus = 1}).remote();
  auto waiting = second.call(&api_test::Counter::incr, 2);
  EXPECT_THROW(waiting.get(300ms), atl::GetTimeoutError);  // no GPU free: not placed yet
  rt.kill(first);
  EXPECT_EQ(waiting.get(kWait), 2);
}

TEST_F(LimitsTest, fractional_gpus_share_one_device) {
  auto rt = gpu_runtime();
  atl::TaskOptions half{.num_gpus = 0.5};
  auto a = rt.task(api_test::barrier_arrive).options(half).remote(2);
  auto b = rt.task(api_test::barrier_arrive).options(half).remote(2);
  EXPECT_TRUE(a.get(kWait));  // both ran at once on the single GPU
  EXPECT_TRUE(b.get(kWait));
}

TEST_F(LimitsTest, gpu_model_label_selects_nodes) {
  auto rt = gpu_runtime();
  auto on_h100 = rt.task(api_test::add)
                     .options({.label_selector = {atl::LabelSelector::equals("gpu_model", "H100")}})
                     .remote(1, 1);
  EXPECT_EQ(on_h100.get(kWait), 2);
  auto on_a100 = rt.task(api_test::add)
                     .options({.label_selector = {atl::LabelSelector::equals("gpu_model", "A100")}})
                     .remote(1, 1);
  try {
    on_a100.get(kWait);
    FAIL() << "expected InfeasibleError";
  } catch (const atl::InfeasibleError& e) {
    EXPECT_NE(std::string(e.what()).find("gpu_model"), std::string::npos) << e.what();
  }
}

TEST_F(LimitsTest, an_actor_no_node_can_host_dies_with_the_reason) {
  auto rt = atl::init(
      {.modules = {api_test_module}, .nodes = {{.num_cpus = 2}}, .infeasible_timeout = 100ms});
  auto actor = rt.actor<api_test::Counter>().options({.num_gpus = 1}).remote();
  try {
    actor.call(&api_test::Counter::incr, 1).get(kWait);
    FAIL() << "expected ActorDiedError";
  } catch (const atl::ActorDiedError& e) {
    EXPECT_NE(std::string(e.what()).find("could not be placed"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("GPU"), std::string::npos) << e.what();
  }
}

TEST_F(LimitsTest, init_rejects_what_it_cannot_do) {
  EXPECT_EQ(api_test::thrown_category([] { atl::init({.address = "head:7100"}); }),
            ErrorCategory::invalid_argument);  // a cluster driver needs its job module
  EXPECT_EQ(api_test::thrown_category([] { atl::init({.nodes = {{.num_gpus = 2}}}); }),
            ErrorCategory::invalid_argument);  // GPUs need a model
  EXPECT_EQ(api_test::thrown_category([] { atl::init({.modules = {nullptr}}); }),
            ErrorCategory::invalid_argument);
}

TEST_F(LimitsTest, refs_of_another_runtime_are_rejected) {
  auto a = api_test::make_runtime(1);
  auto b = api_test::make_runtime(1);
  auto ref = a.put(5);
  EXPECT_EQ(api_test::thrown_category([&] { b.task(api_test::plus_one).remote(ref); }),
            ErrorCategory::invalid_argument);
  EXPECT_EQ(api_test::thrown_category([&] { b.wait(std::vector{ref}, 1); }),
            ErrorCategory::invalid_argument);
}

}  // namespace
