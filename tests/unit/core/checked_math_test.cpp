#include "hearth/core/checked_math.h"

#include <gtest/gtest.h>

#include <limits>

namespace hearth {
namespace {

TEST(CheckedMath, DetectsOverflow) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(checked_add<uint64_t>(1, 2), 3u);
  EXPECT_FALSE(checked_add<uint64_t>(kMax, 1).has_value());
  EXPECT_FALSE(checked_mul<uint64_t>(uint64_t{1} << 33, uint64_t{1} << 31).has_value());
  EXPECT_EQ(checked_mul<uint64_t>(uint64_t{1} << 31, uint64_t{1} << 31), uint64_t{1} << 62);
  EXPECT_FALSE(checked_sub<uint64_t>(1, 2).has_value());
  EXPECT_FALSE(checked_mul<int64_t>(-(int64_t{1} << 62), 4).has_value());
}

TEST(CheckedMath, AlignUp) {
  EXPECT_EQ(checked_align_up(0, 32), 0u);
  EXPECT_EQ(checked_align_up(1, 32), 32u);
  EXPECT_EQ(checked_align_up(64, 32), 64u);
  EXPECT_FALSE(checked_align_up(std::numeric_limits<uint64_t>::max() - 3, 32).has_value());
  EXPECT_FALSE(checked_align_up(5, 0).has_value());
}

}  // namespace
}  // namespace hearth
