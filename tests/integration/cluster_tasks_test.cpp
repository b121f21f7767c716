// Tasks on a cluster: a head, node agents and their worker processes on loopback, and drivers
// connected with atl::init({.address = ...}) running the test job's shipped module.
#include <capnp/message.h>

#include <future>

#include "tests/integration/cluster_fixture.hpp"
#include "transport/connection.hpp"

namespace {

using namespace cluster_test;
using ClusterTasksTest = ClusterFixture;

TEST_F(ClusterTasksTest, tasks_run_on_nodes_and_chain_through_object_refs) {
  start_node("eu-a", "eu-1");
  start_node("us-a", "us-2");
  auto rt = driver();
  std::vector<atl::ObjectRef<int>> refs;
  for (int i = 0; i < 20; ++i) refs.push_back(rt.task(job::add).remote(i, i));
  auto values = rt.get(refs, 30s);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(values[i], 2 * i);
  auto three = rt.task(job::add).remote(1, 2);
  auto thirteen = rt.task(job::add).remote(three, 10);  // resolved by the driver, then sent
  EXPECT_EQ(thirteen.get(30s), 13);
  EXPECT_EQ(rt.task(job::greet).remote(std::string("cluster")).get(30s), "hello, cluster");
  EXPECT_EQ(rt.put(5).get(), 5);  // the driver's own objects
}

TEST_F(ClusterTasksTest, a_remote_exception_names_its_type_message_and_node) {
  start_node("eu-a", "eu-1");
  auto rt = driver();
  try {
    rt.task(job::fails).options({.name = "validate"}).remote(7).get(30s);
    FAIL() << "expected a TaskError";
  } catch (const atl::TaskError& e) {
    EXPECT_NE(e.remote_type().find("invalid_argument"), std::string::npos) << e.what();
    EXPECT_EQ(e.remote_message(), "bad input 7");
    EXPECT_EQ(e.task_name(), "validate");
    EXPECT_EQ(e.node(), "eu-a");
  }
}

TEST_F(ClusterTasksTest, a_crashing_task_is_retried_then_reported_with_the_signal) {
  let_signals_kill_workers();
  start_node("eu-a", "eu-1");
  auto rt = driver();
  try {
    rt.task(job::segfault).options({.max_retries = 1}).remote().get(30s);
    FAIL() << "expected a TaskError";
  } catch (const atl::TaskError& e) {
    EXPECT_NE(std::string(e.what()).find("SIGSEGV"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("eu-a"), std::string::npos) << e.what();
  }
  EXPECT_EQ(rt.task(job::add).remote(2, 2).get(30s), 4);  // the node carries on
}

TEST_F(ClusterTasksTest, tasks_queued_behind_a_crash_on_its_worker_still_run_once) {
  // One CPU: one lease, whose short tasks are written to the worker ahead of time. The crash takes
  // the worker down with later tasks already sent to it; those had not started and must run on the
  // next worker without being counted as failures (no retries allowed).
  let_signals_kill_workers();
  start_node("eu-a", "eu-1", 1);
  auto rt = driver();
  for (int i = 0; i < 20; ++i) ASSERT_EQ(rt.task(job::add).remote(i, 0).get(30s), i);  // short
  std::vector<atl::ObjectRef<int>> before, after;
  for (int i = 0; i < 30; ++i)
    before.push_back(rt.task(job::add).options({.max_retries = 0}).remote(i, 1));
  auto crash = rt.task(job::segfault).options({.max_retries = 0}).remote();
  for (int i = 0; i < 30; ++i)
    after.push_back(rt.task(job::add).options({.max_retries = 0}).remote(i, 2));
  auto first = rt.get(before, 30s);
  auto second = rt.get(after, 30s);
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(first[i], i + 1);
    EXPECT_EQ(second[i], i + 2);
  }
  EXPECT_THROW(crash.get(30s), atl::TaskError);
}

TEST_F(ClusterTasksTest, a_task_on_a_node_that_dies_is_retried_elsewhere) {
  start_node("first", "eu-1");
  auto rt = driver();
  auto slow = rt.task(job::sleep_then).options({.max_retries = 3}).remote(1500, 42);
  std::this_thread::sleep_for(300ms);  // it is running on "first", the only node
  start_node("second", "eu-1");
  stop_node("first");
  EXPECT_EQ(slow.get(30s), 42);
}

TEST_F(ClusterTasksTest, status_counts_the_resources_running_tasks_hold) {
  start_node("eu-a", "eu-1", 2);
  auto rt = driver();
  auto cpu_available = [&] {
    for (const auto& n : atl::runtime::fetch_status("127.0.0.1", head_->port(), token_))
      for (const auto& [name, amount] : n.available)
        if (name == "CPU") return amount;
    return -1.0;
  };
  EXPECT_EQ(cpu_available(), 2.0);
  auto slow = rt.task(job::sleep_then).remote(1500, 7);
  double seen = cpu_available();
  for (int i = 0; i < 200 && seen != 1.0; ++i) {
    std::this_thread::sleep_for(10ms);
    seen = cpu_available();
  }
  EXPECT_EQ(seen, 1.0);  // one CPU held while it runs
  EXPECT_EQ(slow.get(30s), 7);
  for (int i = 0; i < 200 && seen != 2.0; ++i) {
    seen = cpu_available();
    if (seen != 2.0) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(seen, 2.0);  // given back
}

TEST_F(ClusterTasksTest, a_task_no_node_can_run_is_infeasible) {
  start_node("eu-a", "eu-1");
  auto rt = driver();
  EXPECT_THROW(rt.task(job::add).options({.num_gpus = 1}).remote(1, 1).get(30s),
               atl::InfeasibleError);
}

TEST_F(ClusterTasksTest, two_drivers_share_the_cluster) {
  start_node("eu-a", "eu-1");
  auto a = driver();
  auto b = driver();
  auto ra = a.task(job::add).remote(1, 1);
  auto rb = b.task(job::add).remote(2, 2);
  EXPECT_EQ(ra.get(30s), 2);
  EXPECT_EQ(rb.get(30s), 4);
  b.shutdown();  // one driver leaving does not disturb the other
  EXPECT_EQ(a.task(job::add).remote(3, 3).get(30s), 6);
}

TEST_F(ClusterTasksTest, losing_the_head_fails_pending_tasks_and_their_dependents) {
  start_node("eu-a", "eu-1");
  auto rt = driver();
  auto slow = rt.task(job::sleep_then).remote(800, 1);
  auto dependent = rt.task(job::add).remote(slow, 1);  // waits for `slow` in the driver
  head_->stop();
  EXPECT_THROW(dependent.get(30s), atl::RuntimeShutdownError);
  EXPECT_THROW(slow.get(30s), atl::RuntimeShutdownError);
  EXPECT_THROW(rt.task(job::add).remote(1, 1), atl::RuntimeShutdownError);
}

TEST_F(ClusterTasksTest, tasks_submit_nested_tasks_from_their_workers) {
  // A parent keeps its CPU while it waits for its child: room for both on the node.
  start_node("eu-a", "eu-1", 4);
  start_node("us-a", "us-2", 2);
  auto rt = driver();
  EXPECT_EQ(rt.task(job::nested).remote(1).get(30s), 2);
  auto a = rt.task(job::nested).remote(10);
  auto b = rt.task(job::nested).remote(20);
  EXPECT_EQ(a.get(30s), 11);
  EXPECT_EQ(b.get(30s), 21);
  EXPECT_EQ(rt.task(job::nested).remote(5).get(30s), 6);  // the worker's connection is reused
}

TEST_F(ClusterTasksTest, an_object_ref_parameter_is_borrowed_and_read_by_the_task) {
  start_node("eu-a", "eu-1", 4);
  auto rt = driver();
  // The driver's own object, small: the task's worker reads it from the driver.
  auto small = rt.put(std::string("abc"));
  EXPECT_EQ(rt.task(job::length_of).remote(small).get(30s), 3);
  // A large result held on a node, and one not made yet: the task waits for it, then reads it
  // from where it is.
  constexpr int kLarge = 3 << 20;
  auto held = rt.task(job::blob).remote(kLarge, 1);
  auto later = rt.task(job::slow_blob).remote(300, kLarge, 2);
  EXPECT_EQ(rt.task(job::length_of).remote(held).get(30s), kLarge);
  EXPECT_EQ(rt.task(job::length_of).remote(later).get(30s), kLarge);
  // Borrowing frees nothing: the owner still reads its objects, still held where they were.
  EXPECT_EQ(objects_held("eu-a"), 2u);
  EXPECT_EQ(held.get(30s), job::blob(kLarge, 1));
  EXPECT_EQ(small.get(30s), "abc");
}

TEST_F(ClusterTasksTest, a_wrong_token_or_missing_module_fails_init) {
  try {
    atl::init({.address = "127.0.0.1:" + std::to_string(head_->port()),
               .token = atl::transport::generate_token(),
               .modules = {test_job},
               .job_module = {.library = ATOLL_TEST_JOB, .name = "test_job"}});
    FAIL() << "expected an error";
  } catch (const atl::Error& e) {
    EXPECT_EQ(e.category(), atl::ErrorCategory::disconnected);
    EXPECT_NE(std::string(e.what()).find("authentication failed"), std::string::npos);
  }
  try {
    // Registration functions without the library that holds them: nodes could not run them.
    atl::init({.address = "127.0.0.1:" + std::to_string(head_->port()),
               .token = token_,
               .modules = {test_job}});
    FAIL() << "expected an error";
  } catch (const atl::Error& e) {
    EXPECT_EQ(e.category(), atl::ErrorCategory::invalid_argument);
  }
}

TEST_F(ClusterTasksTest, a_resent_submission_or_call_is_handled_once) {
  // A raw driver connection sends the same task and the same actor call twice: the head acts on
  // (and answers) each once. Both are invalid (no module, no actor) so the head answers at once,
  // in order, and the answer to a later task proves every copy before it was handled.
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::mutex mu;
  std::map<std::uint64_t, int> answers;
  std::promise<void> barrier;
  atl::transport::Handlers handlers;
  handlers.on_message = [&](const atl::transport::ConnectionPtr&,
                            const atl::transport::Decoded<atl::wire::Envelope>& m) {
    auto body = m.root().getBody();
    if (!body.isTaskFinished()) return;
    std::lock_guard lock(mu);
    if (++answers[body.getTaskFinished().getTaskId()] == 1 &&
        body.getTaskFinished().getTaskId() == 99)
      barrier.set_value();
  };
  std::thread io_thread([&] { io.run(); });
  std::promise<atl::transport::ConnectionPtr> dialled;
  atl::transport::dial(
      io, "127.0.0.1", head_->port(), {.token = token_, .name = "raw-driver"}, handlers,
      [&](atl::transport::ConnectionPtr c, std::string) { dialled.set_value(std::move(c)); });
  auto conn = dialled.get_future().get();
  ASSERT_NE(conn, nullptr);
  auto submit = [&](std::uint64_t id) {
    capnp::MallocMessageBuilder msg;
    auto spec = msg.initRoot<atl::wire::Envelope>().getBody().initSubmitTask();
    spec.setTaskId(id);
    spec.setModuleHash(std::string(64, 'a'));
    spec.setModuleName("nothing");
    spec.setFunction("add");
    conn->send(msg);
  };
  auto call = [&](std::uint64_t id) {
    capnp::MallocMessageBuilder msg;
    auto c = msg.initRoot<atl::wire::Envelope>().getBody().initActorCall();
    c.setTaskId(id);
    c.getActor().setOwner(5);
    c.getActor().setSequence(6);
    c.setMethod("incr");
    conn->send(msg);
  };
  submit(7);
  submit(7);
  call(8);
  call(8);
  submit(99);
  auto done = barrier.get_future();
  ASSERT_EQ(done.wait_for(30s), std::future_status::ready);
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(answers[7], 1);
    EXPECT_EQ(answers[8], 1);
  }
  EXPECT_EQ(head_->duplicates_ignored(), 2u);
  conn->close("done");
  work.reset();
  io_thread.join();
}

}  // namespace
