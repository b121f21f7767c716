// Objects across nodes: a large task result stays on the node that made it and moves over the
// data plane, node to node or to the driver, never through the head; it is freed when its last
// reference goes or its driver leaves.
#include "tests/integration/cluster_fixture.hpp"

namespace {

using namespace cluster_test;
using ClusterObjectsTest = ClusterFixture;

constexpr int kLarge = 3 << 20;  // well above the 100 KiB inline limit: several data chunks

atl::TaskOptions on_island(const std::string& island) {
  return {.label_selector = {atl::LabelSelector::equals("island", island)}};
}

atl::ActorOptions actor_on_island(const std::string& island) {
  return {.label_selector = {atl::LabelSelector::equals("island", island)}};
}

TEST_F(ClusterObjectsTest, a_large_result_stays_on_its_node_and_reaches_the_driver) {
  start_node("eu-a", "eu-1");
  auto rt = driver();
  auto big = rt.task(job::blob).options(on_island("eu-1")).remote(kLarge, 7);
  std::vector<atl::ObjectRef<std::string>> refs{big};
  auto [ready, not_ready] = rt.wait(refs, 1, 30s);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(objects_held("eu-a"), 1u);  // kept on the node, not sent inline
  EXPECT_EQ(big.get(30s), job::blob(kLarge, 7));
  EXPECT_EQ(big.get(30s), job::blob(kLarge, 7));  // fetched once, read again
  EXPECT_EQ(rt.task(job::blob).remote(100, 3).get(30s), job::blob(100, 3));  // small: inline
}

TEST_F(ClusterObjectsTest, a_large_argument_moves_node_to_node) {
  start_node("eu-a", "eu-1");
  start_node("us-a", "us-2");
  auto rt = driver();
  auto big = rt.task(job::blob).options(on_island("eu-1")).remote(kLarge, 11);
  auto there = rt.task(job::digest).options(on_island("us-2")).remote(big);
  auto here = rt.task(job::digest).options(on_island("eu-1")).remote(big);  // held locally
  EXPECT_EQ(there.get(30s), job::digest(job::blob(kLarge, 11)));
  EXPECT_EQ(here.get(30s), job::digest(job::blob(kLarge, 11)));
  // An actor call's large argument: fetched by the actor's node, as a task's is.
  auto counter = rt.actor<job::Counter>().options(actor_on_island("us-2")).remote();
  EXPECT_EQ(counter.call(&job::Counter::measure, big).get(30s), kLarge);
  EXPECT_EQ(head_->objects_relayed(), 0u);  // every read went straight to the holder
}

TEST_F(ClusterObjectsTest, nodes_and_drivers_listening_on_every_interface_serve_directly) {
  // 0.0.0.0 and nothing advertised, as on a multi-host cluster: the head tells readers the host
  // each holder's control connection comes from (here 127.0.0.1).
  launch_node("eu-a", "eu-1", {.data_host = "0.0.0.0"});
  launch_node("us-a", "us-2", {.data_host = "0.0.0.0"});
  for (const auto& n : head_->nodes()) {
    EXPECT_EQ(n.info.data_address.rfind("tcp://127.0.0.1:", 0), 0u) << n.info.data_address;
    EXPECT_EQ(n.info.data_address.find("0.0.0.0"), std::string::npos) << n.info.data_address;
  }
  auto rt = atl::init({.address = "127.0.0.1:" + std::to_string(head_->port()),
                       .token = token_,
                       .modules = {test_job},
                       .job_module = {.library = ATOLL_TEST_JOB, .name = "test_job"},
                       .data_host = "0.0.0.0"});
  auto big = rt.task(job::blob).options(on_island("eu-1")).remote(kLarge, 17);
  auto there = rt.task(job::digest).options(on_island("us-2")).remote(big);
  EXPECT_EQ(there.get(30s), job::digest(job::blob(kLarge, 17)));
  EXPECT_EQ(big.get(30s), job::blob(kLarge, 17));
  auto put = rt.put(job::blob(kLarge, 18));  // held by the driver, fetched by the node
  EXPECT_EQ(rt.task(job::digest).options(on_island("us-2")).remote(put).get(30s),
            job::digest(job::blob(kLarge, 18)));
  EXPECT_EQ(head_->objects_relayed(), 0u);  // node to node, node to driver, driver to node
}

TEST_F(ClusterObjectsTest, a_bad_data_host_is_refused_by_init) {
  start_node("eu-a", "eu-1");
  try {
    atl::init({.address = "127.0.0.1:" + std::to_string(head_->port()),
               .token = token_,
               .modules = {test_job},
               .job_module = {.library = ATOLL_TEST_JOB, .name = "test_job"},
               .data_host = "0.0.0.0",
               .data_advertise_host = "10.1.2.3:7300"});
    FAIL() << "expected invalid_argument";
  } catch (const atl::Error& e) {
    EXPECT_EQ(e.category(), atl::ErrorCategory::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("'10.1.2.3:7300'"), std::string::npos) << e.what();
  }
}

TEST_F(ClusterObjectsTest, an_actor_s_node_fetches_call_arguments_in_call_order) {
  start_node("eu-a", "eu-1");
  start_node("us-a", "us-2");
  auto rt = driver();
  auto counter = rt.actor<job::Counter>().options(actor_on_island("us-2")).remote();
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 1);
  // A slow object first, then calls with no object: each call still runs after the one before
  // it, so the counter sees 1 + 10 (the slow object's call) before the +100.
  auto slow = rt.task(job::slow_blob).options(on_island("eu-1")).remote(600, kLarge, 3);
  auto measured = counter.call(&job::Counter::measure_then_incr, slow);
  auto after = counter.call(&job::Counter::incr, 100);
  EXPECT_EQ(measured.get(30s), 11);
  EXPECT_EQ(after.get(30s), 111);
  // An object that is lost fails its call, clearly; the actor and later calls carry on.
  auto lost = rt.task(job::blob).options(on_island("eu-1")).remote(kLarge, 4);
  std::vector<atl::ObjectRef<std::string>> refs{lost};
  ASSERT_EQ(rt.wait(refs, 1, 30s).ready.size(), 1u);
  stop_node("eu-a");
  for (int i = 0; i < 500 && alive_nodes() != 1; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_THROW(counter.call(&job::Counter::measure, lost).get(30s), atl::ObjectLostError);
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 112);
}

