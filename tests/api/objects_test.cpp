// Objects: put/get of values, zero-copy Buffers, reference counting, typed reads, null refs.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "test_module.hpp"

namespace {

using api_test::kWait;
using api_test::make_runtime;
using api_test::thrown_category;
using atl::ErrorCategory;

class ObjectsTest : public ::testing::Test {
 protected:
  void SetUp() override { api_test::reset_state(); }
};

struct Inner {
  int id = 0;
  std::string name;
  std::vector<double> weights;
  ATOLL_FIELDS(id, name, weights);
  friend bool operator==(const Inner&, const Inner&) = default;
};

struct Outer {
  std::string title;
  std::vector<Inner> items;
  std::map<std::string, Inner> by_name;
  std::optional<Inner> extra;
  std::optional<Inner> missing;
  ATOLL_FIELDS(title, items, by_name, extra, missing);
  friend bool operator==(const Outer&, const Outer&) = default;
};

std::uint64_t address_of(const atl::Buffer& b) {
  return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(b.data()));
}

TEST_F(ObjectsTest, put_get_round_trips_plain_values) {
  auto rt = make_runtime(2);
  EXPECT_EQ(rt.put(42).get(kWait), 42);
  EXPECT_EQ(rt.put(-7).get(kWait), -7);
  EXPECT_EQ(rt.put(std::numeric_limits<std::int64_t>::max()).get(kWait),
            std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(rt.put(std::numeric_limits<std::uint64_t>::max()).get(kWait),
            std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(rt.put(3.25).get(kWait), 3.25);
  EXPECT_TRUE(rt.put(true).get(kWait));
  EXPECT_EQ(rt.put(std::string("hello")).get(kWait), "hello");
  EXPECT_EQ(rt.put(std::string()).get(kWait), "");
  const std::string big(1 << 20, 'x');
  EXPECT_EQ(rt.put(big).get(kWait), big);
}

TEST_F(ObjectsTest, put_get_round_trips_containers) {
  auto rt = make_runtime(2);
  const std::vector<int> ints{1, 2, 3};
  EXPECT_EQ(rt.put(ints).get(kWait), ints);
  const std::vector<std::string> strings{"a", "", "ccc"};
  EXPECT_EQ(rt.put(strings).get(kWait), strings);
  const std::vector<std::vector<int>> nested{{1}, {}, {2, 3}};
  EXPECT_EQ(rt.put(nested).get(kWait), nested);
  const std::map<std::string, int> map{{"one", 1}, {"two", 2}};
  EXPECT_EQ(rt.put(map).get(kWait), map);
  const std::unordered_map<int, std::string> umap{{1, "one"}, {2, "two"}};
  EXPECT_EQ(rt.put(umap).get(kWait), umap);

  EXPECT_EQ(rt.put(std::optional<int>(5)).get(kWait), std::optional<int>(5));
  EXPECT_FALSE(rt.put(std::optional<int>()).get(kWait).has_value());

  const std::tuple<int, std::string, double> tuple{1, "two", 3.5};
  EXPECT_EQ(rt.put(tuple).get(kWait), tuple);
  const std::pair<std::string, int> pair{"k", 9};
  EXPECT_EQ(rt.put(pair).get(kWait), pair);
  const std::array<int, 3> array{4, 5, 6};
  EXPECT_EQ(rt.put(array).get(kWait), array);
}

TEST_F(ObjectsTest, put_get_round_trips_nested_structs) {
  auto rt = make_runtime(2);
  Outer outer;
  outer.title = "outer";
  outer.items = {{1, "a", {0.5, 1.5}}, {2, "b", {}}};
  outer.by_name["c"] = Inner{3, "c", {2.25}};
  outer.extra = Inner{4, "d", {}};
  auto ref = rt.put(outer);
  static_assert(std::is_same_v<decltype(ref), atl::ObjectRef<Outer>>);
  EXPECT_TRUE(ref.get(kWait) == outer);

  // A struct also travels to a task and back, by value and by reference.
  const api_test::Point p{1, 2, "p"};
  EXPECT_EQ(rt.task(api_test::translate).remote(p, 1.0).get(kWait), (api_test::Point{2, 2, "p+"}));
  auto point_ref = rt.put(p);
  EXPECT_EQ(rt.task(api_test::translate).remote(point_ref, 2.0).get(kWait),
            (api_test::Point{3, 2, "p+"}));
}

TEST_F(ObjectsTest, put_buffer_get_shares_memory) {
  auto rt = make_runtime(2);
  std::vector<std::byte> bytes(4 << 20, std::byte{7});
  const atl::Buffer b = atl::Buffer::copy_of(bytes);
  auto ref = rt.put(b);
  static_assert(std::is_same_v<decltype(ref), atl::ObjectRef<atl::Buffer>>);
  // Large buffers are not copied on get.
  const atl::Buffer got = ref.get(kWait);
  EXPECT_TRUE(got.shares_memory_with(b));
  EXPECT_EQ(got.data(), b.data());
  EXPECT_EQ(got.size(), bytes.size());
  const atl::Buffer again = rt.get(ref, kWait);
  EXPECT_TRUE(again.shares_memory_with(got));
}

TEST_F(ObjectsTest, create_buffer_and_put_without_copy) {
  auto rt = make_runtime(2);
  constexpr std::size_t kSize = 1 << 20;
  atl::MutableBuffer mb = rt.create_buffer(kSize);
  ASSERT_EQ(mb.size(), kSize);
  ASSERT_NE(mb.data(), nullptr);
  for (std::size_t i = 0; i < kSize; ++i) mb.data()[i] = static_cast<std::byte>(i % 251);
  const std::byte* address = mb.data();

  auto ref = rt.put(std::move(mb));
  static_assert(std::is_same_v<decltype(ref), atl::ObjectRef<atl::Buffer>>);
  const atl::Buffer got = ref.get(kWait);
  EXPECT_EQ(got.data(), address);
  ASSERT_EQ(got.size(), kSize);
  bool same = true;
  for (std::size_t i = 0; i < kSize; ++i)
    same = same && got.data()[i] == static_cast<std::byte>(i % 251);
  EXPECT_TRUE(same);

  // The same through an explicit freeze.
  atl::MutableBuffer mb2 = rt.create_buffer(1024);
  const std::byte* address2 = mb2.data();
  auto ref2 = rt.put(std::move(mb2).freeze());
  EXPECT_EQ(ref2.get(kWait).data(), address2);
}

TEST_F(ObjectsTest, buffer_task_argument_arrives_without_copy) {
  auto rt = make_runtime(2);
  std::vector<std::byte> bytes(2 << 20, std::byte{1});
  const atl::Buffer b = atl::Buffer::copy_of(bytes);
  // Passed by value...
  EXPECT_EQ(rt.task(api_test::buffer_address).remote(b).get(kWait), address_of(b));
  // ...and through the object store.
  auto ref = rt.put(b);
  EXPECT_EQ(rt.task(api_test::buffer_address).remote(ref).get(kWait), address_of(b));
  EXPECT_EQ(rt.task(api_test::buffer_sum).remote(ref).get(kWait), bytes.size());
}

TEST_F(ObjectsTest, buffer_task_result_is_shared_by_every_get) {
  auto rt = make_runtime(2);
  constexpr std::uint64_t kSize = 1 << 20;
  auto ref = rt.task(api_test::make_buffer).remote(kSize, 3);
  const atl::Buffer first = ref.get(kWait);
  const atl::Buffer second = ref.get(kWait);
  ASSERT_EQ(first.size(), kSize);
  EXPECT_TRUE(first.shares_memory_with(second));
  EXPECT_EQ(rt.task(api_test::buffer_address).remote(ref).get(kWait), address_of(first));
  EXPECT_EQ(rt.task(api_test::buffer_sum).remote(ref).get(kWait), 3 * kSize);
}

TEST_F(ObjectsTest, put_objects_are_freed_when_their_refs_are_gone) {
  auto rt = make_runtime(2);
  const std::uint64_t baseline = rt.stats().objects;
  {
    auto a = rt.put(1);
    auto copy = a;
    auto b = rt.put(std::string("x"));
    auto c = rt.put(atl::Buffer::copy_of("abc", 3));
    EXPECT_EQ(rt.stats().objects, baseline + 3);  // copies share one object
  }
  EXPECT_TRUE(api_test::wait_until([&] { return rt.stats().objects == baseline; }))
      << "objects=" << rt.stats().objects << " baseline=" << baseline;
}

TEST_F(ObjectsTest, task_results_are_freed_when_their_refs_are_gone) {
  auto rt = make_runtime(2);
  const std::uint64_t baseline = rt.stats().objects;
  {
    auto sum = rt.task(api_test::add).remote(1, 2);
    auto chained = rt.task(api_test::plus_one).remote(sum);
    auto nested = rt.task(api_test::sum_of_squares).remote(5);
    auto recursive = rt.task(api_test::fib).remote(6);
    auto passed = rt.task(api_test::ref_id).remote(sum);
    EXPECT_EQ(chained.get(kWait), 4);
    EXPECT_EQ(nested.get(kWait), 30);
    EXPECT_EQ(recursive.get(kWait), 8);
    (void)passed.get(kWait);
    EXPECT_GE(rt.stats().objects, baseline + 5);
  }
  EXPECT_TRUE(api_test::wait_until([&] { return rt.stats().objects == baseline; }))
      << "objects=" << rt.stats().objects << " baseline=" << baseline;
}

TEST_F(ObjectsTest, pending_task_keeps_its_arguments_alive) {
  auto rt = make_runtime(1);
  api_test::OpenGateOnExit release;
  const std::uint64_t baseline = rt.stats().objects;

  auto producer = rt.task(api_test::gated_value).remote(10);  // holds the only CPU
  ASSERT_TRUE(api_test::wait_until([] { return api_test::gate_started() == 1; }));
  auto arg = rt.put(41);
  auto from_put = rt.task(api_test::plus_one).remote(arg);        // queued: no free CPU
  auto from_task = rt.task(api_test::plus_one).remote(producer);  // waits for producer
  const std::uint64_t before = rt.stats().objects;
  EXPECT_EQ(before, baseline + 4);

  // Only the pending tasks still need these two objects now.
  arg = atl::ObjectRef<int>();
  producer = atl::ObjectRef<int>();
  EXPECT_EQ(rt.stats().objects, before);

  api_test::open_gate();
  EXPECT_EQ(from_put.get(kWait), 42);
  EXPECT_EQ(from_task.get(kWait), 11);

  from_put = atl::ObjectRef<int>();
  from_task = atl::ObjectRef<int>();
  EXPECT_TRUE(api_test::wait_until([&] { return rt.stats().objects == baseline; }))
      << "objects=" << rt.stats().objects << " baseline=" << baseline;
}

TEST_F(ObjectsTest, get_as_the_wrong_type_is_serialization_error) {
  auto rt = make_runtime(2);
  auto text = rt.put(std::string("hello"));
  atl::ObjectRef<int> text_as_int(text.token());
  try {
    text_as_int.get(kWait);
    ADD_FAILURE() << "expected SerializationError";
  } catch (const atl::SerializationError& e) {
    EXPECT_EQ(e.category(), ErrorCategory::invalid_argument);
  }
  EXPECT_EQ(text.get(kWait), "hello");  // the object itself is fine

  // A Buffer is a msgpack bin: what reads a bin reads it (as in another process), nothing else.
  auto buffer = rt.put(atl::Buffer::copy_of("abc", 3));
  EXPECT_EQ(atl::ObjectRef<std::string>(buffer.token()).get(kWait), "abc");
  EXPECT_THROW(atl::ObjectRef<int>(buffer.token()).get(kWait), atl::SerializationError);
  atl::ObjectRef<atl::Buffer> int_as_buffer(rt.put(5).token());
  EXPECT_THROW(int_as_buffer.get(kWait), atl::SerializationError);
  atl::ObjectRef<api_test::Point> vector_as_point(rt.put(std::vector<int>{1, 2}).token());
  EXPECT_THROW(vector_as_point.get(kWait), atl::SerializationError);
  atl::ObjectRef<std::string> result_as_string(rt.task(api_test::add).remote(1, 2).token());
  EXPECT_THROW(result_as_string.get(kWait), atl::SerializationError);
}

TEST_F(ObjectsTest, null_object_ref_is_invalid_argument) {
  auto rt = make_runtime(2);
  atl::ObjectRef<int> null;
  EXPECT_FALSE(null.valid());
  EXPECT_FALSE(static_cast<bool>(null));
  EXPECT_TRUE(null.id().is_nil());
  const auto invalid = std::optional<ErrorCategory>(ErrorCategory::invalid_argument);
  EXPECT_EQ(thrown_category([&] { (void)null.get(kWait); }), invalid);
  EXPECT_EQ(thrown_category([&] { (void)null.get(); }), invalid);
  EXPECT_EQ(thrown_category([&] { (void)rt.get(null, kWait); }), invalid);
  EXPECT_EQ(thrown_category([&] { (void)rt.get(std::vector{null}, kWait); }), invalid);
  EXPECT_EQ(thrown_category([&] { (void)rt.wait(std::vector{null}, 1, kWait); }), invalid);
  EXPECT_EQ(thrown_category([&] { (void)rt.cancel(null); }), invalid);
  EXPECT_EQ(thrown_category([&] { (void)rt.task(api_test::plus_one).remote(null); }), invalid);
}

TEST_F(ObjectsTest, copies_share_the_id) {
  auto rt = make_runtime(2);
  auto a = rt.put(1);
  auto b = a;
  auto c = rt.put(1);
  EXPECT_TRUE(a.valid());
  EXPECT_FALSE(a.id().is_nil());
  EXPECT_TRUE(a.id() == b.id());
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.id().to_string(), b.id().to_string());
  EXPECT_FALSE(a == c);  // equal values, different objects
  EXPECT_NE(a.id().to_string(), c.id().to_string());
  std::unordered_set<atl::ObjectId> ids{a.id(), b.id(), c.id()};
  EXPECT_EQ(ids.size(), 2u);
  // Task results get ids of their own.
  auto r = rt.task(api_test::add).remote(1, 2);
  EXPECT_FALSE(r.id().is_nil());
  EXPECT_FALSE(r.id() == a.id());
}

}  // namespace
