// Scheduler placement: immediate placement, per-class queues, lease reuse, fractional amounts,
// spreading, hard and soft label selectors. Driven directly with a ManualClock and fake nodes.
#include <gtest/gtest.h>

#include <vector>

#include "scheduler_test_support.hpp"

namespace scheduler_test {
namespace {

TEST_F(SchedulerTest, places_task_at_once_when_resources_fit) {
  FakeNode endpoint;
  NodeState& node = add_node("n0", &endpoint, 2);
  TaskRecord* t = submit(scheduler_.default_task_class());
  ASSERT_EQ(endpoint.ran, std::vector<TaskRecord*>{t});
  EXPECT_EQ(t->node, &node);
  EXPECT_EQ(cpus_available(node), 1 * kResourceUnit);
  EXPECT_EQ(scheduler_.queued(), 0u);
  EXPECT_TRUE(endpoint.placed.empty());
}

TEST_F(SchedulerTest, default_options_share_the_default_class) {
  EXPECT_EQ(scheduler_.class_for(TaskOptions{}), scheduler_.default_task_class());
  EXPECT_EQ(cpu_class(0.5), cpu_class(0.5));
  EXPECT_NE(cpu_class(0.5), cpu_class(0.25));
  // Actors hold no CPU unless they ask for it.
  EXPECT_TRUE(scheduler_.class_for(atl::ActorOptions{})->demand.items.empty());
}

TEST_F(SchedulerTest, queues_when_full_and_release_hands_next_task_to_finishing_node) {
  FakeNode endpoint;
  NodeState& node = add_node("n0", &endpoint, 1);
  SchedulingClass* cls = scheduler_.default_task_class();
  TaskRecord* first = submit(cls);
  TaskRecord* second = submit(cls);
  TaskRecord* third = submit(cls);
  EXPECT_EQ(endpoint.ran, std::vector<TaskRecord*>{first});
  EXPECT_EQ(scheduler_.queued(), 2u);

  TaskRecord* next = scheduler_.release(node, cls->demand, cls);
  ASSERT_EQ(next, second);  // FIFO within the class
  EXPECT_EQ(second->node, &node);
  EXPECT_EQ(cpus_available(node), 0);  // already charged for the returned task
  EXPECT_EQ(endpoint.ran.size(), 1u);  // returned to the caller, not sent through the endpoint
  EXPECT_EQ(scheduler_.queued(), 1u);

  EXPECT_EQ(scheduler_.release(node, cls->demand, cls), third);
  EXPECT_EQ(scheduler_.release(node, cls->demand, cls), nullptr);
  EXPECT_EQ(cpus_available(node), 1 * kResourceUnit);
  EXPECT_EQ(scheduler_.queued(), 0u);
}

TEST_F(SchedulerTest, an_actor_placement_in_a_task_class_goes_to_place_actor_not_back) {
  FakeNode endpoint;
  NodeState& node = add_node("n0", &endpoint, 1);
  SchedulingClass* cls = cpu_class(1);
  TaskRecord* running = submit(cls);
  TaskRecord* placement = make_task(cls, "actor");
  placement->places_actor = true;
  ASSERT_TRUE(scheduler_.submit(placement));
  TaskRecord* task = submit(cls);
  EXPECT_TRUE(scheduler_.take_queued(*cls, node, 4).empty());  // not a task for a lease
  EXPECT_EQ(scheduler_.release(node, cls->demand, cls), nullptr);
  EXPECT_EQ(endpoint.placed, std::vector<TaskRecord*>{placement});
  EXPECT_EQ(endpoint.ran, std::vector<TaskRecord*>{running});
  EXPECT_EQ(scheduler_.queued(), 1u);  // `task` waits for the actor's CPU
  EXPECT_EQ(scheduler_.release(node, cls->demand, cls), task);
}

TEST_F(SchedulerTest, take_queued_pipelines_a_class_on_a_node_without_charging) {
  FakeNode endpoint, other;
  NodeState& node = add_node("n0", &endpoint, 1);
  add_node("n1", &other, 1, {{"gpu_only", 1}});
  SchedulingClass* cls = cpu_class(1);
  submit(cls);
  submit(cls);  // both nodes busy from here on
  TaskRecord* a = submit(cls);
  TaskRecord* b = submit(cls);
  TaskRecord* c = submit(cls);
  EXPECT_EQ(scheduler_.take_queued(*cls, node, 2), (std::vector<TaskRecord*>{a, b}));
  EXPECT_EQ(a->node, &node);
  EXPECT_EQ(cpus_available(node), 0);  // nothing more charged
  EXPECT_EQ(scheduler_.queued(), 1u);
  EXPECT_EQ(scheduler_.take_queued(*cls, node, 5), std::vector<TaskRecord*>{c});
  EXPECT_TRUE(scheduler_.take_queued(*cls, node, 5).empty());
  // A class the node cannot serve gets nothing from it.
  SchedulingClass* custom = scheduler_.class_for(TaskOptions{.resources = {{"gpu_only", 1}}});
  submit(custom);
  submit(custom);
  EXPECT_TRUE(scheduler_.take_queued(*custom, node, 1).empty());
}

TEST_F(SchedulerTest, release_dispatches_other_classes_through_the_endpoint) {
  FakeNode endpoint;
  NodeState& node = add_node("n0", &endpoint, 2);
  SchedulingClass* whole = scheduler_.default_task_class();
  SchedulingClass* half = cpu_class(0.5);
  TaskRecord* a = submit(whole);
  TaskRecord* b = submit(whole);
  TaskRecord* c = submit(whole);
  TaskRecord* h = submit(half);
  EXPECT_EQ(endpoint.ran, (std::vector<TaskRecord*>{a, b}));
  EXPECT_EQ(scheduler_.queued(), 2u);

  // a finishes: its class's next task comes back, nothing is left for the other class.
  EXPECT_EQ(scheduler_.release(node, whole->demand, whole), c);
  EXPECT_FALSE(endpoint.ran_task(h));
  // b finishes with nothing of its class queued: the half-CPU task goes out through the endpoint.
  EXPECT_EQ(scheduler_.release(node, whole->demand, whole), nullptr);
  EXPECT_EQ(endpoint.ran, (std::vector<TaskRecord*>{a, b, h}));
  EXPECT_EQ(h->node, &node);
  EXPECT_EQ(cpus_available(node), kResourceUnit / 2);
  EXPECT_EQ(scheduler_.queued(), 0u);
}

TEST_F(SchedulerTest, a_waiting_class_does_not_block_other_classes) {
  FakeNode plain_ep, accel_ep;
  NodeState& plain = add_node("plain", &plain_ep, 1);
  NodeState& accel = add_node("accel", &accel_ep, 1, {{"accel", 1}});
  TaskOptions accel_opts;
  accel_opts.num_cpus = 0;
  accel_opts.resources = {{"accel", 1}};
  SchedulingClass* accel_cls = scheduler_.class_for(accel_opts);

  TaskRecord* x1 = submit(accel_cls);
  TaskRecord* x2 = submit(accel_cls);
  EXPECT_EQ(accel_ep.ran, std::vector<TaskRecord*>{x1});
  EXPECT_EQ(scheduler_.queued(), 1u);

  // Both CPU tasks run while the accelerator task waits.
  TaskRecord* c1 = submit(scheduler_.default_task_class());
  TaskRecord* c2 = submit(scheduler_.default_task_class());
  EXPECT_TRUE(plain_ep.ran_task(c1) || accel_ep.ran_task(c1));
  EXPECT_TRUE(plain_ep.ran_task(c2) || accel_ep.ran_task(c2));
  EXPECT_NE(c1->node, c2->node);
  EXPECT_EQ(cpus_available(plain), 0);
  EXPECT_EQ(cpus_available(accel), 0);
  EXPECT_EQ(scheduler_.queued(), 1u);

  EXPECT_EQ(scheduler_.release(accel, accel_cls->demand, accel_cls), x2);
  EXPECT_EQ(x2->node, &accel);
}

TEST_F(SchedulerTest, fractional_amounts_add_up_exactly) {
  FakeNode endpoint;
  NodeState& node = add_node("n0", &endpoint, 1);
  SchedulingClass* tenth = cpu_class(0.1);
  for (int i = 0; i < 10; ++i) submit(tenth);
  EXPECT_EQ(endpoint.ran.size(), 10u);
  EXPECT_EQ(cpus_available(node), 0);
  TaskRecord* eleventh = submit(tenth);
  EXPECT_EQ(endpoint.ran.size(), 10u);
  EXPECT_EQ(scheduler_.queued(), 1u);
  EXPECT_EQ(scheduler_.release(node, tenth->demand, tenth), eleventh);
  EXPECT_EQ(cpus_available(node), 0);
}

TEST_F(SchedulerTest, spreads_tasks_over_equal_nodes) {
  FakeNode ep0, ep1;
  add_node("n0", &ep0, 4);
  add_node("n1", &ep1, 4);
  submit(scheduler_.default_task_class());
  submit(scheduler_.default_task_class());
  EXPECT_EQ(ep0.ran.size(), 1u);
  EXPECT_EQ(ep1.ran.size(), 1u);
}

TEST_F(SchedulerTest, label_selector_restricts_placement) {
  FakeNode eu_ep, us_ep;
  add_node("eu", &eu_ep, 4, {}, {{"zone", "eu"}});
  NodeState& us = add_node("us", &us_ep, 4, {}, {{"zone", "us"}});
  TaskOptions o;
  o.label_selector = {LabelSelector::in("zone", {"us", "ap"})};
  SchedulingClass* cls = scheduler_.class_for(o);
  for (int i = 0; i < 4; ++i) submit(cls);
  EXPECT_TRUE(eu_ep.ran.empty());
  EXPECT_EQ(us_ep.ran.size(), 4u);

  // Once the matching node is full, the class waits instead of spilling to the other node.
  TaskRecord* waiting = submit(cls);
  EXPECT_TRUE(eu_ep.ran.empty());
  EXPECT_EQ(scheduler_.queued(), 1u);
  EXPECT_EQ(scheduler_.release(us, cls->demand, cls), waiting);

  TaskOptions not_us;
  not_us.label_selector = {LabelSelector::not_in("zone", {"us"})};
  TaskRecord* t = submit(scheduler_.class_for(not_us));
  EXPECT_EQ(eu_ep.ran, std::vector<TaskRecord*>{t});
}

TEST_F(SchedulerTest, preferred_labels_steer_placement_when_both_nodes_fit) {
  FakeNode plain_ep, fast_ep;
  NodeState& plain = add_node("plain", &plain_ep, 2);
  NodeState& fast = add_node("fast", &fast_ep, 2, {}, {{"gpu_model", "H100"}});
  TaskOptions o;
  o.preferred_labels = {LabelSelector::equals("gpu_model", "H100")};
  SchedulingClass* cls = scheduler_.class_for(o);
  TaskRecord* first = submit(cls);
  TaskRecord* second = submit(cls);  // the preferred node is now busier, but still preferred
  EXPECT_EQ(first->node, &fast);
  EXPECT_EQ(second->node, &fast);
  // A preference is not a requirement: with the preferred node full, the other one is used.
  TaskRecord* third = submit(cls);
  EXPECT_EQ(third->node, &plain);
  EXPECT_EQ(fast_ep.ran.size(), 2u);
  EXPECT_EQ(plain_ep.ran.size(), 1u);
}

}  // namespace
}  // namespace scheduler_test