TEST_F(ClusterObjectsTest, an_actor_call_joins_a_fetch_its_node_has_under_way) {
  launch_node("eu-a", "eu-1", {.behind_proxy = true});
  start_node("us-a", "us-2");
  auto rt = driver();
  auto counter = rt.actor<job::Counter>().options(actor_on_island("us-2")).remote();
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 1);  // placed, its module loaded
  auto big = rt.task(job::blob).options(on_island("eu-1")).remote(kLarge, 23);
  std::vector<atl::ObjectRef<std::string>> refs{big};
  ASSERT_EQ(rt.wait(refs, 1, 30s).ready.size(), 1u);
  // The head's PushObject to the holder waits in the proxy, so us-a's fetch of `big` for the
  // task stays under way; the actor call's argument, on the same node, joins that fetch.
  proxy("eu-a").hold_from_head(true);
  auto task = rt.task(job::digest).options(on_island("us-2")).remote(big);
  std::this_thread::sleep_for(300ms);  // the task's fetch has started by now
  auto measured = counter.call(&job::Counter::measure, big);
  proxy("eu-a").hold_from_head(false);
  EXPECT_EQ(measured.get(30s), kLarge);
  EXPECT_EQ(task.get(30s), job::digest(job::blob(kLarge, 23)));
}

