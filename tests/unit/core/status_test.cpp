#include "hearth/core/status.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return make_error(ErrorCode::kInvalidArgument, "value {} is not positive", x);
  return x;
}

Result<int> doubled(int x) {
  HEARTH_ASSIGN_OR_RETURN(int v, parse_positive(x));
  return v * 2;
}

Status check(int x) {
  HEARTH_TRY(parse_positive(x).status());
  return ok_status();
}

TEST(Status, OkAndError) {
  EXPECT_TRUE(ok_status().ok());
  Status s(ErrorCode::kDataLoss, "digest mismatch");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.to_string(), "data_loss: digest mismatch");
  EXPECT_EQ(s.with_context("blob").message(), "blob: digest mismatch");
}

TEST(Status, MakeErrorFormatsItsMessage) {
  Status s = make_error(ErrorCode::kInvalidArgument, "tensor '{}': {} dims, at most {}", "w", 5, 4);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "tensor 'w': 5 dims, at most 4");
  // A runtime string goes through "{}", so its braces are not format fields.
  EXPECT_EQ(make_error(ErrorCode::kInternal, "{}", std::string("a {} b")).message(), "a {} b");
  EXPECT_EQ(make_error(ErrorCode::kInternal, "expected '{{'").message(), "expected '{'");
}

TEST(Result, PropagatesThroughMacros) {
  auto good = doubled(21);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 42);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "value -1 is not positive");
  EXPECT_TRUE(check(3).ok());
  EXPECT_EQ(check(0).code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace hearth
