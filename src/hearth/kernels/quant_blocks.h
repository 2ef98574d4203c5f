// Block layouts of the quantized tensor formats, byte-for-byte as in ggml-common.h (the GGUF
// on-disk layout). Half-precision fields are raw binary16 bits (see fp16.h). All structs are
// byte-aligned PODs except BlockQ8_K (float + int16 fields) which ggml lays out naturally.
#pragma once

#include <cstdint>

namespace hearth::kernels {

inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK8_1 = 32;
inline constexpr int kQK_K = 256;       // elements per K-quant super-block
inline constexpr int kKScaleSize = 12;  // packed 6-bit scales/mins of Q4_K and Q5_K
inline constexpr int kQK4_NL = 32;

// The 16 levels of IQ4_NL and IQ4_XS: a 4-bit index q stands for kIq4nlValues[q] (ggml's
// kvalues_iq4nl), denser near zero than the uniform grid of Q4_0.
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// x = d * (q - 8), q in [0, 15]. qs[j] holds element j (low nibble) and j + 16 (high nibble).
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK4_0 / 2];
};

// x = d * q + m, q in [0, 15]; nibble order as Q4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK4_1 / 2];
};

// x = d * (q - 16), q in [0, 31]: low 4 bits as Q4_0, bit 4 of element j is bit j of qh
// (little-endian uint32).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK5_0 / 2];
};

// x = d * q + m, q in [0, 31]; bit layout as Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};

// x = d * q, q in [-127, 127].
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK8_0];
};

// Activation format for Q4_1/Q5_1 dots: s = d * sum(qs), so the min term costs one multiply.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK8_1];
};

// 16 sub-blocks of 16: x = d * (scales[j] & 15) * q - dmin * (scales[j] >> 4), q in [0, 3].
// qs: 4 elements per byte; within each 128-element half, byte l holds elements
// l, l + 32, l + 64, l + 96 at bit offsets 0, 2, 4, 6.
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};

// 16 sub-blocks of 16: x = d * (s - 32) * (q - 4), q in [0, 7]; low 2 bits in qs (layout as
// Q2_K), bit 2 in hmask (element j: byte j % 32, bit j / 32), 6-bit scales s packed in 12 bytes.
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};

// 8 sub-blocks of 32: x = d * sc * q - dmin * m, q in [0, 15], 6-bit sc/m packed in 12 bytes.
// qs: per 64 elements, 32 bytes; low nibbles are the first 32 elements, high nibbles the next.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQK_K / 2];
};

// As Q4_K with a fifth bit: element 64*i + j (j < 32) has its bit 4 in qh[j] bit 2i, element
// 64*i + 32 + j in qh[j] bit 2i + 1.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};

// 16 sub-blocks of 16: x = d * scales[j] * (q - 32), q in [0, 63]; low 4 bits in ql, high 2
// bits in qh (per 128 elements: ql 64 bytes, qh 32 bytes).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};

// x = d * kIq4nlValues[q], q in [0, 15]; nibble order as Q4_0. Dotted with Q8_0 activations.
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[kQK4_NL / 2];
};

// 8 sub-blocks of 32: x = d * (s - 32) * kIq4nlValues[q], with the 6-bit scale s of sub-block j
// split into a low nibble (scales_l[j / 2], low nibble for even j) and 2 high bits (scales_h
// bits 2j, 2j + 1). qs: 16 bytes per sub-block, nibble order as Q4_0. Dotted with Q8_K.
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};

// Activation format for the K-quant dots: float scale, and bsums[j] = sum of qs[16j..16j+15].
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

// Sizes as in ggml-common.h and core/tensor_type.cpp.
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);

}  // namespace hearth::kernels
