// Task options: fractional CPUs, custom resources, label selectors, infeasible requests, retries,
// invalid options.
#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "test_module.hpp"

namespace {

using namespace std::chrono_literals;
using api_test::kWait;
using api_test::make_runtime;
using api_test::thrown_category;
using atl::ErrorCategory;
using atl::LabelSelector;

class TaskOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override { api_test::reset_state(); }
};

// Two nodes: only node-a (island eu, zone a) has the custom resource "accel".
atl::Runtime make_two_node_runtime() {
  return atl::init(
      {.modules = {api_test_module},
       .nodes = {{.name = "node-a",
                  .island = "eu",
                  .num_cpus = 2,
                  .resources = {{"accel", 1.0}},
                  .labels = {{"zone", "a"}}},
                 {.name = "node-b", .island = "us", .num_cpus = 2, .labels = {{"zone", "b"}}}},
       .infeasible_timeout = 100ms});
}

TEST_F(TaskOptionsTest, fractional_cpus_let_two_tasks_share_one_cpu) {
  auto rt = make_runtime(1);
  // Each waits for the other at a barrier: both succeed only if they run at the same time.
  auto a = rt.task(api_test::barrier_arrive).options({.num_cpus = 0.5}).remote(2);
  auto b = rt.task(api_test::barrier_arrive).options({.num_cpus = 0.5}).remote(2);
  EXPECT_TRUE(a.get(kWait));
  EXPECT_TRUE(b.get(kWait));
}

TEST_F(TaskOptionsTest, request_larger_than_every_node_is_infeasible) {
  auto rt = atl::init(
      {.modules = {api_test_module}, .nodes = {{.num_cpus = 1}}, .infeasible_timeout = 100ms});
  auto r = rt.task(api_test::add).options({.num_cpus = 1.5}).remote(1, 2);
  EXPECT_THROW(r.get(kWait), atl::InfeasibleError);
}

TEST_F(TaskOptionsTest, custom_resource_limits_concurrency) {
  auto rt = make_two_node_runtime();
  std::vector<atl::ObjectRef<int>> refs;
  for (int i = 0; i < 4; ++i) {
    refs.push_back(
        rt.task(api_test::track_concurrency).options({.resources = {{"accel", 1.0}}}).remote(20));
  }
  EXPECT_EQ(rt.get(refs, kWait), std::vector<int>(4, 1));
  EXPECT_EQ(api_test::max_in_flight(), 1);  // only one unit of "accel" exists
}

TEST_F(TaskOptionsTest, label_selectors_pick_matching_nodes) {
  auto rt = make_two_node_runtime();
  auto on = [&](std::vector<LabelSelector> selector, std::map<std::string, double> resources) {
    return rt.task(api_test::add)
        .options({.resources = std::move(resources), .label_selector = std::move(selector)})
        .remote(1, 2);
  };
  std::map<std::string, double> accel = {{"accel", 1.0}};
  // Feasible: the "accel" node is zone a, island eu.
  auto ok_zone = on({LabelSelector::equals("zone", "a")}, accel);
  auto ok_island = on({LabelSelector::in("island", {"eu", "asia"})}, accel);
  auto ok_other = on({LabelSelector::equals("zone", "b")}, {});
  auto ok_exists = on({LabelSelector::exists("zone")}, {});
  auto ok_not_in = on({LabelSelector::not_in("zone", {"b"})}, accel);
  // Infeasible: no node has both the resource and the labels.
  auto bad_zone = on({LabelSelector::equals("zone", "b")}, accel);
  auto bad_island = on({LabelSelector::equals("island", "us")}, accel);
  auto bad_missing = on({LabelSelector::does_not_exist("zone")}, {});

  EXPECT_EQ(ok_zone.get(kWait), 3);
  EXPECT_EQ(ok_island.get(kWait), 3);
  EXPECT_EQ(ok_other.get(kWait), 3);
  EXPECT_EQ(ok_exists.get(kWait), 3);
  EXPECT_EQ(ok_not_in.get(kWait), 3);
  EXPECT_THROW(bad_zone.get(kWait), atl::InfeasibleError);
  EXPECT_THROW(bad_island.get(kWait), atl::InfeasibleError);
  EXPECT_THROW(bad_missing.get(kWait), atl::InfeasibleError);

  // Preferred labels are soft: nothing matches, the task still runs.
  auto preferred = rt.task(api_test::add)
                       .options({.preferred_labels = {LabelSelector::equals("zone", "nowhere")}})
                       .remote(2, 2);
  EXPECT_EQ(preferred.get(kWait), 4);
}