TEST_F(ClusterObjectsTest, a_driver_s_large_values_reach_nodes_from_the_driver_itself) {
  // Larger than a control frame (16 MiB) may be: these could not travel through the head at all.
  constexpr int kHuge = 20 << 20;
  start_node("eu-a", "eu-1");
  auto rt = driver();
  auto put = rt.put(job::blob(kHuge, 21));
  EXPECT_EQ(rt.task(job::digest).remote(put).get(30s), job::digest(job::blob(kHuge, 21)));
  EXPECT_EQ(rt.task(job::digest).remote(put).get(30s), job::digest(job::blob(kHuge, 21)));
  EXPECT_EQ(rt.task(job::digest).remote(job::blob(kHuge, 22)).get(30s),
            job::digest(job::blob(kHuge, 22)));  // by value
  // A large result made from it comes back whole.
  EXPECT_EQ(rt.task(job::blob).remote(kHuge, 23).get(30s), job::blob(kHuge, 23));
  // An actor call's large arguments go the same way, and its large results stay on its node.
  auto counter = rt.actor<job::Counter>().remote();
  EXPECT_EQ(counter.call(&job::Counter::measure, std::string(kHuge, 'x')).get(30s), kHuge);
  EXPECT_EQ(counter.call(&job::Counter::measure, put).get(30s), kHuge);
  auto made = counter.call(&job::Counter::make, kHuge);
  std::vector<atl::ObjectRef<std::string>> refs{made};
  ASSERT_EQ(rt.wait(refs, 1, 30s).ready.size(), 1u);
  EXPECT_EQ(objects_held("eu-a"), 1u);  // kept on the actor's node, not sent through the head
  EXPECT_EQ(made.get(30s), std::string(kHuge, 'm'));
  EXPECT_EQ(rt.task(job::digest).remote(made).get(30s), job::digest(std::string(kHuge, 'm')));
  EXPECT_EQ(counter.call(&job::Counter::make, 1000).get(30s), std::string(1000, 'm'));
  EXPECT_EQ(counter.call(&job::Counter::incr, 1).get(30s), 1);  // the same actor, still there
}

TEST_F(ClusterObjectsTest, buffers_cross_processes_and_reach_workers_through_shared_memory) {
  start_node("eu-a", "eu-1", 1);  // one CPU: one task worker, so its state carries over
  start_node("us-a", "us-2");
  auto rt = driver();
  const auto expected = [](int bytes, int seed) { return job::digest(job::blob(bytes, seed)); };
  // A Buffer result, large (held on its node, fetched by the driver) and small (inline).
  auto big = rt.task(job::buffer_blob).options(on_island("us-2")).remote(kLarge, 7);
  EXPECT_EQ(job::buffer_digest(big.get(30s)), expected(kLarge, 7));
  EXPECT_EQ(job::buffer_digest(rt.task(job::buffer_blob).remote(300, 8).get(30s)),
            expected(300, 8));
  // The driver's Buffers as arguments: put, by value, large and small.
  auto put = rt.put(job::buffer_blob(kLarge, 9));
  EXPECT_EQ(rt.task(job::buffer_digest).remote(put).get(30s), expected(kLarge, 9));
  EXPECT_EQ(rt.task(job::buffer_digest).remote(job::buffer_blob(500, 10)).get(30s),
            expected(500, 10));
  // Node to node, into a worker through the node's shared memory.
  EXPECT_EQ(rt.task(job::buffer_digest).options(on_island("eu-1")).remote(big).get(30s),
            expected(kLarge, 7));

  // A worker that keeps an argument keeps its bytes: the node reuses the block of a fetched
  // object only once the worker has let go of it, so fetching another object of the same size
  // onto that node must not change what the worker holds.
  auto first = rt.task(job::buffer_blob).options(on_island("us-2")).remote(kLarge, 11);
  auto second = rt.task(job::buffer_blob).options(on_island("us-2")).remote(kLarge, 12);
  EXPECT_EQ(rt.task(job::stash).options(on_island("eu-1")).remote(first).get(30s),
            expected(kLarge, 11));
  EXPECT_EQ(rt.task(job::buffer_digest).options(on_island("eu-1")).remote(second).get(30s),
            expected(kLarge, 12));
  EXPECT_EQ(rt.task(job::stashed_digest).options(on_island("eu-1")).remote().get(30s),
            expected(kLarge, 11));
}

TEST_F(ClusterObjectsTest, objects_are_relayed_by_the_head_when_no_direct_path_exists) {
  // Both nodes advertise a data address nobody can dial, as nodes behind NAT do: each read of the
  // object goes through the head's relay, on channels the nodes and the driver dialled out.
  start_node("eu-a", "eu-1", 2, 0, "127.0.0.2");
  start_node("us-a", "us-2", 2, 0, "127.0.0.2");
  auto rt = driver();
  auto big = rt.task(job::blob).options(on_island("eu-1")).remote(kLarge, 13);
  auto there = rt.task(job::digest).options(on_island("us-2")).remote(big);
  EXPECT_EQ(there.get(30s), job::digest(job::blob(kLarge, 13)));
  EXPECT_EQ(big.get(30s), job::blob(kLarge, 13));
  EXPECT_GE(head_->objects_relayed(), 2u);  // the node's read and the driver's
}

