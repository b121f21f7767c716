// The fixture shared by the scheduler tests: a Scheduler on a ManualClock, fake nodes that record
// what they are sent, and TaskRecords owned by the test.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/scheduler.hpp"

// A named namespace (not an anonymous one): both test files must see one fixture type.
namespace scheduler_test {

using atl::LabelSelector;
using atl::TaskOptions;
using atl::runtime::ErrorPtr;
using atl::runtime::kResourceUnit;
using atl::runtime::Labels;
using atl::runtime::make_demand;
using atl::runtime::ManualClock;
using atl::runtime::NodeEndpoint;
using atl::runtime::NodeState;
using atl::runtime::ResourceNames;
using atl::runtime::ResourceVector;
using atl::runtime::Scheduler;
using atl::runtime::SchedulingClass;
using atl::runtime::TaskRecord;

inline constexpr auto kTimeout = std::chrono::seconds(5);

// Records what the scheduler sends to the node.
class FakeNode final : public NodeEndpoint {
 public:
  void run_task(TaskRecord* task) override { ran.push_back(task); }
  void place_actor(TaskRecord* placement) override { placed.push_back(placement); }

  bool ran_task(const TaskRecord* task) const {
    return std::find(ran.begin(), ran.end(), task) != ran.end();
  }

  std::vector<TaskRecord*> ran;
  std::vector<TaskRecord*> placed;
};

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest()
      : scheduler_(clock_, kTimeout,
                   [this](TaskRecord* t, ErrorPtr e) { failed_.emplace_back(t, std::move(e)); }) {}

  NodeState& add_node(const std::string& name, FakeNode* endpoint, double cpus,
                      std::map<std::string, double> custom = {}, Labels labels = {}) {
    auto demand = make_demand(scheduler_.names(), cpus, 0, 0, 0, custom);
    ResourceVector total;
    total.add(demand);
    return scheduler_.add_node(name, std::move(labels), total, endpoint);
  }

  TaskRecord* make_task(SchedulingClass* cls, std::string name = "") {
    tasks_.push_back(std::make_unique<TaskRecord>());
    tasks_.back()->cls = cls;
    tasks_.back()->custom_name = std::move(name);
    return tasks_.back().get();
  }

  TaskRecord* submit(SchedulingClass* cls, std::string name = "") {
    TaskRecord* t = make_task(cls, std::move(name));
    EXPECT_TRUE(scheduler_.submit(t));
    return t;
  }

  SchedulingClass* cpu_class(double cpus) {
    TaskOptions o;
    o.num_cpus = cpus;
    return scheduler_.class_for(o);
  }

  ManualClock clock_;
  std::vector<std::pair<TaskRecord*, ErrorPtr>> failed_;
  Scheduler scheduler_;
  std::deque<std::unique_ptr<TaskRecord>> tasks_;
};

inline std::int64_t cpus_available(const NodeState& node) {
  return node.available.get(ResourceNames::cpu);
}

}  // namespace scheduler_test
