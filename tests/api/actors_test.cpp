// Actors: state, call order, constructors, errors, names, kill, handles, concurrency.
#include <gtest/gtest.h>

#include <chrono>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "test_module.hpp"

namespace {

using namespace std::chrono_literals;
using api_test::Appender;
using api_test::Counter;
using api_test::kWait;
using api_test::make_runtime;
using api_test::thrown_category;
using atl::ErrorCategory;

class ActorsTest : public ::testing::Test {
 protected:
  void SetUp() override { api_test::reset_state(); }
};

TEST_F(ActorsTest, counter_keeps_state_between_calls) {
  auto rt = make_runtime();
  auto c = rt.actor<Counter>().remote();
  ASSERT_TRUE(c.valid());
  EXPECT_EQ(c.call(&Counter::incr, 5).get(kWait), 5);
  EXPECT_EQ(c.call(&Counter::incr, 3).get(kWait), 8);
  EXPECT_EQ(c.call(&Counter::value).get(kWait), 8);
}

TEST_F(ActorsTest, calls_from_one_caller_run_in_submission_order) {
  auto rt = make_runtime();
  auto a = rt.actor<Appender>().remote();
  for (int i = 0; i < 1000; ++i) a.call(&Appender::append, i);
  std::vector<int> expected(1000);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(a.call(&Appender::snapshot).get(kWait), expected);
}

TEST_F(ActorsTest, constructor_arguments) {
  auto rt = make_runtime();
  auto c = rt.actor<Counter>(10).remote();
  EXPECT_EQ(c.call(&Counter::incr, 1).get(kWait), 11);
  auto d = rt.actor<Counter>().remote();  // the default constructor is registered too
  EXPECT_EQ(d.call(&Counter::value).get(kWait), 0);
}

TEST_F(ActorsTest, throwing_method_fails_only_that_call) {
  auto rt = make_runtime();
  auto c = rt.actor<Counter>().remote();
  EXPECT_EQ(c.call(&Counter::incr, 2).get(kWait), 2);
  try {
    c.call(&Counter::fail, std::string("bad call")).get(kWait);
    ADD_FAILURE() << "expected TaskError";
  } catch (const atl::TaskError& e) {
    EXPECT_NE(e.remote_type().find("runtime_error"), std::string::npos) << e.remote_type();
    EXPECT_NE(e.remote_message().find("bad call"), std::string::npos) << e.remote_message();
  }
  EXPECT_EQ(c.call(&Counter::incr, 1).get(kWait), 3);  // still alive, state intact
}

TEST_F(ActorsTest, throwing_constructor_makes_calls_fail_with_actor_died) {
  auto rt = make_runtime();
  auto x = rt.actor<api_test::Exploding>().remote();
  auto first = x.call(&api_test::Exploding::ping);
  try {
    first.get(kWait);
    ADD_FAILURE() << "expected ActorDiedError";
  } catch (const atl::ActorDiedError& e) {
    EXPECT_EQ(e.category(), ErrorCategory::disconnected);
  }
  EXPECT_THROW(x.call(&api_test::Exploding::ping).get(kWait), atl::ActorDiedError);
}

TEST_F(ActorsTest, named_actor_is_found_by_name) {
  auto rt = make_runtime();
  auto c = rt.actor<Counter>().options({.name = "shared"}).remote();
  EXPECT_EQ(c.call(&Counter::incr, 5).get(kWait), 5);

  std::optional<atl::ActorHandle<Counter>> found = rt.get_actor<Counter>("shared");
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->id() == c.id());
  EXPECT_EQ(found->call(&Counter::value).get(kWait), 5);
  EXPECT_EQ(found->call(&Counter::incr, 1).get(kWait), 6);
  EXPECT_EQ(c.call(&Counter::value).get(kWait), 6);
}

TEST_F(ActorsTest, named_actor_outlives_its_handles) {
  auto rt = make_runtime();
  {
    auto c = rt.actor<Counter>().options({.name = "keeper"}).remote();
    EXPECT_EQ(c.call(&Counter::incr, 7).get(kWait), 7);
  }
  auto found = rt.get_actor<Counter>("keeper");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->call(&Counter::value).get(kWait), 7);
}

TEST_F(ActorsTest, get_actor_of_unknown_name_is_nullopt) {
  auto rt = make_runtime();
  EXPECT_FALSE(rt.get_actor<Counter>("nobody").has_value());
}

TEST_F(ActorsTest, get_actor_with_wrong_type_is_invalid_argument) {
  auto rt = make_runtime();
  auto c = rt.actor<Counter>().options({.name = "typed"}).remote();
  EXPECT_EQ(c.call(&Counter::incr, 1).get(kWait), 1);
  EXPECT_EQ(thrown_category([&] { (void)rt.get_actor<Appender>("typed"); }),
            ErrorCategory::invalid_argument);
}

TEST_F(ActorsTest, kill_fails_later_calls_and_frees_the_name) {
  auto rt = make_runtime();
  auto c = rt.actor<Counter>().options({.name = "victim"}).remote();
  EXPECT_EQ(c.call(&Counter::incr, 4).get(kWait), 4);
  rt.kill(c);
  EXPECT_THROW(c.call(&Counter::incr, 1).get(kWait), atl::ActorDiedError);
  EXPECT_FALSE(rt.get_actor<Counter>("victim").has_value());

  auto again = rt.actor<Counter>().options({.name = "victim"}).remote();
  EXPECT_EQ(again.call(&Counter::value).get(kWait), 0);  // a new actor, fresh state
  auto found = rt.get_actor<Counter>("victim");
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->id() == again.id());
}

