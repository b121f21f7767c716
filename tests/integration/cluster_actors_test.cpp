// Actors on a cluster: placed by the head, hosted in a worker process of their own on a node
// agent, called from drivers in order; killed, released, found by name, and reported dead when
// their worker, constructor or node fails.
#include "tests/integration/cluster_fixture.hpp"

namespace {

using namespace cluster_test;
using ClusterActorsTest = ClusterFixture;

template <class T>
std::string error_of(atl::ObjectRef<T> ref) {
  try {
    ref.get(30s);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_F(ClusterActorsTest, calls_run_in_order_and_keep_state_in_the_actor_process) {
  start_node("eu-a", "eu-1");
  auto rt = driver();
  auto counter = rt.actor<job::Counter>(10).remote();
  std::vector<atl::ObjectRef<int>> refs;
  for (int i = 0; i < 200; ++i) refs.push_back(counter.call(&job::Counter::incr, 1));
  auto values = rt.get(refs, 30s);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(values[i], 11 + i);
  EXPECT_EQ(counter.call(&job::Counter::value).get(30s), 210);
  int pid = counter.call(&job::Counter::pid).get(30s);
  EXPECT_NE(pid, ::getpid());  // hosted in a worker process, not in the driver
  EXPECT_EQ(counter.call(&job::Counter::pid).get(30s), pid);  // always the same one
}

TEST_F(ClusterActorsTest, a_call_waiting_for_its_argument_holds_back_the_calls_after_it) {
  start_node("eu-a", "eu-1");
  auto rt = driver();
  auto counter = rt.actor<job::Counter>().remote();
  auto five_later = rt.task(job::sleep_then).remote(300, 5);
  auto first = counter.call(&job::Counter::incr, five_later);  // resolved by the driver
  auto second = counter.call(&job::Counter::incr, 1);
  EXPECT_EQ(second.get(30s), 6);
  EXPECT_EQ(first.get(30s), 5);
}

TEST_F(ClusterActorsTest, a_method_exception_fails_only_that_call) {
  start_node("eu-a", "eu-1");
  auto rt = driver();
  auto counter = rt.actor<job::Counter>(1).remote();
  try {
    counter.call(&job::Counter::fail, 3).get(30s);
    FAIL() << "expected a TaskError";
  } catch (const atl::TaskError& e) {
    EXPECT_NE(e.remote_type().find("domain_error"), std::string::npos) << e.what();
    EXPECT_EQ(e.remote_message(), "counter cannot take 3");
    EXPECT_EQ(e.node(), "eu-a");
  }
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 2);
}

TEST_F(ClusterActorsTest, a_named_actor_is_shared_by_drivers_until_killed) {
  start_node("eu-a", "eu-1");
  auto a = driver();
  auto b = driver();
  auto counter = a.actor<job::Counter>(100).options({.name = "shared"}).remote();
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 101);
  auto found = b.get_actor<job::Counter>("shared");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->call(&job::Counter::incr, 1).get(30s), 102);
  EXPECT_FALSE(b.get_actor<job::Counter>("nobody").has_value());
  EXPECT_THROW(b.get_actor<job::Faulty>("shared"), atl::Error);  // another class
  try {
    a.actor<job::Counter>().options({.name = "shared"}).remote();
    FAIL() << "expected an error for a taken name";
  } catch (const atl::Error& e) {
    EXPECT_EQ(e.category(), atl::ErrorCategory::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("already exists"), std::string::npos) << e.what();
  }
  b.kill(*found);
  // The kill went through b's connection; a's calls may reach the head just before it.
  std::string why;
  for (int i = 0; i < 100 && why.find("was killed") == std::string::npos; ++i)
    why = error_of(counter.call(&job::Counter::value));
  EXPECT_NE(why.find("was killed"), std::string::npos) << why;
  EXPECT_THROW(counter.call(&job::Counter::incr, 1).get(30s), atl::ActorDiedError);
  EXPECT_FALSE(a.get_actor<job::Counter>("shared").has_value());
  // The name is free again.
  auto again = a.actor<job::Counter>(7).options({.name = "shared"}).remote();
  EXPECT_EQ(again.call(&job::Counter::value).get(30s), 7);
}

TEST_F(ClusterActorsTest, a_crashing_actor_fails_its_calls_with_the_signal) {
  let_signals_kill_workers();
  start_node("eu-a", "eu-1");
  auto rt = driver();
  auto counter = rt.actor<job::Counter>().remote();
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 1);
  auto crash = counter.call(&job::Counter::crash);
  auto after = counter.call(&job::Counter::incr, 1);
  EXPECT_THROW(crash.get(30s), atl::ActorDiedError);
  std::string why = error_of(after);
  EXPECT_NE(why.find("SIGSEGV"), std::string::npos) << why;
  EXPECT_NE(why.find("eu-a"), std::string::npos) << why;
  // Other work on the node carries on.
  EXPECT_EQ(rt.task(job::add).remote(2, 2).get(30s), 4);
}

