// Reference dot products: against the f64 dot of the dequantized operands (which they must
// equal up to float rounding, since the integer part is exact) and against the true dot of
// the unquantized data (within the formats' quantization error).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "hearth/kernels/quant_blocks.h"
#include "quant_test_util.h"

namespace hearth::kernels {
namespace {

using testing::dequantize;
using testing::dot_f64;
using testing::gaussian;
using testing::quantize;

struct DotCase {
  TensorType weight;
  double weight_rel_rmse;  // round-trip bounds from quant_roundtrip_test.cpp
};

const DotCase kCases[] = {
    {TensorType::F32, 0.0},   {TensorType::F16, 4e-4},  {TensorType::BF16, 3e-3},  {TensorType::Q4_0, 0.1},
    {TensorType::Q4_1, 0.09}, {TensorType::Q5_0, 0.05}, {TensorType::Q5_1, 0.045}, {TensorType::Q8_0, 0.008},
    {TensorType::Q2_K, 0.33}, {TensorType::Q3_K, 0.17}, {TensorType::Q4_K, 0.08},  {TensorType::Q5_K, 0.04},
    {TensorType::Q6_K, 0.02}, {TensorType::IQ4_NL, 0.085}, {TensorType::IQ4_XS, 0.085},
};

double act_rel_rmse(TensorType act) {
  switch (act) {
    case TensorType::Q8_0:
    case TensorType::Q8_1: return 0.008;
    case TensorType::Q8_K: return 0.01;
    case TensorType::F16: return 4e-4;
    case TensorType::BF16: return 3e-3;
    default: return 0.0;
  }
}

TEST(QuantDot, EqualsDotOfDequantizedOperands) {
  constexpr size_t kN = 1024;
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    auto w = gaussian(kN, seed);
    const auto a = gaussian(kN, seed + 100, 3.0f);
    // Vary magnitudes between blocks so per-block scales differ widely.
    for (size_t i = 0; i < kN; ++i) w[i] *= 1.0f + static_cast<float>((i / 256) * 3);
    for (const auto& c : kCases) {
      const TensorType act = vec_dot_type(c.weight);
      const auto wq = quantize(c.weight, w);
      const auto aq = quantize(act, a);
      const float got = vec_dot(c.weight, static_cast<int64_t>(kN), wq.data(), aq.data());
      const auto wd = dequantize(c.weight, wq, kN);
      const auto ad = dequantize(act, aq, kN);
      double abs_sum = 0;
      for (size_t i = 0; i < kN; ++i) abs_sum += std::fabs(static_cast<double>(wd[i]) * ad[i]);
      // Integer dots are exact; what remains is f32 rounding of the per-block scale products
      // and the accumulation (~n_blocks * 2^-24 relative). Q4_1/Q5_1 also round the
      // activation's s = d * sum(q) to fp16 (2^-11 relative on the min term), and Q8_1's
      // dequantized form does not use s at all.
      const bool fp16_s = act == TensorType::Q8_1;
      const double tol = (fp16_s ? 1e-3 : 2e-6) * abs_sum;
      EXPECT_NEAR(got, dot_f64(wd, ad), tol) << type_name(c.weight) << " seed " << seed;
    }
  }
}

TEST(QuantDot, CloseToTrueDot) {
  constexpr size_t kN = 4096;
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    const auto w = gaussian(kN, seed * 7);
    const auto a = gaussian(kN, seed * 7 + 1);
    const double exact = dot_f64(w, a);
    const double norms = std::sqrt(dot_f64(w, w) * dot_f64(a, a));
    for (const auto& c : kCases) {
      const TensorType act = vec_dot_type(c.weight);
      const auto wq = quantize(c.weight, w);
      const auto aq = quantize(act, a);
      const float got = vec_dot(c.weight, static_cast<int64_t>(kN), wq.data(), aq.data());
      // The error sum_i (dw_i a_i + w_i da_i) of independent per-element errors has standard
      // deviation ~ (r_w + r_a) * |w| |a| / sqrt(n); allow 6 of them, plus f32 accumulation.
      const double sigma = (c.weight_rel_rmse + act_rel_rmse(act)) * norms / std::sqrt(double(kN));
      EXPECT_NEAR(got, exact, 6 * sigma + 1e-5 * norms) << type_name(c.weight) << " seed " << seed;
    }
  }
}

TEST(QuantDot, FloatFormatsAccumulateInDouble) {
  // 1 + 2^24 small terms: a float accumulator would lose every 2^-24 * 0.75 addend; the
  // double accumulator (ggml_float) keeps them. f32 products are exact here.
  constexpr size_t kN = 1 << 16;
  std::vector<float> w(kN, 1.0f), a(kN, 0.0f);
  a[0] = 1.0f;
  for (size_t i = 1; i < kN; ++i) a[i] = 0x1p-24f * 0.75f;
  const double expect = 1.0 + (kN - 1) * 0x1p-24 * 0.75;
  EXPECT_EQ(vec_dot(TensorType::F32, kN, w.data(), a.data()), static_cast<float>(expect));
}

TEST(QuantDot, X86ActivationQuantizationDiffersOnlyInTies) {
  // The x86 path computes id = 127/amax instead of 1/(amax/127) and rounds halves to even:
  // the scale bits are identical and a level can move by at most 1.
  const auto x = gaussian(32 * 4096, 77);
  const auto ref = quantize(TensorType::Q8_0, x);
  std::vector<std::byte> x86(ref.size());
  quantize_row_x86(TensorType::Q8_0, x.data(), x86.data(), static_cast<int64_t>(x.size()));
  const auto* r = reinterpret_cast<const BlockQ8_0*>(ref.data());
  const auto* v = reinterpret_cast<const BlockQ8_0*>(x86.data());
  int moved = 0;
  for (size_t b = 0; b < x.size() / 32; ++b) {
    ASSERT_EQ(r[b].d, v[b].d);
    for (int j = 0; j < 32; ++j) {
      ASSERT_LE(std::abs(r[b].qs[j] - v[b].qs[j]), 1);
      moved += r[b].qs[j] != v[b].qs[j];
    }
  }
  EXPECT_LT(moved, static_cast<int>(x.size() / 1000));  // rare: exact ties or last-ulp cases
}

}  // namespace
}  // namespace hearth::kernels
