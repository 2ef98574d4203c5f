// AVX2/FMA/F16C attention and element-wise ops (see x86/vector_ops.h). Compiled with those flags for
// this file only. Everything but the exported kernels has internal linkage, and no std:: inline
// template is used, so no AVX code can be picked by the linker for another translation unit.
//
// Same algorithm as x86/avx512/vector_ops.cpp (whose header explains it); only the ISA layer and the
// register blocking differ. The code below the ISA layer is shared: x86/vector_ops.inc.
#include <immintrin.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "hearth/kernels/x86/vector_ops.h"

namespace hearth::kernels {
namespace {

// ---- ISA layer: the only part that differs from x86/avx512/vector_ops.cpp -----------------------

constexpr int W = 8;  // floats per vector
using vf = __m256;

inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset1(float x) { return _mm256_set1_ps(x); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline __m256i tail_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// First n (< W) lanes; the rest are zero and never read (masked loads do not fault).
inline vf vload_n(const float* p, int n) { return _mm256_maskload_ps(p, tail_mask(n)); }
inline void vstore_n(float* p, vf v, int n) { _mm256_maskstore_ps(p, tail_mask(n), v); }
inline vf vload_h(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline vf vload_h_n(const uint16_t* p, int n) {
  alignas(16) uint16_t tmp[W] = {};
  for (int i = 0; i < n; ++i) tmp[i] = p[i];
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp)));
}
// W signed bytes to f32 (quantized KV blocks), and one f16 value to f32 (a block's scale).
inline vf vload_i8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
inline float h2f(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vfms(vf a, vf b, vf c) { return _mm256_fmsub_ps(a, b, c); }  // a * b - c
inline float vsum(vf v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float vhmax(vf v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
// a <= b ? x : y, lane-wise.
inline vf vsel_le(vf a, vf b, vf x, vf y) { return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LE_OQ)); }
inline vf vsel_eq(vf a, vf b, vf x, vf y) { return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_EQ_OQ)); }

// exp(x): n = round(x / ln2), r = x - n ln2 (two-part ln2, Cody-Waite), exp(r) by Cephes'
// degree-7 polynomial on |r| <= ln2/2, times 2^n built in the exponent field. Below ln(FLT_MIN)
// (including -inf) the result is 0, above 88 it is +inf, NaN stays NaN. exp(0) is exactly 1.
inline vf vexp(vf x) {
  const vf lo = vset1(-87.33654475f), hi = vset1(88.0f);
  const vf xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const vf n = _mm256_round_ps(vmul(xc, vset1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  vf r = _mm256_fnmadd_ps(n, vset1(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, vset1(-2.12194440e-4f), r);
  vf p = vset1(1.9875691500e-4f);
  p = vfma(p, r, vset1(1.3981999507e-3f));
  p = vfma(p, r, vset1(8.3334519073e-3f));
  p = vfma(p, r, vset1(4.1665795894e-2f));
  p = vfma(p, r, vset1(1.6666665459e-1f));
  p = vfma(p, r, vset1(5.0000001201e-1f));
  p = vfma(p, vmul(r, r), vadd(r, vset1(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  vf y = vmul(p, _mm256_castsi256_ps(e));
  y = _mm256_blendv_ps(y, vzero(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
  y = _mm256_blendv_ps(y, vset1(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// Sums in double (as ref does) so long rows keep their precision.
inline double sum_d(const float* x, int64_t n, float sub, bool square) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  const vf s = vset1(sub);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    vf v = vsub(vload(x + i), s);
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    if (square) {
      a0 = _mm256_fmadd_pd(lo, lo, a0);
      a1 = _mm256_fmadd_pd(hi, hi, a1);
    } else {
      a0 = _mm256_add_pd(a0, lo);
      a1 = _mm256_add_pd(a1, hi);
    }
  }
  const __m256d a = _mm256_add_pd(a0, a1);
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  h = _mm_add_sd(h, _mm_unpackhi_pd(h, h));
  double sum = _mm_cvtsd_f64(h);
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i] - sub);
    sum += square ? d * d : d;
  }
  return sum;
}

// One vector of rope, adjacent pairs (x0, x1) with (cos, sin) pairs in cs.
inline vf rope_pairs(vf x, vf cs) {
  const vf c = _mm256_moveldup_ps(cs), s = _mm256_movehdup_ps(cs);
  const vf xs = _mm256_permute_ps(x, 0xB1);      // (x1, x0)
  return _mm256_fmaddsub_ps(x, c, vmul(xs, s));  // (x0 c - x1 s, x1 c + x0 s)
}

// cos and sin of W consecutive rotation pairs from interleaved (cos, sin) at cs.
inline void deinterleave(const float* cs, vf& c, vf& s) {
  const vf a = vload(cs), b = vload(cs + W);
  // shuffle_ps works per 128-bit half: evens come out as (0 1 4 5 | 2 3 6 7); fix the order.
  c = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
  s = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

// Register blocking of the attention tiles (16 ymm registers): kQkRows cache rows x up to 4
// vectors of query rows, kPvRows query rows x up to 4 vectors of head dims.
constexpr int kQkRows = 2;
constexpr int kPvRows = 2;
constexpr int kRowTarget = 32;  // query rows per work unit

// ---- Common code ----------------------------------------------------------------------------

#include "hearth/kernels/x86/vector_ops.inc"

}  // namespace

void fill_vector_ops_avx2(KernelTable& t) { fill_vector_ops(t); }

}  // namespace hearth::kernels
