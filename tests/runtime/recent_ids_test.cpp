#include "runtime/recent_ids.hpp"

#include <gtest/gtest.h>

namespace {

using atl::runtime::RecentIds;

TEST(RecentIds, a_second_insert_of_the_same_id_is_refused) {
  RecentIds seen(4);
  EXPECT_TRUE(seen.insert(10));
  EXPECT_FALSE(seen.insert(10));
  EXPECT_TRUE(seen.insert(11));
  EXPECT_TRUE(seen.contains(10));
  EXPECT_EQ(seen.size(), 2u);
}

TEST(RecentIds, the_oldest_id_is_forgotten_beyond_capacity) {
  RecentIds seen(3);
  for (std::uint64_t id : {1, 2, 3, 4}) EXPECT_TRUE(seen.insert(id));
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_FALSE(seen.contains(1));
  EXPECT_TRUE(seen.insert(1));  // forgotten, so new again
  EXPECT_FALSE(seen.contains(2));
  EXPECT_FALSE(seen.insert(4));
}

}  // namespace
