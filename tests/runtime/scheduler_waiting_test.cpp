// Scheduler waiting and shutdown: infeasible classes and their timeout, lending and reclaiming a
// blocked worker's resources, stop, and validation of options. Driven with a ManualClock.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "atoll/errors.hpp"
#include "scheduler_test_support.hpp"

namespace scheduler_test {
namespace {

TEST_F(SchedulerTest, infeasible_task_fails_only_after_the_timeout) {
  FakeNode endpoint;
  add_node("n0", &endpoint, 4);
  TaskOptions o;
  o.resources = {{"TPU", 1}};
  TaskRecord* t = submit(scheduler_.class_for(o), "needs_tpu");
  EXPECT_TRUE(endpoint.ran.empty());
  EXPECT_TRUE(scheduler_.has_infeasible());
  EXPECT_EQ(scheduler_.queued(), 1u);

  // Infeasible work does not hold up feasible work.
  submit(scheduler_.default_task_class());
  EXPECT_EQ(endpoint.ran.size(), 1u);

  scheduler_.expire(clock_.now());
  clock_.advance(kTimeout - std::chrono::milliseconds(1));
  scheduler_.expire(clock_.now());
  EXPECT_TRUE(failed_.empty());
  EXPECT_TRUE(scheduler_.has_infeasible());

  clock_.advance(std::chrono::milliseconds(2));
  scheduler_.expire(clock_.now());
  ASSERT_EQ(failed_.size(), 1u);
  EXPECT_EQ(failed_[0].first, t);
  ASSERT_NE(failed_[0].second, nullptr);
  EXPECT_EQ(failed_[0].second->kind, atl::ErrorKind::infeasible);
  EXPECT_NE(failed_[0].second->message.find("TPU"), std::string::npos)
      << failed_[0].second->message;
  EXPECT_NE(failed_[0].second->message.find("needs_tpu"), std::string::npos)
      << failed_[0].second->message;
  EXPECT_FALSE(scheduler_.has_infeasible());
  EXPECT_EQ(scheduler_.queued(), 0u);

  scheduler_.expire(clock_.now());  // nothing is failed twice
  EXPECT_EQ(failed_.size(), 1u);
}

TEST_F(SchedulerTest, unmatched_label_selector_is_infeasible) {
  FakeNode endpoint;
  add_node("n0", &endpoint, 4, {}, {{"zone", "eu"}});
  TaskOptions o;
  o.label_selector = {LabelSelector::equals("zone", "mars")};
  TaskRecord* t = submit(scheduler_.class_for(o));
  EXPECT_TRUE(endpoint.ran.empty());
  EXPECT_TRUE(scheduler_.has_infeasible());
  clock_.advance(kTimeout + std::chrono::milliseconds(1));
  scheduler_.expire(clock_.now());
  ASSERT_EQ(failed_.size(), 1u);
  EXPECT_EQ(failed_[0].first, t);
  EXPECT_EQ(failed_[0].second->kind, atl::ErrorKind::infeasible);
  EXPECT_NE(failed_[0].second->message.find("mars"), std::string::npos)
      << failed_[0].second->message;
}

TEST_F(SchedulerTest, lend_dispatches_and_reclaim_may_go_negative) {
  FakeNode endpoint;
  NodeState& node = add_node("n0", &endpoint, 1);
  SchedulingClass* cls = scheduler_.default_task_class();
  TaskRecord* blocked = submit(cls);
  TaskRecord* waiting = submit(cls);
  EXPECT_EQ(endpoint.ran, std::vector<TaskRecord*>{blocked});

  // The running task blocks in `get` and lends its CPU: the queued task runs.
  scheduler_.lend(node, cls->demand);
  EXPECT_EQ(endpoint.ran, (std::vector<TaskRecord*>{blocked, waiting}));
  EXPECT_EQ(cpus_available(node), 0);

  // It resumes and takes its CPU back although the borrower still holds it.
  scheduler_.reclaim(node, cls->demand);
  EXPECT_EQ(cpus_available(node), -1 * kResourceUnit);
  TaskRecord* later = submit(cls);
  EXPECT_EQ(endpoint.ran.size(), 2u);
  EXPECT_EQ(scheduler_.queued(), 1u);

  // The borrower finishes: back at zero, still nothing to dispatch.
  EXPECT_EQ(scheduler_.release(node, cls->demand, cls), nullptr);
  EXPECT_EQ(cpus_available(node), 0);
  EXPECT_EQ(endpoint.ran.size(), 2u);
  // The lender finishes: its CPU goes to the queued task.
  EXPECT_EQ(scheduler_.release(node, cls->demand, cls), later);
  EXPECT_EQ(cpus_available(node), 0);
}

TEST_F(SchedulerTest, stop_returns_queued_tasks_and_refuses_new_ones) {
  FakeNode endpoint;
  NodeState& node = add_node("n0", &endpoint, 1);
  SchedulingClass* cls = scheduler_.default_task_class();
  TaskRecord* running = submit(cls);
  TaskRecord* queued = submit(cls);
  TaskOptions o;
  o.resources = {{"TPU", 1}};
  TaskRecord* infeasible = submit(scheduler_.class_for(o));

  std::vector<TaskRecord*> returned = scheduler_.stop();
  std::sort(returned.begin(), returned.end());
  std::vector<TaskRecord*> expected{queued, infeasible};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(returned, expected);
  EXPECT_EQ(scheduler_.queued(), 0u);
  EXPECT_FALSE(scheduler_.has_infeasible());

  TaskRecord* late = make_task(cls);
  EXPECT_FALSE(scheduler_.submit(late));
  EXPECT_EQ(late->node, nullptr);
  // The running task still returns its resources, but nothing new is handed out.
  EXPECT_EQ(scheduler_.release(node, cls->demand, cls), nullptr);
  EXPECT_EQ(cpus_available(node), 1 * kResourceUnit);
  EXPECT_EQ(endpoint.ran, std::vector<TaskRecord*>{running});
  clock_.advance(kTimeout * 2);
  scheduler_.expire(clock_.now());
  EXPECT_TRUE(failed_.empty());
}

atl::ErrorCategory class_for_error(Scheduler& scheduler, const TaskOptions& o) {
  try {
    scheduler.class_for(o);
  } catch (const atl::Error& e) {
    return e.category();
  }
  ADD_FAILURE() << "class_for accepted invalid options";
  return atl::ErrorCategory::failed;
}

TEST_F(SchedulerTest, class_for_rejects_invalid_options) {
  constexpr auto kInvalid = atl::ErrorCategory::invalid_argument;
  TaskOptions negative;
  negative.num_cpus = -1;
  EXPECT_EQ(class_for_error(scheduler_, negative), kInvalid);

  TaskOptions twice;
  twice.num_gpus = 1;
  twice.resources = {{"GPU", 1}};
  EXPECT_EQ(class_for_error(scheduler_, twice), kInvalid);

  TaskOptions empty_key;
  empty_key.label_selector = {LabelSelector::exists("")};
  EXPECT_EQ(class_for_error(scheduler_, empty_key), kInvalid);

  TaskOptions no_values;
  no_values.label_selector = {LabelSelector::in("zone", {})};
  EXPECT_EQ(class_for_error(scheduler_, no_values), kInvalid);

  TaskOptions soft_no_values;
  soft_no_values.preferred_labels = {LabelSelector::not_in("zone", {})};
  EXPECT_EQ(class_for_error(scheduler_, soft_no_values), kInvalid);

  atl::ActorOptions actor;
  actor.num_gpus = -0.5;
  EXPECT_THROW(scheduler_.class_for(actor), atl::Error);
}

// "A class no node can satisfy waits infeasible_timeout (a node may join)": a node that joins
// during the wait should receive the waiting task. Today add_node recomputes `feasible` but leaves
// the task counted as infeasible, so it is neither dispatched nor ever failed.
TEST_F(SchedulerTest, node_joining_during_the_wait_runs_the_waiting_task) {
  FakeNode cpu_ep, tpu_ep;
  NodeState& cpu_node = add_node("cpu", &cpu_ep, 1);
  TaskOptions o;
  o.num_cpus = 0;
  o.resources = {{"TPU", 1}};
  SchedulingClass* cls = scheduler_.class_for(o);
  TaskRecord* t = submit(cls);
  EXPECT_TRUE(scheduler_.has_infeasible());

  add_node("tpu", &tpu_ep, 1, {{"TPU", 1}});
  // Give the scheduler every chance to notice: a release and an expiry pass.
  EXPECT_EQ(scheduler_.release(cpu_node, {}, nullptr), nullptr);
  scheduler_.expire(clock_.now());
  EXPECT_EQ(tpu_ep.ran, std::vector<TaskRecord*>{t});
  EXPECT_FALSE(scheduler_.has_infeasible());
  EXPECT_EQ(scheduler_.queued(), 0u);
  clock_.advance(kTimeout * 2);
  scheduler_.expire(clock_.now());
  EXPECT_TRUE(failed_.empty());
}

}  // namespace
}  // namespace scheduler_test
