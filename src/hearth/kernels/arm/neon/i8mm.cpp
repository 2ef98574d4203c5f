// The neon-i8mm table: the neon-dotprod table plus smmla (FEAT_I8MM) tiles for prefill. smmla
// multiplies a 2x8 int8 matrix by the transpose of another, adding a 2x2 int32 tile: with two
// weight rows in one operand and two tokens' activations in the other, each instruction does
// the 32 products of 2 rows x 2 tokens x 8 elements. A single token (decode) has no second
// column, so it, and the rows and tokens left over by the 2x2 tiles, use sdot rows
// (arm/neon/quant_dots.inc, compiled here with sdot as in arm/neon/dotprod.cpp).
// Tiles exist for Q8_0 and Q4_0; other types use the sdot rows for every token.
// This file alone is compiled with +dotprod+i8mm; dispatch.cpp selects the table only when
// HWCAP has ASIMDDP and HWCAP2 has I8MM.
#include <arm_neon.h>

#include <cstring>
#include <type_traits>

#include "hearth/kernels/arm/neon/neon.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/matmul_driver.h"
#include "hearth/kernels/quant.h"
#include "hearth/kernels/quant_blocks.h"
#include "hearth/kernels/type_kernels.h"
#include "hearth/kernels/type_traits.h"

namespace hearth::kernels {
namespace {

inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }

#include "hearth/kernels/arm/neon/quant_dots.inc"

const TypeKernels& i8mm_type_kernels() {
  static const TypeKernels k = [] {
    TypeKernels t{};
    set_neon_rows(t);
    return t;
  }();
  return k;
}

// out = [w0.x0, w0.x1, w1.x0, w1.x1] for 32 int8 values per row (two 16-byte halves each):
// each half is split into its 8-byte quarters, row 0's beside row 1's, for smmla.
inline int32x4_t mm2x2_32(const int8x16_t w0[2], const int8x16_t w1[2], const int8_t* x0, const int8_t* x1) {
  int32x4_t s = vdupq_n_s32(0);
  for (int h = 0; h < 2; ++h) {
    const int64x2_t a0 = vreinterpretq_s64_s8(w0[h]), a1 = vreinterpretq_s64_s8(w1[h]);
    const int64x2_t b0 = vreinterpretq_s64_s8(vld1q_s8(x0 + 16 * h)), b1 = vreinterpretq_s64_s8(vld1q_s8(x1 + 16 * h));
    s = vmmlaq_s32(s, vreinterpretq_s8_s64(vzip1q_s64(a0, a1)), vreinterpretq_s8_s64(vzip1q_s64(b0, b1)));
    s = vmmlaq_s32(s, vreinterpretq_s8_s64(vzip2q_s64(a0, a1)), vreinterpretq_s8_s64(vzip2q_s64(b0, b1)));
  }
  return s;
}

// The four products of the blocks' scales, in the tile's lane order.
inline float32x4_t scales2x2(uint16_t dw0, uint16_t dw1, uint16_t dx0, uint16_t dx1) {
  const float w0 = h2f(dw0), w1 = h2f(dw1), x0 = h2f(dx0), x1 = h2f(dx1);
  const float d[4] = {w0 * x0, w0 * x1, w1 * x0, w1 * x1};
  return vld1q_f32(d);
}

// Two weight rows against two tokens' activation rows: out as mm2x2_32's lanes.
using Mm2x2Fn = void (*)(int64_t n, const void* w0, const void* w1, const void* x0, const void* x1, float out[4]);

void mm2x2_q8_0(int64_t n, const void* w0v, const void* w1v, const void* x0v, const void* x1v, float out[4]) {
  const auto* w0 = static_cast<const BlockQ8_0*>(w0v);
  const auto* w1 = static_cast<const BlockQ8_0*>(w1v);
  const auto* x0 = static_cast<const BlockQ8_0*>(x0v);
  const auto* x1 = static_cast<const BlockQ8_0*>(x1v);
  float32x4_t acc = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const int8x16_t a[2] = {vld1q_s8(w0[i].qs), vld1q_s8(w0[i].qs + 16)};
    const int8x16_t b[2] = {vld1q_s8(w1[i].qs), vld1q_s8(w1[i].qs + 16)};
    const int32x4_t s = mm2x2_32(a, b, x0[i].qs, x1[i].qs);
    acc = vfmaq_f32(acc, vcvtq_f32_s32(s), scales2x2(w0[i].d, w1[i].d, x0[i].d, x1[i].d));
  }
  vst1q_f32(out, acc);
}

