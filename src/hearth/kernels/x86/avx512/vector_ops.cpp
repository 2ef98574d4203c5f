// AVX-512 attention and element-wise ops (see x86/vector_ops.h). Compiled with AVX-512 flags for this
// file only. Everything but the exported kernels has internal linkage, and no std:: inline
// template is used, so no AVX-512 code can be picked by the linker for another translation unit.
//
// Attention is tiled with an online softmax: a work unit is one KV head and a block of query rows
// (several query tokens x the query heads that share that KV head). Each K/V tile (T cache rows,
// converted to f32 once) is used by every row of the unit: S^T = K_tile * Q^T puts the query rows
// along the vector lanes, so the running max, sum and rescale factor of 16 rows are one vector,
// and O += P * V_tile broadcasts P and streams V rows. No buffer grows with n_kv.
#include <immintrin.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "hearth/kernels/x86/vector_ops.h"

namespace hearth::kernels {
namespace {

// ---- ISA layer: the only part that differs from x86/avx2/vector_ops.cpp -------------------------

constexpr int W = 16;  // floats per vector
using vf = __m512;

inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float x) { return _mm512_set1_ps(x); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline __mmask16 tail_mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
// First n (< W) lanes; the rest are zero and never read (masked loads do not fault).
inline vf vload_n(const float* p, int n) { return _mm512_maskz_loadu_ps(tail_mask(n), p); }
inline void vstore_n(float* p, vf v, int n) { _mm512_mask_storeu_ps(p, tail_mask(n), v); }
inline vf vload_h(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline vf vload_h_n(const uint16_t* p, int n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail_mask(n), p)); }
// W signed bytes to f32 (quantized KV blocks), and one f16 value to f32 (a block's scale).
inline vf vload_i8(const int8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
inline float h2f(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vfms(vf a, vf b, vf c) { return _mm512_fmsub_ps(a, b, c); }  // a * b - c
inline float vsum(vf v) { return _mm512_reduce_add_ps(v); }
inline float vhmax(vf v) { return _mm512_reduce_max_ps(v); }
// a <= b ? x : y, lane-wise.
inline vf vsel_le(vf a, vf b, vf x, vf y) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LE_OQ), y, x); }
inline vf vsel_eq(vf a, vf b, vf x, vf y) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), y, x); }

// exp(x): n = round(x / ln2), r = x - n ln2 (two-part ln2, Cody-Waite), exp(r) by Cephes'
// degree-7 polynomial on |r| <= ln2/2, times 2^n built in the exponent field. Below ln(FLT_MIN)
// (including -inf) the result is 0, above 88 it is +inf, NaN stays NaN. exp(0) is exactly 1.
inline vf vexp(vf x) {
  const vf lo = vset1(-87.33654475f), hi = vset1(88.0f);
  const vf xc = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
  const vf n =
      _mm512_roundscale_ps(vmul(xc, vset1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  vf r = _mm512_fnmadd_ps(n, vset1(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, vset1(-2.12194440e-4f), r);
  vf p = vset1(1.9875691500e-4f);
  p = vfma(p, r, vset1(1.3981999507e-3f));
  p = vfma(p, r, vset1(8.3334519073e-3f));
  p = vfma(p, r, vset1(4.1665795894e-2f));
  p = vfma(p, r, vset1(1.6666665459e-1f));
  p = vfma(p, r, vset1(5.0000001201e-1f));
  p = vfma(p, vmul(r, r), vadd(r, vset1(1.0f)));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  vf y = vmul(p, _mm512_castsi512_ps(e));
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), y, vzero());
  y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), y, vset1(INFINITY));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

// Sums in double (as ref does) so long rows keep their precision.
inline double sum_d(const float* x, int64_t n, float sub, bool square) {
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  const vf s = vset1(sub);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    vf v = vsub(vload(x + i), s);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    if (square) {
      a0 = _mm512_fmadd_pd(lo, lo, a0);
      a1 = _mm512_fmadd_pd(hi, hi, a1);
    } else {
      a0 = _mm512_add_pd(a0, lo);
      a1 = _mm512_add_pd(a1, hi);
    }
  }
  double sum = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i] - sub);
    sum += square ? d * d : d;
  }
  return sum;
}

// One vector of rope, adjacent pairs (x0, x1) with (cos, sin) pairs in cs.
inline vf rope_pairs(vf x, vf cs) {
  const vf c = _mm512_moveldup_ps(cs), s = _mm512_movehdup_ps(cs);
  const vf xs = _mm512_permute_ps(x, 0xB1);      // (x1, x0)
  return _mm512_fmaddsub_ps(x, c, vmul(xs, s));  // (x0 c - x1 s, x1 c + x0 s)
}

// cos and sin of W consecutive rotation pairs from interleaved (cos, sin) at cs.
inline void deinterleave(const float* cs, vf& c, vf& s) {
  const vf a = vload(cs), b = vload(cs + W);
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  c = _mm512_permutex2var_ps(a, ev, b);
  s = _mm512_permutex2var_ps(a, od, b);
}

// Register blocking of the attention tiles: kQkRows cache rows x up to 4 vectors of query rows,
// kPvRows query rows x up to 4 vectors of head dims.
constexpr int kQkRows = 4;
constexpr int kPvRows = 4;
constexpr int kRowTarget = 64;  // query rows per work unit

// ---- Common code ----------------------------------------------------------------------------

#include "hearth/kernels/x86/vector_ops.inc"

}  // namespace

void fill_vector_ops_avx512(KernelTable& t) { fill_vector_ops(t); }

}  // namespace hearth::kernels
