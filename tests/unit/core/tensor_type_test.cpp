#include "hearth/core/tensor_type.h"

#include <gtest/gtest.h>

namespace hearth {
namespace {

TEST(TensorType, BlockGeometryMatchesGgml) {
  // Sizes follow from the block structs in ggml-common.h (QK_K = 256).
  EXPECT_EQ(traits_of(TensorType::Q4_0).type_size, 18u);
  EXPECT_EQ(traits_of(TensorType::Q8_0).type_size, 34u);
  EXPECT_EQ(traits_of(TensorType::Q2_K).type_size, 84u);
  EXPECT_EQ(traits_of(TensorType::Q3_K).type_size, 110u);
  EXPECT_EQ(traits_of(TensorType::Q4_K).type_size, 144u);
  EXPECT_EQ(traits_of(TensorType::Q5_K).type_size, 176u);
  EXPECT_EQ(traits_of(TensorType::Q6_K).type_size, 210u);
  EXPECT_EQ(traits_of(TensorType::Q8_K).type_size, 292u);
  EXPECT_FALSE(tensor_type_traits(4).has_value());
  EXPECT_FALSE(tensor_type_traits(999).has_value());
}

TEST(TensorType, RowBytesAndParse) {
  EXPECT_EQ(row_bytes(TensorType::Q4_K, 512), 288u);
  EXPECT_FALSE(row_bytes(TensorType::Q4_0, 33).has_value());
  EXPECT_EQ(parse_tensor_type("Q4_K"), TensorType::Q4_K);
  EXPECT_EQ(parse_tensor_type("bf16"), TensorType::BF16);
  EXPECT_FALSE(parse_tensor_type("q9_9").has_value());
}

}  // namespace
}  // namespace hearth