TEST_F(ActorsTest, kill_fails_running_and_queued_calls) {
  auto rt = make_runtime();
  api_test::OpenGateOnExit release;
  auto c = rt.actor<Counter>().remote();
  auto running = c.call(&Counter::gated_incr, 1);
  ASSERT_TRUE(api_test::wait_until([] { return api_test::gate_started() == 1; }));
  auto queued = c.call(&Counter::incr, 1);
  rt.kill(c);
  api_test::open_gate();  // the running call finishes, but its caller still sees the kill
  EXPECT_THROW(running.get(kWait), atl::ActorDiedError);
  EXPECT_THROW(queued.get(kWait), atl::ActorDiedError);
}

TEST_F(ActorsTest, handle_passed_to_a_task) {
  auto rt = make_runtime();
  auto c = rt.actor<Counter>().remote();
  EXPECT_EQ(rt.task(api_test::incr_via_handle).remote(c, 5).get(kWait), 5);
  EXPECT_EQ(rt.task(api_test::incr_via_handle).remote(c, 2).get(kWait), 7);
  EXPECT_EQ(c.call(&Counter::value).get(kWait), 7);
}

TEST_F(ActorsTest, handle_passed_to_another_actor) {
  auto rt = make_runtime();
  auto c = rt.actor<Counter>(100).remote();
  auto f = rt.actor<api_test::Forwarder>().remote();
  EXPECT_EQ(f.call(&api_test::Forwarder::forward, c, 3).get(kWait), 103);
  EXPECT_EQ(c.call(&Counter::value).get(kWait), 103);
  // A method taking RuntimeRef first can submit nested tasks.
  EXPECT_EQ(f.call(&api_test::Forwarder::spawn_add, 2, 3).get(kWait), 5);
}

TEST_F(ActorsTest, max_concurrency_runs_calls_at_once) {
  auto rt = make_runtime();
  auto r = rt.actor<api_test::Rendezvous>().options({.max_concurrency = 4}).remote();
  // Each call waits until all four arrived: with one call at a time they would time out.
  std::vector<atl::ObjectRef<bool>> refs;
  for (int i = 0; i < 4; ++i) refs.push_back(r.call(&api_test::Rendezvous::arrive, 4));
  EXPECT_EQ(rt.get(refs, kWait), std::vector<bool>(4, true));
}

TEST_F(ActorsTest, object_ref_arguments_are_resolved_in_call_order) {
  auto rt = make_runtime();
  api_test::OpenGateOnExit release;
  auto a = rt.actor<Appender>().remote();
  auto pending = rt.task(api_test::gated_value).remote(7);
  a.call(&Appender::append, pending);  // waits for its argument
  a.call(&Appender::append, 2);        // must not overtake the call before it
  auto early = a.call(&Appender::snapshot);
  EXPECT_THROW(early.get(50ms), atl::GetTimeoutError);
  api_test::open_gate();
  EXPECT_EQ(early.get(kWait), (std::vector<int>{7, 2}));
  a.call(&Appender::append, rt.put(3));
  EXPECT_EQ(a.call(&Appender::snapshot).get(kWait), (std::vector<int>{7, 2, 3}));
}

TEST_F(ActorsTest, unregistered_method_is_invalid_argument) {
  auto rt = make_runtime();
  auto c = rt.actor<Counter>().remote();
  EXPECT_EQ(thrown_category([&] { (void)c.call(&Counter::unregistered_method); }),
            ErrorCategory::invalid_argument);
  EXPECT_EQ(c.call(&Counter::incr, 1).get(kWait), 1);
}

TEST_F(ActorsTest, unregistered_class_is_invalid_argument) {
  auto rt = make_runtime();
  EXPECT_EQ(thrown_category([&] { (void)rt.actor<api_test::NotRegisteredActor>().remote(); }),
            ErrorCategory::invalid_argument);
}

TEST_F(ActorsTest, duplicate_name_while_alive_is_invalid_argument) {
  auto rt = make_runtime();
  auto c = rt.actor<Counter>().options({.name = "unique"}).remote();
  EXPECT_EQ(c.call(&Counter::incr, 1).get(kWait), 1);
  EXPECT_EQ(
      thrown_category([&] { (void)rt.actor<Counter>().options({.name = "unique"}).remote(); }),
      ErrorCategory::invalid_argument);
  EXPECT_EQ(c.call(&Counter::value).get(kWait), 1);  // the first one is untouched
}

TEST_F(ActorsTest, unnamed_actor_ends_when_its_last_handle_is_gone) {
  auto rt = make_runtime();
  const std::uint64_t baseline = rt.stats().actors_alive;
  {
    auto c = rt.actor<Counter>().remote();
    auto copy = c;
    EXPECT_EQ(copy.call(&Counter::incr, 1).get(kWait), 1);
    EXPECT_EQ(rt.stats().actors_alive, baseline + 1);
  }
  EXPECT_TRUE(api_test::wait_until([&] { return rt.stats().actors_alive == baseline; }))
      << "actors_alive=" << rt.stats().actors_alive << " baseline=" << baseline;
}

TEST_F(ActorsTest, an_actor_creator_creates_one_actor) {
  auto rt = make_runtime(2);
  auto creator = rt.actor<api_test::Counter>(5);
  auto first = creator.remote();
  EXPECT_EQ(first.call(&api_test::Counter::incr, 1).get(kWait), 6);
  EXPECT_EQ(thrown_category([&] { creator.remote(); }), ErrorCategory::invalid_argument);
}

}  // namespace