// Q4_0 levels of a block, elements 0..15 then 16..31, centred (q - 8).
inline void q4_0_levels(const uint8_t* qs, int8x16_t q[2]) {
  uint8x16_t lo, hi;
  nibbles(qs, lo, hi);
  q[0] = vsubq_s8(s8(lo), vdupq_n_s8(8));
  q[1] = vsubq_s8(s8(hi), vdupq_n_s8(8));
}

void mm2x2_q4_0(int64_t n, const void* w0v, const void* w1v, const void* x0v, const void* x1v, float out[4]) {
  const auto* w0 = static_cast<const BlockQ4_0*>(w0v);
  const auto* w1 = static_cast<const BlockQ4_0*>(w1v);
  const auto* x0 = static_cast<const BlockQ8_0*>(x0v);
  const auto* x1 = static_cast<const BlockQ8_0*>(x1v);
  float32x4_t acc = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < n / kQK4_0; ++i) {
    int8x16_t a[2], b[2];
    q4_0_levels(w0[i].qs, a);
    q4_0_levels(w1[i].qs, b);
    const int32x4_t s = mm2x2_32(a, b, x0[i].qs, x1[i].qs);
    acc = vfmaq_f32(acc, vcvtq_f32_s32(s), scales2x2(w0[i].d, w1[i].d, x0[i].d, x1[i].d));
  }
  vst1q_f32(out, acc);
}

Mm2x2Fn mm2x2_for(TensorType t) {
  if (t == TensorType::Q8_0) return &mm2x2_q8_0;
  if (t == TensorType::Q4_0) return &mm2x2_q4_0;
  return nullptr;
}

void matmul_i8mm(const MatmulArgs& a, ThreadPool& pool) {
  const TypeKernels& k = i8mm_type_kernels();
  const Mm2x2Fn mm = mm2x2_for(a.wtype);
  if (mm == nullptr || a.n_tokens < 2) {
    matmul_rows(a, pool, k);
    return;
  }
  const TensorType act_type = vec_dot_type(a.wtype);
  const size_t act_row = *row_bytes(act_type, static_cast<uint64_t>(a.cols));
  convert_activations(a, pool, act_type, act_row, type_traits(act_type).from_float);
  const VecDotFn dot = type_row(k.vec_dot, a.wtype);
  auto w_row = [&](int64_t r) { return a.w + static_cast<size_t>(r) * a.w_row_bytes; };
  auto x_row = [&](int64_t t) { return a.scratch + static_cast<size_t>(t) * act_row; };
  const int64_t grain = a.rows >= 4096 ? 32 : 8;  // even: row pairs stay inside a work item
  pool.parallel_for(a.rows, grain, [&](int64_t r0, int64_t r1) {
    int64_t t = 0;
    for (; t + 2 <= a.n_tokens; t += 2) {
      float* y0 = a.y + t * a.y_stride;
      float* y1 = y0 + a.y_stride;
      int64_t r = r0;
      for (; r + 2 <= r1; r += 2) {
        float out[4];
        mm(a.cols, w_row(r), w_row(r + 1), x_row(t), x_row(t + 1), out);
        y0[r] = out[0];
        y1[r] = out[1];
        y0[r + 1] = out[2];
        y1[r + 1] = out[3];
      }
      for (; r < r1; ++r) {
        y0[r] = dot(a.cols, w_row(r), x_row(t));
        y1[r] = dot(a.cols, w_row(r), x_row(t + 1));
      }
    }
    for (; t < a.n_tokens; ++t) {
      float* y = a.y + t * a.y_stride;
      for (int64_t r = r0; r < r1; ++r) y[r] = dot(a.cols, w_row(r), x_row(t));
    }
  });
}

}  // namespace

KernelTable make_neon_i8mm_kernels() {
  KernelTable t{};
  t.name = "neon-i8mm";
  fill_vector_ops_neon(t);
  t.matmul = &matmul_i8mm;
  return t;
}

}  // namespace hearth::kernels