TEST_F(ClusterActorsTest, an_actor_with_restarts_starts_again_after_its_worker_or_node_dies) {
  let_signals_kill_workers();
  start_node("first", "eu-1");
  auto rt = driver();
  auto counter = rt.actor<job::Counter>(10).options({.max_restarts = 2}).remote();
  // A call sent before the head learns of a death fails with ActorDiedError (it reached the
  // instance that died); the calls after that reach the new instance.
  auto incr_once_restarted = [&]() -> std::optional<int> {
    for (int i = 0; i < 200; ++i) {
      try {
        return counter.call(&job::Counter::incr, 1).get(30s);
      } catch (const atl::ActorDiedError&) {
        std::this_thread::sleep_for(20ms);
      }
    }
    return std::nullopt;
  };
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 11);
  EXPECT_THROW(counter.call(&job::Counter::crash).get(30s), atl::ActorDiedError);
  // The constructor ran again, with its argument: the state starts over.
  EXPECT_EQ(incr_once_restarted(), 11);

  // Its node leaves: the last restart places it on the other node.
  start_node("second", "eu-1");
  stop_node("first");
  EXPECT_EQ(incr_once_restarted(), 11);

  // No restarts left: the next crash ends it for good.
  EXPECT_THROW(counter.call(&job::Counter::crash).get(30s), atl::ActorDiedError);
  std::string why = error_of(counter.call(&job::Counter::incr, 1));
  EXPECT_NE(why.find("SIGSEGV"), std::string::npos) << why;
  EXPECT_NE(why.find("second"), std::string::npos) << why;
}

TEST_F(ClusterActorsTest, a_constructor_that_throws_fails_every_call_with_its_message) {
  start_node("eu-a", "eu-1");
  auto rt = driver();
  auto faulty = rt.actor<job::Faulty>(9).remote();
  auto call = faulty.call(&job::Faulty::value);
  EXPECT_THROW(call.get(30s), atl::ActorDiedError);
  std::string why = error_of(faulty.call(&job::Faulty::value));
  EXPECT_NE(why.find("cannot build from 9"), std::string::npos) << why;
}

TEST_F(ClusterActorsTest, an_actor_whose_node_dies_is_reported_dead) {
  start_node("doomed", "eu-1");
  auto rt = driver();
  auto counter = rt.actor<job::Counter>().remote();
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 1);
  auto running = counter.call(&job::Counter::slow_incr, 2000, 1);
  stop_node("doomed");  // with the call queued or running: either way it fails
  std::string why = error_of(running);
  EXPECT_NE(why.find("doomed"), std::string::npos) << why;
  EXPECT_THROW(counter.call(&job::Counter::incr, 1).get(30s), atl::ActorDiedError);
}

TEST_F(ClusterActorsTest, releasing_the_last_handle_frees_the_actors_resources) {
  start_node("small", "eu-1", 1);
  auto rt = driver();
  {
    auto holder = rt.actor<job::Counter>().options({.num_cpus = 1}).remote();
    EXPECT_EQ(holder.call(&job::Counter::incr, 1).get(30s), 1);
  }  // the last handle goes: the actor ends after its calls and gives its CPU back
  EXPECT_EQ(rt.task(job::add).remote(20, 22).get(30s), 42);
}

TEST_F(ClusterActorsTest, calls_sent_before_the_actor_is_placed_run_in_order_once_it_is) {
  start_node("small", "eu-1", 1);
  auto rt = driver();
  auto busy = rt.task(job::sleep_then).remote(400, 1);  // holds the node's only CPU
  auto counter = rt.actor<job::Counter>().options({.num_cpus = 1}).remote();
  std::vector<atl::ObjectRef<int>> refs;
  for (int i = 0; i < 20; ++i) refs.push_back(counter.call(&job::Counter::incr, 1));
  auto values = rt.get(refs, 30s);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(values[i], i + 1);
  EXPECT_EQ(busy.get(30s), 1);
}

TEST_F(ClusterActorsTest, an_actor_killed_before_it_was_placed_never_holds_resources) {
  start_node("small", "eu-1", 1);
  auto rt = driver();
  auto busy = rt.task(job::sleep_then).remote(400, 1);
  auto waiting = rt.actor<job::Counter>().options({.num_cpus = 1}).remote();
  auto call = waiting.call(&job::Counter::incr, 1);
  rt.kill(waiting);
  std::string why = error_of(call);
  EXPECT_NE(why.find("was killed"), std::string::npos) << why;
  EXPECT_EQ(busy.get(30s), 1);
  // The CPU the actor would have taken is free for tasks.
  EXPECT_EQ(rt.task(job::add).remote(1, 1).get(30s), 2);
  EXPECT_EQ(rt.task(job::add).remote(2, 2).get(30s), 4);
}

