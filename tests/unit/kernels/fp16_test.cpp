// fp16/bf16 conversions: expected bit patterns derived by hand from IEEE 754 (binary16: 1 sign,
// 5 exponent bits with bias 15, 10 mantissa bits; bfloat16: the top 16 bits of a float), plus an
// exhaustive/random comparison with the compiler's own _Float16 conversion where available.
#include "hearth/kernels/fp16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <random>

namespace hearth::kernels {
namespace {

float f(uint32_t bits) { return std::bit_cast<float>(bits); }
uint32_t bits_of(float v) { return std::bit_cast<uint32_t>(v); }

TEST(Fp16, FromFloatExactValues) {
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);           // exponent 15, mantissa 0
  EXPECT_EQ(fp32_to_fp16(0.5f), 0x3800);           // exponent 14
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xc000);          // sign, exponent 16
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);       // largest finite: (2 - 2^-10) * 2^15
  EXPECT_EQ(fp32_to_fp16(f(0x38800000)), 0x0400);  // 2^-14, smallest normal
  EXPECT_EQ(fp32_to_fp16(f(0x33800000)), 0x0001);  // 2^-24, smallest subnormal
  EXPECT_EQ(fp32_to_fp16(f(0x387fc000)), 0x03ff);  // 1023 * 2^-24, largest subnormal
}

TEST(Fp16, FromFloatRoundsToNearestEven) {
  // Normal range: 1 + 2^-11 is halfway between 1 (mantissa 0, even) and 1 + 2^-10.
  EXPECT_EQ(fp32_to_fp16(f(0x3f801000)), 0x3c00);
  // Just above halfway rounds up.
  EXPECT_EQ(fp32_to_fp16(f(0x3f801001)), 0x3c01);
  // 1 + 3 * 2^-11 is halfway between mantissa 1 (odd) and 2 (even): up.
  EXPECT_EQ(fp32_to_fp16(f(0x3f803000)), 0x3c02);
  // Integers: spacing is 2 in [2048, 4096); 2049 ties to 2048 (0x6800), 2051 to 2052 (0x6802).
  EXPECT_EQ(fp32_to_fp16(2049.0f), 0x6800);
  EXPECT_EQ(fp32_to_fp16(2051.0f), 0x6802);
  // Subnormals are multiples of 2^-24. 2^-25 ties between 0 and 1 unit: to 0 (even).
  EXPECT_EQ(fp32_to_fp16(f(0x33000000)), 0x0000);
  EXPECT_EQ(fp32_to_fp16(f(0x33000001)), 0x0001);  // a hair above half a unit
  EXPECT_EQ(fp32_to_fp16(f(0x33c00000)), 0x0002);  // 1.5 units ties to 2
  EXPECT_EQ(fp32_to_fp16(f(0x34200000)), 0x0002);  // 2.5 units ties to 2
  EXPECT_EQ(fp32_to_fp16(-f(0x34200000)), 0x8002);
  // 1023.5 units ties between 0x03ff (odd) and 0x0400 (the smallest normal, even).
  EXPECT_EQ(fp32_to_fp16(f(0x387fe000)), 0x0400);
  // Far below: 2^-30 underflows to (signed) zero.
  EXPECT_EQ(fp32_to_fp16(-f(0x30800000)), 0x8000);
}

TEST(Fp16, FromFloatOverflowInfNan) {
  // 65520 is halfway between 65504 (mantissa 0x3ff, odd) and 2^16 (not representable): inf.
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(f(0x477fefff)), 0x7bff);  // just below 65520
  EXPECT_EQ(fp32_to_fp16(1e6f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-1e30f), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(f(0x7f800000)), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(f(0xff800000)), 0xfc00);
  // NaN becomes the quiet NaN 0x7e00 with the sign (ggml's scalar conversion drops payloads).
  EXPECT_EQ(fp32_to_fp16(f(0x7fc00000)), 0x7e00);
  EXPECT_EQ(fp32_to_fp16(f(0x7f800001)), 0x7e00);
  EXPECT_EQ(fp32_to_fp16(f(0xffc12345)), 0xfe00);
}