TEST_F(TaskOptionsTest, task_error_names_the_node_that_ran_the_task) {
  auto rt = make_two_node_runtime();
  for (std::string zone : {"a", "b"}) {
    auto r = rt.task(api_test::throw_if_negative)
                 .options({.label_selector = {LabelSelector::equals("zone", zone)}})
                 .remote(-1);
    try {
      r.get(kWait);
      ADD_FAILURE() << "expected TaskError";
    } catch (const atl::TaskError& e) {
      EXPECT_EQ(e.node(), "node-" + zone);
    }
  }
}

TEST_F(TaskOptionsTest, gpu_request_without_gpu_node_is_infeasible) {
  auto rt = make_two_node_runtime();
  auto r = rt.task(api_test::add).options({.num_gpus = 1}).remote(1, 2);
  try {
    r.get(kWait);
    ADD_FAILURE() << "expected InfeasibleError";
  } catch (const atl::InfeasibleError& e) {
    EXPECT_EQ(e.category(), ErrorCategory::invalid_argument);
  }
}

TEST_F(TaskOptionsTest, hard_label_selector_matching_no_node_is_infeasible) {
  auto rt = make_two_node_runtime();
  auto r = rt.task(api_test::add)
               .options({.label_selector = {LabelSelector::equals("zone", "nowhere")}})
               .remote(1, 2);
  EXPECT_THROW(r.get(kWait), atl::InfeasibleError);
}

TEST_F(TaskOptionsTest, retry_exceptions_reruns_a_throwing_task) {
  auto rt = make_runtime();
  auto r = rt.task(api_test::flaky).options({.max_retries = 3, .retry_exceptions = true}).remote(2);
  EXPECT_EQ(r.get(kWait), 3);
  EXPECT_EQ(api_test::attempts(), 3);
}

TEST_F(TaskOptionsTest, exceptions_are_not_retried_by_default) {
  auto rt = make_runtime();
  EXPECT_THROW(rt.task(api_test::flaky).remote(2).get(kWait), atl::TaskError);
  EXPECT_EQ(api_test::attempts(), 1);

  api_test::reset_state();
  auto r = rt.task(api_test::flaky).options({.max_retries = 5}).remote(2);
  EXPECT_THROW(r.get(kWait), atl::TaskError);
  EXPECT_EQ(api_test::attempts(), 1);
}

TEST_F(TaskOptionsTest, retries_stop_after_max_retries) {
  auto rt = make_runtime();
  auto r =
      rt.task(api_test::flaky).options({.max_retries = 2, .retry_exceptions = true}).remote(10);
  try {
    r.get(kWait);
    ADD_FAILURE() << "expected TaskError";
  } catch (const atl::TaskError& e) {
    EXPECT_NE(e.remote_message().find("attempt 3 failed"), std::string::npos) << e.remote_message();
  }
  EXPECT_EQ(api_test::attempts(), 3);
}

TEST_F(TaskOptionsTest, bad_options_are_invalid_argument) {
  auto rt = make_runtime();
  auto category_of = [&](atl::TaskOptions options) {
    return thrown_category([&] { (void)rt.task(api_test::add).options(options).remote(1, 2); });
  };
  EXPECT_EQ(category_of({.num_cpus = -1}), ErrorCategory::invalid_argument);
  EXPECT_EQ(category_of({.num_gpus = -0.5}), ErrorCategory::invalid_argument);
  EXPECT_EQ(category_of({.num_gpus = std::numeric_limits<double>::quiet_NaN()}),
            ErrorCategory::invalid_argument);
  EXPECT_EQ(category_of({.resources = {{"widgets", -1.0}}}), ErrorCategory::invalid_argument);
  EXPECT_EQ(category_of({.num_cpus = 1, .resources = {{"CPU", 2.0}}}),
            ErrorCategory::invalid_argument);

  EXPECT_EQ(thrown_category([] {
              (void)atl::init({.modules = {api_test_module}, .nodes = {{.num_cpus = -2}}});
            }),
            ErrorCategory::invalid_argument);
  // The runtime still works after rejected submissions.
  EXPECT_EQ(rt.task(api_test::add).remote(1, 2).get(kWait), 3);
}

}  // namespace
