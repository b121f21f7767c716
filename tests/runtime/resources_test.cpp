// Resources: fixed-point amounts, demands built from options, node vectors, label selectors.
#include "runtime/resources.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "atoll/errors.hpp"

namespace {

using atl::LabelSelector;
using atl::runtime::from_fixed;
using atl::runtime::kResourceUnit;
using atl::runtime::Labels;
using atl::runtime::make_demand;
using atl::runtime::ResourceDemand;
using atl::runtime::ResourceNames;
using atl::runtime::ResourceVector;
using atl::runtime::to_fixed;
using Items = std::vector<std::pair<std::uint32_t, std::int64_t>>;

// The category of the atl::Error that `fn` throws (nullopt when it throws nothing).
template <class Fn>
std::optional<atl::ErrorCategory> error_category(Fn fn) {
  try {
    fn();
  } catch (const atl::Error& e) {
    return e.category();
  }
  return std::nullopt;
}

constexpr auto kInvalid = atl::ErrorCategory::invalid_argument;

TEST(ResourcesTest, names_pre_intern_cpu_gpu_memory) {
  ResourceNames names;
  EXPECT_EQ(names.size(), 3u);
  EXPECT_EQ(names.intern("CPU"), ResourceNames::cpu);
  EXPECT_EQ(names.intern("GPU"), ResourceNames::gpu);
  EXPECT_EQ(names.intern("memory"), ResourceNames::memory);
  std::uint32_t tpu = names.intern("TPU");
  EXPECT_EQ(tpu, 3u);
  EXPECT_EQ(names.intern("TPU"), tpu);
  EXPECT_EQ(names.name(tpu), "TPU");
  EXPECT_EQ(names.size(), 4u);
}

TEST(ResourcesTest, to_fixed_rounds_to_the_nearest_unit) {
  EXPECT_EQ(kResourceUnit, 10000);
  EXPECT_EQ(to_fixed("CPU", 0), 0);
  EXPECT_EQ(to_fixed("CPU", 1), 10000);
  EXPECT_EQ(to_fixed("CPU", 0.1), 1000);
  EXPECT_EQ(to_fixed("GPU", 0.25), 2500);
  EXPECT_EQ(to_fixed("GPU", 1.0 / 3), 3333);
  EXPECT_EQ(to_fixed("GPU", 2.0 / 3), 6667);
  EXPECT_EQ(to_fixed("x", 0.00004), 0);
  EXPECT_EQ(to_fixed("x", 0.00006), 1);
  EXPECT_EQ(to_fixed("x", 1e6), 10'000'000'000);
  EXPECT_DOUBLE_EQ(from_fixed(2500), 0.25);
  EXPECT_DOUBLE_EQ(from_fixed(to_fixed("x", 12.5)), 12.5);
}

TEST(ResourcesTest, to_fixed_rejects_negative_and_non_finite_amounts) {
  for (double bad :
       {-1.0, -0.0001, std::numeric_limits<double>::quiet_NaN(),
        std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()}) {
    EXPECT_EQ(error_category([&] { to_fixed("GPU", bad); }), kInvalid) << bad;
  }
  try {
    to_fixed("GPU", -2);
    FAIL() << "no exception";
  } catch (const atl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("GPU"), std::string::npos) << e.what();
  }
}

TEST(ResourcesTest, tasks_default_to_one_cpu) {
  ResourceNames names;
  EXPECT_EQ(make_demand(names, std::nullopt, 1.0, 0, 0, {}).items,
            (Items{{ResourceNames::cpu, kResourceUnit}}));
  // Explicit zero drops the CPU entirely (as does an actor's default of zero).
  EXPECT_TRUE(make_demand(names, 0.0, 1.0, 0, 0, {}).items.empty());
  EXPECT_TRUE(make_demand(names, std::nullopt, 0.0, 0, 0, {}).items.empty());
  EXPECT_EQ(make_demand(names, 2.5, 1.0, 0, 0, {}).items, (Items{{ResourceNames::cpu, 25000}}));
  // A CPU amount given as a custom resource replaces the default.
  EXPECT_EQ(make_demand(names, std::nullopt, 1.0, 0, 0, {{"CPU", 0.5}}).items,
            (Items{{ResourceNames::cpu, 5000}}));
}

TEST(ResourcesTest, demand_lists_gpus_memory_and_custom_sorted_by_id) {
  ResourceNames names;
  std::uint32_t tpu = names.intern("TPU");
  ResourceDemand d = make_demand(names, 1.0, 1.0, 0.5, 1ull << 30, {{"TPU", 2}, {"zz", 0}});
  // Memory is in bytes, not in fixed-point units; zero amounts are dropped.
  EXPECT_EQ(d.items, (Items{{ResourceNames::cpu, kResourceUnit},
                            {ResourceNames::gpu, kResourceUnit / 2},
                            {ResourceNames::memory, std::int64_t{1} << 30},
                            {tpu, 2 * kResourceUnit}}));
  ResourceDemand custom_memory = make_demand(names, 0.0, 1.0, 0, 0, {{"memory", 4096}});
  EXPECT_EQ(custom_memory.items, (Items{{ResourceNames::memory, 4096}}));
}

TEST(ResourcesTest, make_demand_rejects_conflicts_and_invalid_amounts) {
  ResourceNames names;
  EXPECT_EQ(error_category([&] { make_demand(names, 1.0, 1.0, 0, 0, {{"CPU", 1}}); }), kInvalid);
  EXPECT_EQ(error_category([&] {
              make_demand(names, std::nullopt, 1.0, 1, 0, {{"GPU", 1}});
            }),
            kInvalid);
  EXPECT_EQ(error_category([&] {
              make_demand(names, std::nullopt, 1.0, 0, 8, {{"memory", 8}});
            }),
            kInvalid);
  EXPECT_EQ(error_category([&] { make_demand(names, -1.0, 1.0, 0, 0, {}); }), kInvalid);
  EXPECT_EQ(error_category([&] { make_demand(names, std::nullopt, 1.0, -1, 0, {}); }), kInvalid);
  EXPECT_EQ(error_category([&] { make_demand(names, std::nullopt, 1.0, NAN, 0, {}); }), kInvalid);
  EXPECT_EQ(error_category([&] {
              make_demand(names, std::nullopt, 1.0, 0, 0, {{"TPU", -1}});
            }),
            kInvalid);
  EXPECT_EQ(error_category([&] {
              make_demand(names, std::nullopt, 1.0, 0, 0, {{"", 1}});
            }),
            kInvalid);
}

// Custom "memory" skips to_fixed's checks and `memory` is cast from uint64 to int64, so both can
// yield a negative demand, which would *add* capacity to a node when charged.
TEST(ResourcesTest, make_demand_rejects_negative_or_overflowing_memory) {
  ResourceNames names;
  EXPECT_EQ(error_category([&] {
              make_demand(names, 0.0, 1.0, 0, 0, {{"memory", -4096}});
            }),
            kInvalid);
  EXPECT_EQ(error_category([&] {
              make_demand(names, 0.0, 1.0, 0, 0, {{"memory", NAN}});
            }),
            kInvalid);
  EXPECT_EQ(error_category([&] { make_demand(names, 0.0, 1.0, 0, ~std::uint64_t{0}, {}); }),
            kInvalid);
}

TEST(ResourcesTest, vector_covers_adds_and_subtracts) {
  ResourceNames names;
  ResourceVector node;
  node.add(make_demand(names, 4.0, 0, 1, 0, {}));
  ResourceDemand task = make_demand(names, 1.5, 1.0, 0.5, 0, {});
  ResourceDemand tpu = make_demand(names, 0.0, 1.0, 0, 0, {{"TPU", 1}});
  EXPECT_EQ(node.get(ResourceNames::cpu), 4 * kResourceUnit);
  EXPECT_EQ(node.get(99), 0);  // unknown ids count as zero
  EXPECT_TRUE(node.covers(task));
  EXPECT_FALSE(node.covers(tpu));
  EXPECT_TRUE(node.covers(ResourceDemand{}));

  node.subtract(task);
  node.subtract(task);
  EXPECT_EQ(node.get(ResourceNames::cpu), 1 * kResourceUnit);
  EXPECT_EQ(node.get(ResourceNames::gpu), 0);
  EXPECT_FALSE(node.covers(task));  // CPU left, GPU not
  node.subtract(task);              // may go negative
  EXPECT_EQ(node.get(ResourceNames::cpu), -kResourceUnit / 2);
  EXPECT_EQ(node.get(ResourceNames::gpu), -kResourceUnit / 2);
  node.add(task);
  node.add(task);
  EXPECT_TRUE(node.covers(task));
  EXPECT_EQ(node.get(ResourceNames::cpu), 5 * kResourceUnit / 2);

  node.add(tpu);  // grows for a new id
  EXPECT_TRUE(node.covers(tpu));
  EXPECT_EQ(node.get(names.intern("TPU")), kResourceUnit);
}

TEST(ResourcesTest, label_selector_ops) {
  Labels labels{{"zone", "eu"}, {"gpu_model", "H100"}};
  using atl::runtime::matches;
  EXPECT_TRUE(matches(LabelSelector::equals("zone", "eu"), labels));
  EXPECT_FALSE(matches(LabelSelector::equals("zone", "us"), labels));
  EXPECT_TRUE(matches(LabelSelector::in("zone", {"us", "eu"}), labels));
  EXPECT_FALSE(matches(LabelSelector::in("rack", {"eu"}), labels));
  EXPECT_FALSE(matches(LabelSelector::not_in("zone", {"us", "eu"}), labels));
  EXPECT_TRUE(matches(LabelSelector::not_in("zone", {"us"}), labels));
  EXPECT_TRUE(matches(LabelSelector::not_in("rack", {"a"}), labels));  // absent: not in any set
  EXPECT_TRUE(matches(LabelSelector::exists("gpu_model"), labels));
  EXPECT_FALSE(matches(LabelSelector::exists("rack"), labels));
  EXPECT_TRUE(matches(LabelSelector::does_not_exist("rack"), labels));
  EXPECT_FALSE(matches(LabelSelector::does_not_exist("zone"), labels));
}

TEST(ResourcesTest, matches_all_and_count_matches) {
  Labels labels{{"zone", "eu"}, {"gpu_model", "H100"}};
  std::vector<LabelSelector> both{LabelSelector::equals("zone", "eu"),
                                  LabelSelector::exists("gpu_model")};
  std::vector<LabelSelector> one_of_two{LabelSelector::equals("zone", "eu"),
                                        LabelSelector::exists("rack")};
  EXPECT_TRUE(atl::runtime::matches_all({}, labels));
  EXPECT_TRUE(atl::runtime::matches_all(both, labels));
  EXPECT_FALSE(atl::runtime::matches_all(one_of_two, labels));
  EXPECT_EQ(atl::runtime::count_matches(both, labels), 2u);
  EXPECT_EQ(atl::runtime::count_matches(one_of_two, labels), 1u);
  EXPECT_EQ(atl::runtime::count_matches({}, labels), 0u);
}

TEST(ResourcesTest, validate_rejects_empty_keys_and_missing_values) {
  using atl::runtime::validate;
  EXPECT_NO_THROW(validate({}));
  EXPECT_NO_THROW(validate({LabelSelector::exists("a"), LabelSelector::does_not_exist("b"),
                            LabelSelector::in("c", {"x"}), LabelSelector::not_in("d", {"y"})}));
  EXPECT_EQ(error_category([] { validate({LabelSelector::equals("", "x")}); }), kInvalid);
  EXPECT_EQ(error_category([] { validate({LabelSelector::exists("")}); }), kInvalid);
  EXPECT_EQ(error_category([] { validate({LabelSelector::in("zone", {})}); }), kInvalid);
  EXPECT_EQ(error_category([] { validate({LabelSelector::not_in("zone", {})}); }), kInvalid);
  // One bad selector among good ones is enough.
  EXPECT_EQ(error_category([] {
              validate({LabelSelector::exists("a"), LabelSelector::in("zone", {})});
            }),
            kInvalid);
}

TEST(ResourcesTest, describe_names_resources_and_selectors) {
  ResourceNames names;
  ResourceDemand d = make_demand(names, 1.5, 1.0, 0.25, 2048, {{"TPU", 2}});
  EXPECT_EQ(d.describe(names), "{CPU: 1.5, GPU: 0.25, memory: 2048, TPU: 2}");
  EXPECT_EQ(ResourceDemand{}.describe(names), "{}");
  EXPECT_EQ(make_demand(names, 0.0001, 1.0, 0, 0, {}).describe(names), "{CPU: 0.0001}");

  std::string s = atl::runtime::describe(
      {LabelSelector::in("zone", {"eu", "us"}), LabelSelector::not_in("rack", {"r1"}),
       LabelSelector::exists("gpu_model"), LabelSelector::does_not_exist("spot")});
  EXPECT_EQ(s, "zone in {eu,us}, rack not in {r1}, gpu_model exists, spot does not exist");
}

}  // namespace
