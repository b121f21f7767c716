// Remote tasks: values, dependencies, nesting, errors, get/wait/cancel, several runtimes, shutdown.
// Task options (resources, labels, retries) are in task_options_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "test_module.hpp"

namespace {

using namespace std::chrono_literals;
using api_test::kWait;
using api_test::make_runtime;
using api_test::thrown_category;
using atl::ErrorCategory;

class TasksTest : public ::testing::Test {
 protected:
  void SetUp() override { api_test::reset_state(); }
};

void duplicate_function_module(atl::Registry& reg) {
  reg.function("add_again", &api_test::add);
}

TEST_F(TasksTest, returns_values) {
  auto rt = make_runtime();
  EXPECT_EQ(rt.task(api_test::add).remote(1, 2).get(kWait), 3);
  EXPECT_EQ(rt.task(api_test::concat).remote(std::string("ab"), "cd").get(kWait), "abcd");
  api_test::Point p =
      rt.task(api_test::translate).remote(api_test::Point{1, 2, "p"}, 0.5).get(kWait);
  EXPECT_EQ(p, (api_test::Point{1.5, 2, "p+"}));
  auto ref = rt.task(api_test::square).remote(7);
  EXPECT_EQ(rt.get(ref, kWait), 49);
  EXPECT_EQ(rt.get(ref, kWait), 49);  // an object can be read many times
}

TEST_F(TasksTest, void_tasks_complete_and_report_errors) {
  auto rt = make_runtime();
  atl::ObjectRef<void> done = rt.task(api_test::record).remote(42);
  done.get(kWait);
  EXPECT_EQ(api_test::recorded(), 42);
  rt.get(done, kWait);

  atl::ObjectRef<void> failed = rt.task(api_test::fail_void).remote(std::string("void boom"));
  try {
    failed.get(kWait);
    ADD_FAILURE() << "expected TaskError";
  } catch (const atl::TaskError& e) {
    EXPECT_NE(e.remote_message().find("void boom"), std::string::npos) << e.remote_message();
  }
}

TEST_F(TasksTest, dependent_task_runs_only_after_its_input_exists) {
  auto rt = make_runtime();
  api_test::OpenGateOnExit release;
  auto producer = rt.task(api_test::gated_value).remote(5);
  auto consumer = rt.task(api_test::plus_one).remote(producer);
  // The producer cannot finish before the gate opens, so neither can the consumer.
  EXPECT_THROW(consumer.get(50ms), atl::GetTimeoutError);
  api_test::open_gate();
  EXPECT_EQ(consumer.get(kWait), 6);
  EXPECT_EQ(producer.get(kWait), 5);

  // A chain of 20 dependent tasks behind a slow producer.
  atl::ObjectRef<int> r = rt.task(api_test::slow_value).remote(0, 50);
  for (int i = 0; i < 20; ++i) r = rt.task(api_test::plus_one).remote(r);
  EXPECT_EQ(r.get(kWait), 20);
}

TEST_F(TasksTest, object_ref_parameter_receives_the_reference_unresolved) {
  auto rt = make_runtime();
  api_test::OpenGateOnExit release;
  auto producer = rt.task(api_test::gated_value).remote(5);
  // ref_id never reads the value, so it finishes while the producer is still blocked.
  auto id = rt.task(api_test::ref_id).remote(producer).get(kWait);
  EXPECT_EQ(std::get<0>(id), producer.id().owner);
  EXPECT_EQ(std::get<1>(id), producer.id().sequence);

  auto sum = rt.task(api_test::deref_plus).remote(producer, 10);
  api_test::open_gate();
  EXPECT_EQ(sum.get(kWait), 15);
}

TEST_F(TasksTest, nested_tasks_use_the_injected_runtime) {
  auto rt = make_runtime();
  EXPECT_EQ(rt.task(api_test::sum_of_squares).remote(10).get(kWait), 285);
}

TEST_F(TasksTest, recursive_fan_out_deeper_than_cpu_slots_does_not_deadlock) {
  auto rt = atl::init({.modules = {api_test_module}, .nodes = {{.num_cpus = 2}}});
  EXPECT_EQ(rt.task(api_test::fib).remote(12).get(std::chrono::seconds(30)), 144);
}

TEST_F(TasksTest, unregistered_function_is_invalid_argument) {
  auto rt = make_runtime();
  EXPECT_EQ(thrown_category([&] { (void)rt.task(api_test::not_registered); }),
            ErrorCategory::invalid_argument);
}

TEST_F(TasksTest, registering_a_function_twice_fails_init) {
  EXPECT_EQ(thrown_category([] {
              (void)atl::init({.modules = {api_test_module, duplicate_function_module},
                               .nodes = {{.num_cpus = 1}}});
            }),
            ErrorCategory::invalid_argument);
}

TEST_F(TasksTest, task_error_carries_remote_type_message_and_name) {
  auto rt = make_runtime();
  auto named = rt.task(api_test::throw_if_negative).options({.name = "my-task"}).remote(-3);
  try {
    named.get(kWait);
    ADD_FAILURE() << "expected TaskError";
  } catch (const atl::TaskError& e) {
    EXPECT_NE(e.remote_type().find("runtime_error"), std::string::npos) << e.remote_type();
    EXPECT_NE(e.remote_message().find("negative input: -3"), std::string::npos)
        << e.remote_message();
    EXPECT_EQ(e.task_name(), "my-task");
    EXPECT_EQ(e.category(), ErrorCategory::failed);
  }
  // Without a name option, the task is named after its registered function.
  auto unnamed = rt.task(api_test::throw_if_negative).remote(-1);
  try {
    unnamed.get(kWait);
    ADD_FAILURE() << "expected TaskError";
  } catch (const atl::TaskError& e) {
    EXPECT_EQ(e.task_name(), "throw_if_negative");
  }
}

TEST_F(TasksTest, error_in_an_input_propagates_to_the_dependent_task) {
  auto rt = make_runtime();
  auto bad = rt.task(api_test::throw_if_negative).remote(-7);
  auto dependent = rt.task(api_test::plus_one).remote(bad);
  try {
    dependent.get(kWait);
    ADD_FAILURE() << "expected TaskError";
  } catch (const atl::TaskError& e) {
    EXPECT_NE(e.remote_message().find("negative input: -7"), std::string::npos)
        << e.remote_message();
  }
}

TEST_F(TasksTest, get_with_timeout_then_without) {
  auto rt = make_runtime();
  api_test::OpenGateOnExit release;
  auto r = rt.task(api_test::gated_value).remote(9);
  try {
    r.get(20ms);
    ADD_FAILURE() << "expected GetTimeoutError";
  } catch (const atl::GetTimeoutError& e) {
    EXPECT_EQ(e.category(), ErrorCategory::timed_out);
  }
  EXPECT_THROW(rt.get(r, 20ms), atl::GetTimeoutError);
  api_test::open_gate();
  EXPECT_EQ(r.get(kWait), 9);
  EXPECT_EQ(r.get(), 9);  // ready now: no timeout needed
}

TEST_F(TasksTest, get_vector_and_wait_keep_order) {
  auto rt = make_runtime();
  api_test::OpenGateOnExit release;
  std::vector refs{rt.task(api_test::add).remote(1, 2), rt.task(api_test::gated_value).remote(7),
                   rt.task(api_test::add).remote(5, 6)};

  auto two = rt.wait(refs, 2, kWait);
  ASSERT_EQ(two.ready.size(), 2u);
  ASSERT_EQ(two.not_ready.size(), 1u);
  EXPECT_TRUE(two.ready[0] == refs[0]);
  EXPECT_TRUE(two.ready[1] == refs[2]);
  EXPECT_TRUE(two.not_ready[0] == refs[1]);

  // Asking for all three with a short timeout returns what is ready, without throwing.
  auto partial = rt.wait(refs, 3, 20ms);
  EXPECT_EQ(partial.ready.size(), 2u);
  EXPECT_EQ(partial.not_ready.size(), 1u);

  EXPECT_EQ(thrown_category([&] { (void)rt.wait(refs, 4, kWait); }),
            ErrorCategory::invalid_argument);
  EXPECT_THROW(rt.get(refs, 20ms), atl::GetTimeoutError);

  api_test::open_gate();
  auto all = rt.wait(refs, 3, kWait);
  EXPECT_EQ(all.ready.size(), 3u);
  EXPECT_TRUE(all.not_ready.empty());
  EXPECT_EQ(rt.get(refs, kWait), (std::vector<int>{3, 7, 11}));
}

// get of many refs sleeps until all are ready, but a failure ahead of a pending ref is raised at
// once, as when the refs were read one by one: the gated task is still waiting when get throws.
TEST_F(TasksTest, get_of_many_raises_a_failure_before_later_refs_are_ready) {
  auto rt = make_runtime(2);
  api_test::OpenGateOnExit release;
  std::vector<atl::ObjectRef<int>> refs{rt.task(api_test::throw_if_negative).remote(-5),
                                        rt.task(api_test::gated_value).remote(9)};
  EXPECT_THROW(rt.get(refs, kWait), atl::TaskError);
  EXPECT_EQ(rt.wait(refs, 2, 0ms).not_ready.size(), 1u) << "get waited for the gated task";
  api_test::open_gate();
  EXPECT_EQ(refs[1].get(kWait), 9);
}

// rt.task<R>("name"): no signature at the call site; values go as their own type, an ObjectRef is
// resolved first, and mismatches surface as SerializationError.
TEST_F(TasksTest, a_function_called_by_its_registered_name) {
  auto rt = make_runtime();
  EXPECT_EQ(rt.task<int>("add").remote(1, 2).get(kWait), 3);
  auto five = rt.task(api_test::add).remote(2, 3);
  EXPECT_EQ(rt.task<int>("add").options({.name = "by-name"}).remote(five, 10).get(kWait), 15);
  EXPECT_EQ(rt.task<std::string>("concat").remote(std::string("a"), "b").get(kWait), "ab");
  EXPECT_EQ(thrown_category([&] { (void)rt.task<int>("nope"); }), ErrorCategory::invalid_argument);
  EXPECT_THROW(rt.task<std::string>("add").remote(1, 2).get(kWait), atl::SerializationError);
  try {
    rt.task<int>("add").remote(std::string("x"), 2).get(kWait);
    ADD_FAILURE() << "a string was read as an int";
  } catch (const atl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot decode"), std::string::npos) << e.what();
  }
}

TEST_F(TasksTest, cancel_of_a_queued_task) {
  auto rt = make_runtime(1);
  api_test::OpenGateOnExit release;
  auto running = rt.task(api_test::gated_value).remote(1);
  ASSERT_TRUE(api_test::wait_until([] { return api_test::gate_started() == 1; }));
  auto queued = rt.task(api_test::add).remote(1, 2);           // the only CPU is busy
  auto waiting = rt.task(api_test::plus_one).remote(running);  // waits for its input

  EXPECT_TRUE(rt.cancel(queued));
  EXPECT_TRUE(rt.cancel(waiting));
  try {
    queued.get(kWait);
    ADD_FAILURE() << "expected TaskCancelledError";
  } catch (const atl::TaskCancelledError& e) {
    EXPECT_EQ(e.category(), ErrorCategory::cancelled);
  }
  EXPECT_FALSE(rt.cancel(queued));  // it already holds an error

  api_test::open_gate();
  EXPECT_EQ(running.get(kWait), 1);
  EXPECT_THROW(waiting.get(kWait), atl::TaskCancelledError);
  EXPECT_THROW(queued.get(kWait), atl::TaskCancelledError);
}

TEST_F(TasksTest, cancel_of_a_finished_task_returns_false) {
  auto rt = make_runtime();
  auto r = rt.task(api_test::add).remote(1, 2);
  EXPECT_EQ(r.get(kWait), 3);
  EXPECT_FALSE(rt.cancel(r));
  EXPECT_EQ(r.get(kWait), 3);
}

TEST_F(TasksTest, two_runtimes_in_one_process) {
  auto rt1 = make_runtime(2);
  auto rt2 = make_runtime(2);
  auto a = rt1.task(api_test::add).remote(1, 2);
  auto b = rt2.task(api_test::add).remote(10, 20);
  auto c = rt2.task(api_test::sum_of_squares).remote(4);
  EXPECT_EQ(a.get(kWait), 3);
  EXPECT_EQ(b.get(kWait), 30);
  EXPECT_EQ(c.get(kWait), 14);
  EXPECT_NE(a.id().owner, b.id().owner);  // ids name the runtime that minted them

  rt1.shutdown();
  EXPECT_EQ(rt2.task(api_test::add).remote(2, 2).get(kWait), 4);
  EXPECT_EQ(a.get(kWait), 3);  // values already there stay readable
}

// A pending object after shutdown either got its value or fails with RuntimeShutdownError.
void expect_value_or_shutdown(const atl::ObjectRef<int>& ref, int expected) {
  try {
    EXPECT_EQ(ref.get(kWait), expected);
  } catch (const atl::RuntimeShutdownError& e) {
    EXPECT_EQ(e.category(), ErrorCategory::disconnected);
  }
}

TEST_F(TasksTest, shutdown_with_pending_tasks_does_not_hang) {
  auto rt = make_runtime(1);
  api_test::OpenGateOnExit release;
  auto running = rt.task(api_test::gated_value).remote(1);
  ASSERT_TRUE(api_test::wait_until([] { return api_test::gate_started() == 1; }));
  auto queued = rt.task(api_test::add).remote(1, 2);
  auto waiting = rt.task(api_test::plus_one).remote(running);
  std::vector<atl::ObjectRef<int>> slow;
  for (int i = 0; i < 5; ++i) slow.push_back(rt.task(api_test::slow_value).remote(i, 50));

  // Release the running task soon, in case shutdown waits for running tasks to return.
  std::thread opener([] {
    std::this_thread::sleep_for(100ms);
    api_test::open_gate();
  });
  rt.shutdown();
  opener.join();

  expect_value_or_shutdown(running, 1);
  expect_value_or_shutdown(queued, 3);
  expect_value_or_shutdown(waiting, 2);
  for (int i = 0; i < 5; ++i) expect_value_or_shutdown(slow[i], i);

  rt.shutdown();  // idempotent
  EXPECT_THROW((void)rt.task(api_test::add).remote(1, 2), atl::RuntimeShutdownError);
}

}  // namespace