TEST(Fp16, ToFloat) {
  EXPECT_EQ(bits_of(fp16_to_fp32(0x0000)), 0x00000000u);
  EXPECT_EQ(bits_of(fp16_to_fp32(0x8000)), 0x80000000u);
  EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
  EXPECT_EQ(bits_of(fp16_to_fp32(0x0001)), 0x33800000u);  // 2^-24
  EXPECT_EQ(bits_of(fp16_to_fp32(0x83ff)), 0xb87fc000u);  // -1023 * 2^-24
  EXPECT_EQ(bits_of(fp16_to_fp32(0x0400)), 0x38800000u);  // 2^-14
  // 0x3555: exponent 13 (2^-2), mantissa 0x155 -> 0.25 * (1 + 341/1024) = 0.33325195...
  EXPECT_EQ(fp16_to_fp32(0x3555), 0.25f * (1.0f + 341.0f / 1024.0f));
  EXPECT_EQ(bits_of(fp16_to_fp32(0x7c00)), 0x7f800000u);
  EXPECT_EQ(bits_of(fp16_to_fp32(0xfc00)), 0xff800000u);
  EXPECT_EQ(bits_of(fp16_to_fp32(0x7e00)), 0x7fc00000u);
  // A signalling NaN keeps its payload (mantissa << 13) and comes back quiet.
  EXPECT_EQ(bits_of(fp16_to_fp32(0x7c01)), 0x7fc02000u);
}

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto hh = static_cast<uint16_t>(h);
    const bool is_nan = (hh & 0x7c00) == 0x7c00 && (hh & 0x03ff) != 0;
    if (is_nan) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(hh)));
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(hh)), hh) << "half 0x" << std::hex << h;
  }
}

// Independent oracle: the compiler's half type and its IEEE round-to-nearest-even conversions.
// AArch64: __fp16, converted by the FCVT instruction (GCC 12 has no _Float16 in C++ there).
#if defined(__aarch64__)
using CompilerHalf = __fp16;
#define HEARTH_COMPILER_HALF 1
#elif defined(__FLT16_MAX__)
using CompilerHalf = _Float16;
#define HEARTH_COMPILER_HALF 1
#endif

#if defined(HEARTH_COMPILER_HALF)
TEST(Fp16, MatchesCompilerFloat16) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto hh = static_cast<uint16_t>(h);
    if ((hh & 0x7c00) == 0x7c00 && (hh & 0x03ff) != 0) continue;  // NaN payloads may differ
    const float expect = static_cast<float>(std::bit_cast<CompilerHalf>(hh));
    ASSERT_EQ(bits_of(fp16_to_fp32(hh)), bits_of(expect)) << std::hex << h;
  }
  std::mt19937 rng(7);
  // Random bit patterns cover every exponent, including the subnormal and overflow ranges;
  // the second half draws from [2^-26, 2^17) where all the interesting cases live.
  for (int i = 0; i < 2000000; ++i) {
    uint32_t b = rng();
    if (i % 2 == 1) b = (b & 0x807fffffu) | ((101u + (rng() % 43u)) << 23);
    const float v = f(b);
    if (std::isnan(v)) continue;
    const uint16_t expect = std::bit_cast<uint16_t>(static_cast<CompilerHalf>(v));
    ASSERT_EQ(fp32_to_fp16(v), expect) << "float bits 0x" << std::hex << b;
  }
}
#endif

TEST(Bf16, FromFloat) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_bf16(f(0x7f800000)), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(f(0xff800000)), 0xff80);
  // Ties to even: 0x3f808000 is halfway between 0x3f80 (even) and 0x3f81.
  EXPECT_EQ(fp32_to_bf16(f(0x3f808000)), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(f(0x3f808001)), 0x3f81);
  EXPECT_EQ(fp32_to_bf16(f(0x3f818000)), 0x3f82);  // halfway between 0x3f81 (odd) and 0x3f82
  EXPECT_EQ(fp32_to_bf16(f(0x3f817fff)), 0x3f81);
  // The largest float rounds up into infinity; one below the halfway point does not.
  EXPECT_EQ(fp32_to_bf16(f(0x7f7fffff)), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(f(0x7f7f7fff)), 0x7f7f);
  // Subnormals round the same way (0x2345 < 0x8000 rounds down).
  EXPECT_EQ(fp32_to_bf16(f(0x00012345)), 0x0001);
  // NaN stays NaN, made quiet (bit 6 of the result), keeping sign and top payload bits.
  EXPECT_EQ(fp32_to_bf16(f(0x7fc00000)), 0x7fc0);
  EXPECT_EQ(fp32_to_bf16(f(0x7f800001)), 0x7fc0);  // a signalling NaN whose payload is low
  EXPECT_EQ(fp32_to_bf16(f(0xff810000)), 0xffc1);
}

TEST(Bf16, ToFloat) {
  EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xc040), -3.0f);
  EXPECT_EQ(bits_of(bf16_to_fp32(0x8000)), 0x80000000u);
  EXPECT_EQ(bits_of(bf16_to_fp32(0xffc1)), 0xffc10000u);
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto hh = static_cast<uint16_t>(h);
    const float v = bf16_to_fp32(hh);
    if (std::isnan(v)) continue;
    ASSERT_EQ(fp32_to_bf16(v), hh);
  }
}

}  // namespace
}  // namespace hearth::kernels
