// NEON attention and element-wise ops for the neon tables (arm/neon/neon.h). Base ARMv8-A
// Advanced SIMD only (every AArch64 CPU has it), so this file takes no extra -march flags.
//
// The algorithm is the x86 tables' (tiled attention with an online softmax, double sums for the
// norms): x86/vector_ops.inc is ISA-independent and is compiled here over a 4-lane NEON vector
// layer. Everything but the exported function has internal linkage.
#include <arm_neon.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "hearth/kernels/arm/neon/neon.h"
#include "hearth/kernels/x86/vector_ops.h"  // kAttentionTileScratchFloats (no intrinsics inside)

namespace hearth::kernels {
namespace {

// ---- ISA layer ---------------------------------------------------------------------------------

constexpr int W = 4;  // floats per vector
using vf = float32x4_t;

inline vf vzero() { return vdupq_n_f32(0.0f); }
inline vf vset1(float x) { return vdupq_n_f32(x); }
inline vf vload(const float* p) { return vld1q_f32(p); }
inline void vstore(float* p, vf v) { vst1q_f32(p, v); }
// First n (< W) lanes through a small buffer: no read or write past p + n.
inline vf vload_n(const float* p, int n) {
  alignas(16) float tmp[W] = {};
  for (int i = 0; i < n; ++i) tmp[i] = p[i];
  return vld1q_f32(tmp);
}
inline void vstore_n(float* p, vf v, int n) {
  alignas(16) float tmp[W];
  vst1q_f32(tmp, v);
  for (int i = 0; i < n; ++i) p[i] = tmp[i];
}
// f16 to f32 with FCVTL (base ARMv8-A): exact, as every half is a float.
inline vf vload_h(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
inline vf vload_h_n(const uint16_t* p, int n) {
  alignas(8) uint16_t tmp[W] = {};
  for (int i = 0; i < n; ++i) tmp[i] = p[i];
  return vload_h(tmp);
}
inline vf vload_i8(const int8_t* p) {
  int8_t b[8] = {};
  std::memcpy(b, p, W);
  const int16x8_t h = vmovl_s8(vld1_s8(b));
  return vcvtq_f32_s32(vmovl_s16(vget_low_s16(h)));
}
inline float h2f(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }
inline vf vadd(vf a, vf b) { return vaddq_f32(a, b); }
inline vf vsub(vf a, vf b) { return vsubq_f32(a, b); }
inline vf vmul(vf a, vf b) { return vmulq_f32(a, b); }
inline vf vdiv(vf a, vf b) { return vdivq_f32(a, b); }
inline vf vmax(vf a, vf b) { return vmaxq_f32(a, b); }
inline vf vfma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }                // a * b + c
inline vf vfms(vf a, vf b, vf c) { return vnegq_f32(vfmsq_f32(c, a, b)); }  // a * b - c, fused
inline float vsum(vf v) { return vaddvq_f32(v); }
inline float vhmax(vf v) { return vmaxvq_f32(v); }
inline vf vsel_le(vf a, vf b, vf x, vf y) { return vbslq_f32(vcleq_f32(a, b), x, y); }
inline vf vsel_eq(vf a, vf b, vf x, vf y) { return vbslq_f32(vceqq_f32(a, b), x, y); }

// exp(x) exactly as the x86 tables compute it (x86/avx2/vector_ops.cpp): n = round(x / ln2)
// (ties to even, FRINTN), r = x - n ln2 in two parts, Cephes' degree-7 polynomial, times 2^n
// built in the exponent field. Below ln(FLT_MIN) (and -inf) 0, above 88 +inf, NaN stays NaN.
inline vf vexp(vf x) {
  const vf lo = vset1(-87.33654475f), hi = vset1(88.0f);
  const vf xc = vminq_f32(vmaxq_f32(x, lo), hi);
  const vf n = vrndnq_f32(vmul(xc, vset1(1.44269504088896341f)));
  vf r = vfmsq_f32(xc, n, vset1(0.693359375f));
  r = vfmsq_f32(r, n, vset1(-2.12194440e-4f));
  vf p = vset1(1.9875691500e-4f);
  p = vfma(p, r, vset1(1.3981999507e-3f));
  p = vfma(p, r, vset1(8.3334519073e-3f));
  p = vfma(p, r, vset1(4.1665795894e-2f));
  p = vfma(p, r, vset1(1.6666665459e-1f));
  p = vfma(p, r, vset1(5.0000001201e-1f));
  p = vfma(p, vmul(r, r), vadd(r, vset1(1.0f)));
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  vf y = vmul(p, vreinterpretq_f32_s32(e));
  y = vbslq_f32(vcltq_f32(x, lo), vzero(), y);
  y = vbslq_f32(vcgtq_f32(x, hi), vset1(INFINITY), y);
  return vbslq_f32(vceqq_f32(x, x), y, x);  // NaN lanes compare unequal to themselves
}

// Sums in double (as ref does) so long rows keep their precision.
inline double sum_d(const float* x, int64_t n, float sub, bool square) {
  float64x2_t a0 = vdupq_n_f64(0.0), a1 = vdupq_n_f64(0.0);
  const vf s = vset1(sub);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const vf v = vsub(vload(x + i), s);
    const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v));
    const float64x2_t hi = vcvt_high_f64_f32(v);
    if (square) {
      a0 = vfmaq_f64(a0, lo, lo);
      a1 = vfmaq_f64(a1, hi, hi);
    } else {
      a0 = vaddq_f64(a0, lo);
      a1 = vaddq_f64(a1, hi);
    }
  }
  double sum = vaddvq_f64(vaddq_f64(a0, a1));
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i] - sub);
    sum += square ? d * d : d;
  }
  return sum;
}

// One vector of rope, adjacent pairs (x0, x1) with (cos, sin) pairs in cs:
// (x0 c - x1 s, x1 c + x0 s).
inline vf rope_pairs(vf x, vf cs) {
  const vf c = vtrn1q_f32(cs, cs), s = vtrn2q_f32(cs, cs);
  const vf xs = vrev64q_f32(x);  // (x1, x0, x3, x2)
  static constexpr float kSign[W] = {-1.0f, 1.0f, -1.0f, 1.0f};
  return vfmaq_f32(vmul(x, c), xs, vmul(s, vld1q_f32(kSign)));
}

// cos and sin of W consecutive rotation pairs from interleaved (cos, sin) at cs.
inline void deinterleave(const float* cs, vf& c, vf& s) {
  const float32x4x2_t v = vld2q_f32(cs);
  c = v.val[0];
  s = v.val[1];
}

// Register blocking of the attention tiles (32 q registers, as avx512's 32 zmm).
constexpr int kQkRows = 4;
constexpr int kPvRows = 4;
constexpr int kRowTarget = 32;  // query rows per work unit

// ---- Common code ----------------------------------------------------------------------------

#include "hearth/kernels/x86/vector_ops.inc"

}  // namespace

void fill_vector_ops_neon(KernelTable& t) { fill_vector_ops(t); }

}  // namespace hearth::kernels