TEST_F(ClusterObjectsTest, objects_are_freed_with_their_last_reference_or_their_driver) {
  start_node("eu-a", "eu-1");
  {
    auto rt = driver();
    {
      auto big = rt.task(job::blob).remote(kLarge, 1);
      ASSERT_EQ(big.get(30s).size(), static_cast<std::size_t>(kLarge));
      EXPECT_EQ(objects_held("eu-a"), 1u);
    }
    for (int i = 0; i < 500 && objects_held("eu-a") != 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(objects_held("eu-a"), 0u);  // the driver dropped it: freed on the node

    auto kept = rt.task(job::blob).remote(kLarge, 2);
    std::vector<atl::ObjectRef<std::string>> refs{kept};
    ASSERT_EQ(rt.wait(refs, 1, 30s).ready.size(), 1u);
    EXPECT_EQ(objects_held("eu-a"), 1u);
    rt.shutdown();  // the driver leaves with the reference still held
  }
  for (int i = 0; i < 500 && objects_held("eu-a") != 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(objects_held("eu-a"), 0u);
}

TEST_F(ClusterObjectsTest, a_result_finished_after_its_driver_left_is_freed) {
  start_node("eu-a", "eu-1");
  {
    auto rt = driver();
    auto late = rt.task(job::slow_blob).remote(800, kLarge, 4);
    std::this_thread::sleep_for(200ms);  // running on the node by now (if not, it is dropped)
    rt.shutdown();
  }
  // The task finishes after its driver left: nobody can read or free its result but the head.
  std::this_thread::sleep_for(800ms);
  for (int i = 0; i < 500 && objects_held("eu-a") != 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(objects_held("eu-a"), 0u);
}

TEST_F(ClusterObjectsTest, a_node_that_loses_the_head_frees_what_it_held) {
  launch_node("eu-a", "eu-1", {.behind_proxy = true});
  auto rt = driver();
  auto big = rt.task(job::blob).remote(kLarge, 19);
  std::vector<atl::ObjectRef<std::string>> refs{big};
  ASSERT_EQ(rt.wait(refs, 1, 30s).ready.size(), 1u);
  EXPECT_EQ(objects_held("eu-a"), 1u);
  // The node's link to the head breaks (the driver's does not, and it still holds the ref): the
  // head forgets the node's objects, so nobody would ever free them there.
  proxy("eu-a").cut();
  for (int i = 0; i < 500 && objects_held("eu-a") != 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(objects_held("eu-a"), 0u);
  EXPECT_THROW(big.get(30s), atl::ObjectLostError);
}

TEST_F(ClusterObjectsTest, a_full_object_store_is_a_clear_error) {
  start_node("eu-a", "eu-1", 2, 1 << 20);  // holds at most 1 MiB
  auto rt = driver();
  try {
    rt.task(job::blob).remote(kLarge, 3).get(30s);
    FAIL() << "expected ObjectStoreFullError";
  } catch (const atl::ObjectStoreFullError& e) {
    EXPECT_NE(std::string(e.what()).find("full"), std::string::npos) << e.what();
  }
  EXPECT_EQ(rt.task(job::add).remote(1, 1).get(30s), 2);  // the node carries on
}

TEST_F(ClusterObjectsTest, an_object_whose_node_left_is_lost) {
  start_node("eu-a", "eu-1");
  start_node("us-a", "us-2");
  auto rt = driver();
  auto big = rt.task(job::blob).options(on_island("eu-1")).remote(kLarge, 5);
  std::vector<atl::ObjectRef<std::string>> refs{big};
  ASSERT_EQ(rt.wait(refs, 1, 30s).ready.size(), 1u);
  stop_node("eu-a");
  for (int i = 0; i < 500 && alive_nodes() != 1; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_THROW(big.get(30s), atl::ObjectLostError);
  auto dependent = rt.task(job::digest).options(on_island("us-2")).remote(big);
  EXPECT_THROW(dependent.get(30s), atl::ObjectLostError);
}

}  // namespace
