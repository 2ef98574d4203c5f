// Hand-built blocks with hand-computed values: pins the bit layouts (ggml-common.h) and the
// reference quantizers' rounding rules independently of the implementation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "hearth/kernels/quant.h"
#include "hearth/kernels/quant_blocks.h"

namespace hearth::kernels {
namespace {

// fp16 bit patterns used below: 1.0 = 0x3c00, 0.5 = 0x3800, 0.25 = 0x3400, -0.5 = 0xb800.
constexpr uint16_t kHalfOne = 0x3c00;
constexpr uint16_t kHalfHalf = 0x3800;
constexpr uint16_t kHalfQuarter = 0x3400;

template <typename Block>
std::vector<float> dequant(TensorType type, const Block& b, int n) {
  std::vector<float> y(n);
  dequantize_row(type, &b, y.data(), n);
  return y;
}

TEST(KnownBlocks, Q4_0Dequantize) {
  BlockQ4_0 b{};
  b.d = kHalfHalf;                        // d = 0.5; value = d * (nibble - 8)
  std::memset(b.qs, 0x88, sizeof(b.qs));  // every nibble 8 -> 0
  b.qs[0] = 0x9f;                         // element 0: low nibble 15 -> 3.5; element 16: high nibble 9 -> 0.5
  b.qs[1] = 0x08;                         // element 1: 8 -> 0; element 17: 0 -> -4
  const auto y = dequant(TensorType::Q4_0, b, 32);
  EXPECT_EQ(y[0], 3.5f);
  EXPECT_EQ(y[16], 0.5f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[17], -4.0f);
  EXPECT_EQ(y[31], 0.0f);
}

TEST(KnownBlocks, Q4_0QuantizeUsesSignedMax) {
  // Largest magnitude is -4 (negative): d = -4 / -8 = 0.5, id = 2, q = trunc(x * 2 + 8.5).
  std::vector<float> x(32, 0.0f);
  x[0] = -4.0f;   // -8 + 8.5 = 0.5 -> 0 -> (0 - 8) * 0.5 = -4
  x[1] = 1.3f;    // 2.6 + 8.5 = 11.1 -> 11 -> 1.5
  x[2] = 3.9f;    // 7.8 + 8.5 = 16.3 -> 16 -> clamped to 15 -> 3.5
  x[3] = -0.25f;  // -0.5 + 8.5 = 8.0 -> 8 -> 0 (rounds half up)
  x[4] = 0.25f;   // 0.5 + 8.5 = 9.0 -> 9 -> 0.5
  BlockQ4_0 b{};
  quantize_row(TensorType::Q4_0, x.data(), &b, 32);
  EXPECT_EQ(b.d, kHalfHalf);
  EXPECT_EQ(b.qs[0] & 0xf, 0);
  EXPECT_EQ(b.qs[1] & 0xf, 11);
  EXPECT_EQ(b.qs[2] & 0xf, 15);
  EXPECT_EQ(b.qs[3] & 0xf, 8);
  EXPECT_EQ(b.qs[4] & 0xf, 9);
  EXPECT_EQ(b.qs[0] >> 4, 8);  // element 16 is 0 -> 8.5 -> 8

  // Largest magnitude +4 (positive): d = 4 / -8 = -0.5 (stored 0xb800), id = -2, so +4 maps
  // to level 0 and -4 would need level 16: the sign choice puts the extreme at the exact end.
  x[0] = 4.0f;  // -8 + 8.5 = 0.5 -> 0 -> (0 - 8) * -0.5 = 4
  quantize_row(TensorType::Q4_0, x.data(), &b, 32);
  EXPECT_EQ(b.d, 0xb800);
  EXPECT_EQ(b.qs[0] & 0xf, 0);
  EXPECT_EQ(b.qs[1] & 0xf, 5);  // 1.3 * -2 + 8.5 = 5.9 -> 5 -> (5 - 8) * -0.5 = 1.5
}

TEST(KnownBlocks, Q8_0QuantizeAndDequantize) {
  // x[j] = j - 16: amax 16 (at j = 0), d = 16 / 127 = 0.1259842... -> fp16: 2^-3 * (1 + m/1024)
  // with m = round((0.1259842 / 0.125 - 1) * 1024) = round(8.06) = 8 -> bits 0x3008.
  // q = roundf(x * id), id = 1/d in float, which rounds to exactly 7.9375 (= 127/16):
  // j = 0 -> -127, j = 4 -> -95.25 -> -95,
  // j = 8 -> -63.5 -> -64 (away from zero), j = 24 -> 63.5 -> 64, j = 31 -> 119.06 -> 119.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  BlockQ8_0 b{};
  quantize_row(TensorType::Q8_0, x.data(), &b, 32);
  EXPECT_EQ(b.d, 0x3008);
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[4], -95);
  EXPECT_EQ(b.qs[8], -64);
  EXPECT_EQ(b.qs[16], 0);
  EXPECT_EQ(b.qs[24], 64);
  EXPECT_EQ(b.qs[31], 119);
  // Dequantize: q * fp16(d) = q * 0.1259765625.
  const auto y = dequant(TensorType::Q8_0, b, 32);
  EXPECT_EQ(y[0], -127 * 0.1259765625f);
  EXPECT_EQ(y[24], 64 * 0.1259765625f);
}

TEST(KnownBlocks, Q8_0ReferenceVsX86Rounding) {
  // amax = 127 -> d = 1 exactly and both paths scale by exactly 1. Halves then show the
  // difference: roundf goes away from zero, the x86 path to even.
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.5f;
  x[4] = 1.5f;
  BlockQ8_0 ref{}, x86{};
  quantize_row(TensorType::Q8_0, x.data(), &ref, 32);
  quantize_row_x86(TensorType::Q8_0, x.data(), &x86, 32);
  EXPECT_EQ(ref.d, kHalfOne);
  EXPECT_EQ(x86.d, kHalfOne);
  EXPECT_EQ(ref.qs[1], 3);
  EXPECT_EQ(ref.qs[2], -3);
  EXPECT_EQ(ref.qs[3], 1);
  EXPECT_EQ(ref.qs[4], 2);
  EXPECT_EQ(x86.qs[1], 2);
  EXPECT_EQ(x86.qs[2], -2);
  EXPECT_EQ(x86.qs[3], 0);
  EXPECT_EQ(x86.qs[4], 2);
  // Q8_1 stores s = d * sum(q): ref 127 + 3 - 3 + 1 + 2 = 130 -> fp16(130) = 0x5810;
  // x86 127 + 2 - 2 + 0 + 2 = 129 -> 0x5808.
  BlockQ8_1 r1{}, x1{};
  quantize_row(TensorType::Q8_1, x.data(), &r1, 32);
  quantize_row_x86(TensorType::Q8_1, x.data(), &x1, 32);
  EXPECT_EQ(r1.s, 0x5810);
  EXPECT_EQ(x1.s, 0x5808);
}

TEST(KnownBlocks, Q5_0AndQ5_1HighBits) {
  // Q5_0: value = d * (q - 16), q = low nibble | (bit j of qh) << 4.
  BlockQ5_0 b{};
  b.d = kHalfOne;
  std::memset(b.qs, 0, sizeof(b.qs));
  b.qs[0] = 0x3f;                                           // element 0 low 15, element 16 low 3
  const uint32_t qh = (1u << 0) | (1u << 16) | (1u << 31);  // high bit of elements 0, 16, 31
  std::memcpy(b.qh, &qh, 4);
  auto y = dequant(TensorType::Q5_0, b, 32);
  EXPECT_EQ(y[0], 15.0f);   // 31 - 16
  EXPECT_EQ(y[16], 3.0f);   // 19 - 16
  EXPECT_EQ(y[31], 0.0f);   // 16 - 16
  EXPECT_EQ(y[1], -16.0f);  // 0 - 16
  // Q5_1: value = d * q + m.
  BlockQ5_1 c{};
  c.d = kHalfHalf;
  c.m = 0xbc00;  // -1.0
  std::memset(c.qs, 0, sizeof(c.qs));
  c.qs[0] = 0x3f;
  std::memcpy(c.qh, &qh, 4);
  y = dequant(TensorType::Q5_1, c, 32);
  EXPECT_EQ(y[0], 14.5f);  // 31 * 0.5 - 1
  EXPECT_EQ(y[16], 8.5f);  // 19 * 0.5 - 1
  EXPECT_EQ(y[31], 7.0f);  // 16 * 0.5 - 1
  EXPECT_EQ(y[1], -1.0f);
}

TEST(KnownBlocks, Q2_KDequantize) {
  // value = d * (scale & 15) * q - dmin * (scale >> 4). Within each 128 elements, byte l of
  // qs holds elements l, l + 32, l + 64, l + 96 at bit offsets 0, 2, 4, 6; sub-block j covers
  // elements 16j .. 16j + 15.
  BlockQ2_K b{};
  b.d = kHalfOne;
  b.dmin = kHalfHalf;
  b.scales[0] = 0x32;  // sub-block 0: scale 2, min 3
  b.scales[2] = 0x14;  // sub-block 2 (elements 32..47): scale 4, min 1
  b.scales[4] = 0x01;  // sub-block 4 (64..79): scale 1, min 0
  b.qs[0] = 0xe4;      // levels 0 (elem 0), 1 (elem 32), 2 (elem 64), 3 (elem 96)
  const auto y = dequant(TensorType::Q2_K, b, 256);
  EXPECT_EQ(y[0], 2 * 0 - 0.5f * 3);   // -1.5
  EXPECT_EQ(y[32], 4 * 1 - 0.5f * 1);  // 3.5
  EXPECT_EQ(y[64], 1 * 2 - 0.0f);      // 2
  EXPECT_EQ(y[96], 0.0f);              // sub-block 6 has scale 0 and min 0
  EXPECT_EQ(y[1], -1.5f);              // level 0 in sub-block 0
}

TEST(KnownBlocks, Q3_KDequantize) {
  // value = d * (s - 32) * (q - 4); q's low 2 bits as Q2_K, bit 2 of element j in
  // hmask[j % 32] bit j / 32 (set means +4). 6-bit s: low nibble of scales[j] (j < 8) or
  // scales[j - 8] >> 4, top 2 bits at scales[8 + j % 4] >> (2 * (j / 4)).
  BlockQ3_K b{};
  b.d = kHalfOne;
  // Sub-block 0: s = 33 = 0b10'0001 -> +1: low nibble 1 in scales[0], top bits 2 in scales[8].
  b.scales[0] = 0x01;
  b.scales[8] = 0x02;
  // Sub-block 9: s = 28 = 0b01'1100 -> -4: low nibble 0xc in scales[1] >> 4, top bits 1 in
  // scales[9] bits 4..5.
  b.scales[1] = 0xc0;
  b.scales[9] = 0x10;
  b.qs[0] = 0x03;     // element 0 low bits 3
  b.hmask[0] = 0x01;  // element 0 high bit set -> q = 7 -> 3
  // Element 144 is in the second half (offset 16, shift 0), so qs[32 + 16]; hmask[16] bit 4.
  b.qs[48] = 0x02;  // low bits 2, high bit clear -> q = 2 -> -2
  const auto y = dequant(TensorType::Q3_K, b, 256);
  EXPECT_EQ(y[0], 1.0f * 1 * 3);
  EXPECT_EQ(y[1], 1.0f * 1 * -4);     // element 1: levels 0, high clear -> -4
  EXPECT_EQ(y[144], 1.0f * -4 * -2);  // 8
}

TEST(KnownBlocks, Q4_KDequantize) {
  // value = d * sc_j * q - dmin * m_j for sub-block j of 32. Sub-blocks 0..3: sc in scales[j]
  // & 63, m in scales[j + 4] & 63. Sub-blocks 4..7: low nibbles in scales[j + 4] (sc low, m
  // high), top 2 bits in scales[j - 4] >> 6 (sc) and scales[j] >> 6 (m).
  // qs: per 64 elements 32 bytes; low nibbles first 32 elements, high nibbles next 32.
  BlockQ4_K b{};
  b.d = kHalfOne;
  b.dmin = kHalfHalf;
  // Sub-block 0: sc 2, m 4. Sub-block 1: sc 3, m 1.
  // Sub-block 5: sc 37 = 0b10'0101, m 19 = 0b01'0011 -> scales[9] = 0x35, top bits:
  // scales[1] |= 2 << 6, scales[5] |= 1 << 6.
  b.scales[0] = 2;
  b.scales[4] = 4;
  b.scales[1] = 0x80 | 3;
  b.scales[5] = 0x40 | 1;
  b.scales[9] = 0x35;
  b.qs[0] = 0x7a;   // element 0: 10, element 32: 7
  b.qs[64] = 0xf0;  // element 128 (sub-block 4): 0, element 160 (sub-block 5): 15
  const auto y = dequant(TensorType::Q4_K, b, 256);
  EXPECT_EQ(y[0], 1.0f * 2 * 10 - 0.5f * 4);      // 18
  EXPECT_EQ(y[32], 1.0f * 3 * 7 - 0.5f * 1);      // 20.5
  EXPECT_EQ(y[128], 0.0f);                        // sub-block 4: sc 0, m 0
  EXPECT_EQ(y[160], 1.0f * 37 * 15 - 0.5f * 19);  // 545.5
  EXPECT_EQ(y[1], -2.0f);                         // level 0 in sub-block 0
}

TEST(KnownBlocks, Q5_KDequantize) {
  // As Q4_K plus bit 4: element 64i + j (j < 32) in qh[j] bit 2i, element 64i + 32 + j in
  // qh[j] bit 2i + 1.
  BlockQ5_K b{};
  b.d = kHalfOne;
  b.dmin = 0;
  b.scales[0] = 1;      // sub-block 0: sc 1, m 0
  b.scales[3] = 2;      // sub-block 3 (elements 96..127): sc 2, m 0
  b.qs[0] = 0x05;       // element 0 low nibble 5
  b.qh[0] = 0x01;       // element 0 bit 4 -> 21
  b.qs[32 + 3] = 0x90;  // chunk 1 (elements 64..127), byte 3: element 67 low 0, element 99 low 9
  b.qh[3] = 0x08;       // bit 3 = 2 * 1 + 1 -> element 64 + 32 + 3 = 99 gets +16 -> 25
  const auto y = dequant(TensorType::Q5_K, b, 256);
  EXPECT_EQ(y[0], 21.0f);
  EXPECT_EQ(y[99], 50.0f);
  EXPECT_EQ(y[1], 0.0f);
}

TEST(KnownBlocks, Q6_KDequantize) {
  // value = d * scales[s] * (q - 32), q = 4 bits from ql | 2 bits from qh. Per 128 elements:
  // element l (l < 32): ql[l] low, qh[l] bits 0-1; l + 32: ql[l + 32] low, qh bits 2-3;
  // l + 64: ql[l] high, qh bits 4-5; l + 96: ql[l + 32] high, qh bits 6-7. Scale index
  // (element / 16).
  BlockQ6_K b{};
  b.d = kHalfQuarter;  // 0.25
  b.scales[0] = -3;
  b.scales[2] = 5;
  b.scales[4] = 7;
  b.scales[6] = -1;
  b.ql[0] = 0x21;   // element 0 low 1, element 64 low 2
  b.ql[32] = 0x0f;  // element 32 low 15, element 96 low 0
  b.qh[0] = 0xe4;   // 0b11'10'01'00: element 0 high 0, 32 high 1, 64 high 2, 96 high 3
  const auto y = dequant(TensorType::Q6_K, b, 256);
  EXPECT_EQ(y[0], 0.25f * -3 * (1 - 32));    // 23.25
  EXPECT_EQ(y[32], 0.25f * 5 * (31 - 32));   // -1.25
  EXPECT_EQ(y[64], 0.25f * 7 * (34 - 32));   // 3.5
  EXPECT_EQ(y[96], 0.25f * -1 * (48 - 32));  // -4
}

TEST(KnownBlocks, Q8_KQuantize) {
  // iscale = -127 / max (signed max, here +2 at element 5): q = round(-63.5 * x), d = 1/iscale,
  // bsums = sums of 16 consecutive q. x = 1 -> -63.5 -> -64 (ties to even), x = 2 -> -127.
  std::vector<float> x(256, 0.0f);
  x[5] = 2.0f;
  x[6] = 1.0f;
  x[20] = -1.0f;  // 63.5 -> 64
  BlockQ8_K b{};
  quantize_row(TensorType::Q8_K, x.data(), &b, 256);
  EXPECT_EQ(b.qs[5], -127);
  EXPECT_EQ(b.qs[6], -64);
  EXPECT_EQ(b.qs[20], 64);
  EXPECT_EQ(b.bsums[0], -191);
  EXPECT_EQ(b.bsums[1], 64);
  EXPECT_EQ(b.d, 1.0f / (-127.0f / 2.0f));
}

TEST(KnownBlocks, IQ4_NLDequantize) {
  // value = d * kIq4nlValues[nibble]; nibble order as Q4_0 (low: element j, high: j + 16).
  BlockIQ4_NL b{};
  b.d = kHalfHalf;
  std::memset(b.qs, 0x88, sizeof(b.qs));  // level 8 = +1 -> 0.5
  b.qs[0] = 0xf0;                         // element 0: level 0 = -127; element 16: level 15 = 113
  b.qs[1] = 0x87;                         // element 1: level 7 = -10; element 17: level 8 = 1
  const auto y = dequant(TensorType::IQ4_NL, b, 32);
  EXPECT_EQ(y[0], -63.5f);
  EXPECT_EQ(y[16], 56.5f);
  EXPECT_EQ(y[1], -5.0f);
  EXPECT_EQ(y[17], 0.5f);
  EXPECT_EQ(y[31], 0.5f);
}

TEST(KnownBlocks, IQ4_XSDequantize) {
  // Sub-block j: value = d * (s_j - 32) * kIq4nlValues[nibble], s_j = low nibble of
  // scales_l[j / 2] (even j) or its high nibble (odd j), plus bits 2j..2j+1 of scales_h above.
  BlockIQ4_XS b{};
  b.d = kHalfQuarter;
  std::memset(b.qs, 0x88, sizeof(b.qs));
  // s = 32 (level 0) everywhere but sub-block 0 (33), 1 (31) and 7 (63).
  uint16_t h = 0;
  for (int j = 0; j < 8; ++j) h = static_cast<uint16_t>(h | (2 << (2 * j)));
  b.scales_l[0] = 0xf1;  // s_0 low 1, s_1 low 15
  h = static_cast<uint16_t>((h & ~0xf) | 2 | (1 << 2));  // s_0 = 2 << 4 | 1 = 33, s_1 = 1 << 4 | 15 = 31
  b.scales_l[3] = 0xf0;  // s_7 low 15 (s_6 low 0)
  h = static_cast<uint16_t>(h | (3 << 14));  // s_7 = 63
  b.scales_h = h;
  b.qs[0] = 0x0f;    // element 0: 113; element 16: -127
  b.qs[16] = 0x00;   // sub-block 1, elements 32 and 48: -127
  b.qs[112] = 0x8e;  // sub-block 7, element 224: 89
  const auto y = dequant(TensorType::IQ4_XS, b, 256);
  EXPECT_EQ(y[0], 0.25f * 1 * 113);    // 28.25
  EXPECT_EQ(y[16], 0.25f * 1 * -127);  // -31.75
  EXPECT_EQ(y[32], 0.25f * -1 * -127);
  EXPECT_EQ(y[48], 0.25f * -1 * -127);
  EXPECT_EQ(y[64], 0.0f);               // level 0
  EXPECT_EQ(y[224], 0.25f * 31 * 89);   // 689.75
  EXPECT_EQ(y[240], 0.25f * 31 * 1);    // 7.75
}

TEST(KnownBlocks, IQ4QuantizeFindsAnExactGrid) {
  // x on the grid 0.01 * kIq4nlValues: the first guess (max / -127, a negative scale) fits
  // badly, and one of the trial scales finds the exact fit with d = +0.01.
  std::vector<float> x(256);
  for (size_t j = 0; j < x.size(); ++j) x[j] = 0.01f * kIq4nlValues[(j * 7) % 16];
  BlockIQ4_NL nl[8];
  quantize_row(TensorType::IQ4_NL, x.data(), nl, 256);
  for (int b = 0; b < 8; ++b) {
    EXPECT_EQ(nl[b].d, 0x211f) << b;  // fp16(0.01)
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(nl[b].qs[j] & 0xf, ((32 * b + j) * 7) % 16);
      EXPECT_EQ(nl[b].qs[j] >> 4, ((32 * b + j + 16) * 7) % 16);
    }
  }
  BlockIQ4_XS xs{};
  quantize_row(TensorType::IQ4_XS, x.data(), &xs, 256);
  std::vector<float> y(256);
  dequantize_row(TensorType::IQ4_XS, &xs, y.data(), 256);
  for (size_t j = 0; j < x.size(); ++j) EXPECT_NEAR(y[j], x[j], 2e-3 * std::abs(x[j])) << j;
}

TEST(KnownBlocks, IQ4ZeroBlocks) {
  // As the reference writes them: level 8 (+1, the level nearest 0) everywhere. IQ4_XS keeps
  // d = -0 / 32 (fp16 0x8000) and every sub-block scale at s = 32 (level 0).
  const std::vector<float> x(256, 0.0f);
  BlockIQ4_NL nl[8];
  quantize_row(TensorType::IQ4_NL, x.data(), nl, 256);
  for (const auto& b : nl) {
    EXPECT_EQ(b.d, 0);
    for (uint8_t q : b.qs) EXPECT_EQ(q, 0x88);
  }
  BlockIQ4_XS xs{};
  quantize_row(TensorType::IQ4_XS, x.data(), &xs, 256);
  EXPECT_EQ(xs.d, 0x8000);
  EXPECT_EQ(xs.scales_h, 0xaaaa);
  for (uint8_t s : xs.scales_l) EXPECT_EQ(s, 0);
  for (uint8_t q : xs.qs) EXPECT_EQ(q, 0x88);
}

}  // namespace
}  // namespace hearth::kernels