TEST_F(ClusterActorsTest, an_actor_no_node_can_host_fails_its_calls) {
  start_node("eu-a", "eu-1");
  auto rt = driver();
  auto gpu = rt.actor<job::Counter>().options({.num_gpus = 1}).remote();
  std::string why = error_of(gpu.call(&job::Counter::value));
  EXPECT_NE(why.find("could not be placed"), std::string::npos) << why;
}

TEST_F(ClusterActorsTest, max_concurrency_runs_calls_at_the_same_time) {
  start_node("eu-a", "eu-1");
  auto rt = driver();
  auto meeting = rt.actor<job::Rendezvous>().options({.max_concurrency = 2}).remote();
  auto a = meeting.call(&job::Rendezvous::meet, 2);
  auto b = meeting.call(&job::Rendezvous::meet, 2);
  EXPECT_EQ(a.get(30s), 2);
  EXPECT_EQ(b.get(30s), 2);
}

TEST_F(ClusterActorsTest, a_drivers_actors_end_when_it_leaves) {
  start_node("eu-a", "eu-1");
  auto stays = driver();
  {
    auto leaves = driver();
    auto counter = leaves.actor<job::Counter>().options({.name = "job-owned"}).remote();
    EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 1);
    ASSERT_TRUE(stays.get_actor<job::Counter>("job-owned").has_value());
    leaves.shutdown();
  }
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !stays.get_actor<job::Counter>("job-owned").has_value();
    if (!gone) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(gone);
}

TEST_F(ClusterActorsTest, a_task_calls_an_actor_through_a_handle_it_was_given) {
  start_node("eu-a", "eu-1", 4);  // room for the task and the actor's calls
  auto rt = driver();
  auto counter = rt.actor<job::Counter>().remote();
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 1);
  EXPECT_EQ(rt.task(job::bump).remote(counter, 10).get(30s), 11);
  EXPECT_EQ(rt.task(job::bump).remote(counter, 100).get(30s), 111);
  // The worker's handle never ended the actor: it is still the driver's, with its state.
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 112);
}

TEST_F(ClusterActorsTest, a_constructor_takes_an_actor_handle_and_an_object_ref) {
  start_node("eu-a", "eu-1", 4);
  auto rt = driver();
  auto counter = rt.actor<job::Counter>().remote();
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 1);
  constexpr int kLarge = 3 << 20;
  auto small = rt.put(std::string("hello"));
  auto large = rt.task(job::blob).remote(kLarge, 1);  // held on the node, not yet made
  auto relay = rt.actor<job::Relay>(counter, small).remote();
  EXPECT_EQ(relay.call(&job::Relay::forward, 10).get(30s), 11);
  EXPECT_EQ(relay.call(&job::Relay::text_length).get(30s), 5);
  auto other = rt.actor<job::Relay>(counter, large).remote();
  EXPECT_EQ(other.call(&job::Relay::text_length).get(30s), kLarge);
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 12);  // still the driver's
}

// An actor keeps what its constructor was given by reference: the driver pins those objects and
// actors until the actor ends, even once the driver's own refs and handles are gone.
TEST_F(ClusterActorsTest, an_actor_keeps_its_constructor_references_alive) {
  start_node("eu-a", "eu-1", 4);
  auto rt = driver();
  std::optional<atl::ActorHandle<job::Relay>> relay;
  {
    auto counter = rt.actor<job::Counter>().remote();
    EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 1);
    auto text = rt.task(job::blob).remote(3 << 20, 2);  // held on the node that made it
    relay = rt.actor<job::Relay>(counter, text).remote();
    EXPECT_EQ(relay->call(&job::Relay::forward, 1).get(30s), 2);
  }  // the driver's counter handle and text ref are gone
  EXPECT_EQ(relay->call(&job::Relay::text_length).get(30s), 3 << 20);
  EXPECT_EQ(relay->call(&job::Relay::forward, 10).get(30s), 12);  // the counter lives on
  EXPECT_EQ(objects_held("eu-a"), 1u);                            // the text, pinned for the relay
  relay.reset();  // ends the relay, which unpins the counter and the text
  for (int i = 0; i < 500 && objects_held("eu-a") != 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(objects_held("eu-a"), 0u);
}

TEST_F(ClusterActorsTest, unknown_classes_and_methods_are_clear_errors) {
  start_node("eu-a", "eu-1");
  auto rt = driver();
  EXPECT_THROW(rt.actor<job::Counter>(1, 2).remote(), atl::Error);  // no such constructor
  auto counter = rt.actor<job::Counter>().options({.max_concurrency = 0});
  EXPECT_THROW(counter.remote(), atl::Error);
}

}  // namespace
