// AVX2/FMA/F16C attention and element-wise ops (see simd_ops.h). Compiled with those flags for
// this file only. Everything but the exported kernels has internal linkage, and no std:: inline
// template is used, so no AVX code can be picked by the linker for another translation unit.
//
// Same algorithm as attention_avx512.cpp (whose header explains it); only the ISA layer and the
// register blocking differ. The code below the ISA layer is kept identical to that file.
#include <immintrin.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "hearth/kernels/simd_ops.h"

namespace hearth::kernels {
namespace {

// ---- ISA layer: the only part that differs from attention_avx512.cpp -----------------------

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
  const vf xs = _mm256_permute_ps(x, 0xB1);  // (x1, x0)
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

// ---- Common code (identical in attention_avx512.cpp) -----------------------------------------

inline int imin(int a, int b) { return a < b ? a : b; }
inline int64_t imin64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax64(int64_t a, int64_t b) { return a > b ? a : b; }
inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

// Converts/copies one head's row of hd elements to f32 at dst, zero-padded to a multiple of W.
inline void row_to_f32(const void* base, KvType type, int64_t off, int hd, float* dst) {
  int d = 0;
  if (type == KvType::kF16) {
    const uint16_t* src = static_cast<const uint16_t*>(base) + off;
    for (; d + W <= hd; d += W) vstore(dst + d, vload_h(src + d));
    if (d < hd) vstore(dst + d, vload_h_n(src + d, hd - d));
  } else {
    const float* src = static_cast<const float*>(base) + off;
    for (; d + W <= hd; d += W) vstore(dst + d, vload(src + d));
    if (d < hd) vstore(dst + d, vload_n(src + d, hd - d));
  }
}

// st[r][*] = K row r . Q^T for NV vectors of query rows, JR cache rows at a time.
template <int NV, int JR>
inline void qk_block(const float* k, int64_t ks, const float* qt, int mp, int hd, float* st) {
  vf acc[JR][NV];
  for (int r = 0; r < JR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = vzero();
  for (int d = 0; d < hd; ++d) {
    vf q[NV];
    for (int v = 0; v < NV; ++v) q[v] = vload(qt + static_cast<int64_t>(d) * mp + v * W);
    for (int r = 0; r < JR; ++r) {
      const vf kb = vset1(k[r * ks + d]);
      for (int v = 0; v < NV; ++v) acc[r][v] = vfma(kb, q[v], acc[r][v]);
    }
  }
  for (int r = 0; r < JR; ++r)
    for (int v = 0; v < NV; ++v) vstore(st + static_cast<int64_t>(r) * mp + v * W, acc[r][v]);
}

template <int NV>
void qk_rows(const float* k, int64_t ks, const float* qt, int mp, int hd, float* st, int tc) {
  int j = 0;
  for (; j + kQkRows <= tc; j += kQkRows)
    qk_block<NV, kQkRows>(k + j * ks, ks, qt, mp, hd, st + static_cast<int64_t>(j) * mp);
  for (; j < tc; ++j) qk_block<NV, 1>(k + j * ks, ks, qt, mp, hd, st + static_cast<int64_t>(j) * mp);
}

// S^T[j][i] (tc cache rows x mp query lanes) from K rows (stride ks) and Q^T [hd][mp].
void qk_tile(const float* k, int64_t ks, const float* qt, int mp, int hd, float* st, int tc) {
  const int nv = mp / W;
  for (int v = 0; v < nv; v += 4) {
    const float* q = qt + v * W;
    float* s = st + v * W;
    switch (imin(4, nv - v)) {
      case 4: qk_rows<4>(k, ks, q, mp, hd, s, tc); break;
      case 3: qk_rows<3>(k, ks, q, mp, hd, s, tc); break;
      case 2: qk_rows<2>(k, ks, q, mp, hd, s, tc); break;
      default: qk_rows<1>(k, ks, q, mp, hd, s, tc); break;
    }
  }
}

// Few query rows (decode without GQA sharing): lanes over head dims instead, one dot per
// (cache row, query row), so the vector lanes are not mostly padding.
void qk_tile_dots(const float* k, int64_t ks, const float* const* qrows, int m, int mp, int hd, float* st,
                  int tc) {
  for (int j = 0; j < tc; ++j) {
    const float* kr = k + j * ks;
    for (int i = 0; i < m; ++i) {
      const float* q = qrows[i];
      vf acc = vzero();
      int d = 0;
      for (; d + W <= hd; d += W) acc = vfma(vload(q + d), vload(kr + d), acc);
      if (d < hd) acc = vfma(vload_n(q + d, hd - d), vload_n(kr + d, hd - d), acc);
      st[static_cast<int64_t>(j) * mp + i] = vsum(acc);
    }
  }
}

// Online softmax over one tile: masks j0 + j > pos, updates the running max m and sum l of
// every query lane, leaves P = exp(s - m) in st and the rescale factor of the old O in alpha.
void softmax_tile(float* st, int mp, int tc, int64_t j0, float scale, const float* posf, float* m, float* l,
                  float* alpha) {
  const vf ninf = vset1(-INFINITY), sc = vset1(scale);
  for (int iv = 0; iv < mp; iv += W) {
    const vf posv = vload(posf + iv);
    vf mx = ninf;
    for (int j = 0; j < tc; ++j) {
      float* s = st + static_cast<int64_t>(j) * mp + iv;
      const vf x = vsel_le(vset1(static_cast<float>(j0 + j)), posv, vmul(vload(s), sc), ninf);
      vstore(s, x);
      mx = vmax(mx, x);
    }
    const vf mold = vload(m + iv);
    const vf mnew = vmax(mold, mx);
    // A row with nothing visible yet keeps m = -inf; subtract 0 so exp(-inf - 0) = 0, not NaN.
    const vf msub = vsel_eq(mnew, ninf, vzero(), mnew);
    const vf al = vexp(vsub(mold, msub));
    vf sum = vzero();
    for (int j = 0; j < tc; ++j) {
      float* s = st + static_cast<int64_t>(j) * mp + iv;
      const vf p = vexp(vsub(vload(s), msub));
      vstore(s, p);
      sum = vadd(sum, p);
    }
    vstore(l + iv, vfma(vload(l + iv), al, sum));
    vstore(m + iv, mnew);
    vstore(alpha + iv, al);
  }
}

// o[r][0..C*W) = o * alpha[r] + sum_j P[j][r] * V[j] for R query rows.
template <int R, int C>
inline void pv_block(const float* p, int mp, const float* v, int64_t vs, int tv, float* o, int hdp,
                     const float* alpha) {
  vf acc[R][C];
  for (int r = 0; r < R; ++r) {
    const vf al = vset1(alpha[r]);
    for (int c = 0; c < C; ++c) acc[r][c] = vmul(vload(o + r * hdp + c * W), al);
  }
  for (int j = 0; j < tv; ++j) {
    vf vv[C];
    for (int c = 0; c < C; ++c) vv[c] = vload(v + j * vs + c * W);
    for (int r = 0; r < R; ++r) {
      const vf pb = vset1(p[static_cast<int64_t>(j) * mp + r]);
      for (int c = 0; c < C; ++c) acc[r][c] = vfma(pb, vv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) vstore(o + r * hdp + c * W, acc[r][c]);
}

template <int R>
void pv_rows(const float* p, int mp, const float* v, int64_t vs, int tv, float* o, int hdp, const float* alpha) {
  const int nv = hdp / W;
  for (int c = 0; c < nv; c += 4) {
    const int off = c * W;
    switch (imin(4, nv - c)) {
      case 4: pv_block<R, 4>(p, mp, v + off, vs, tv, o + off, hdp, alpha); break;
      case 3: pv_block<R, 3>(p, mp, v + off, vs, tv, o + off, hdp, alpha); break;
      case 2: pv_block<R, 2>(p, mp, v + off, vs, tv, o + off, hdp, alpha); break;
      default: pv_block<R, 1>(p, mp, v + off, vs, tv, o + off, hdp, alpha); break;
    }
  }
}

// Work decomposition and per-thread scratch layout, fixed for one call.
struct Plan {
  const AttentionArgs* a;
  int group;    // query heads per KV head
  int gh, qb;   // query heads and query tokens per unit
  int n_gs, n_tb;
  int T;        // cache rows per tile
  int hdp;      // head_dim rounded up to W
  int mp_max;   // query rows per unit rounded up to W
  int64_t n_units;
  std::atomic<int64_t> next{0};
};

size_t unit_floats(int hd, int hdp, int T, int mp) {
  const size_t mpz = static_cast<size_t>(mp), tz = static_cast<size_t>(T);
  return static_cast<size_t>(hd) * mpz + tz * mpz + mpz * static_cast<size_t>(hdp) +
         2 * tz * static_cast<size_t>(hdp) + 4 * mpz + W;  // + W: 64-byte alignment slack
}

void run_unit(const Plan& pl, int64_t u, float* ws) {
  const AttentionArgs& a = *pl.a;
  const int hd = a.head_dim, hdp = pl.hdp, T = pl.T;
  const int64_t per_tb = static_cast<int64_t>(a.n_head_kv) * pl.n_gs;
  // Last token blocks first: they see the most cache rows (positions grow along the batch).
  const int64_t tb = pl.n_tb - 1 - u / per_tb;
  const int hk = static_cast<int>((u % per_tb) / pl.n_gs);
  const int gs = static_cast<int>(u % pl.n_gs);
  const int64_t t0 = tb * pl.qb;
  const int nq = static_cast<int>(imin64(pl.qb, a.n_tokens - t0));
  const int g0 = gs * pl.gh;
  const int ng = imin(pl.gh, pl.group - g0);
  const int m = nq * ng;
  const int mp = round_up(m, W);

  // Scratch layout (sized for mp_max, used with this unit's mp).
  float* base = ws + ((64 - reinterpret_cast<uintptr_t>(ws) % 64) % 64) / sizeof(float);
  float* qt = base;                                          // [hd][mp]
  float* st = qt + static_cast<size_t>(hd) * pl.mp_max;      // [T][mp]
  float* o = st + static_cast<size_t>(T) * pl.mp_max;        // [mp][hdp]
  float* kc = o + static_cast<size_t>(pl.mp_max) * hdp;      // [T][hdp]
  float* vc = kc + static_cast<size_t>(T) * hdp;             // [T][hdp]
  float* mrun = vc + static_cast<size_t>(T) * hdp;           // [mp] each
  float* lrun = mrun + pl.mp_max;
  float* alpha = lrun + pl.mp_max;
  float* posf = alpha + pl.mp_max;

  // Row i of the unit: query token t0 + i / ng, head hk * group + g0 + i % ng.
  const float* qrows[W];
  const bool dots = m * 4 <= W;
  int64_t max_kv = 0;
  for (int i = 0; i < mp; ++i) {
    if (i < m) {
      const int64_t t = t0 + i / ng;
      const int h = hk * pl.group + g0 + i % ng;
      const float* q = a.q + t * a.q_stride + static_cast<int64_t>(h) * hd;
      if (dots) qrows[i] = q;
      else
        for (int d = 0; d < hd; ++d) qt[static_cast<int64_t>(d) * mp + i] = q[d];
      posf[i] = static_cast<float>(a.pos[t]);
      max_kv = imax64(max_kv, static_cast<int64_t>(a.pos[t]) + 1);
    } else {
      if (!dots)
        for (int d = 0; d < hd; ++d) qt[static_cast<int64_t>(d) * mp + i] = 0.0f;
      posf[i] = -1.0f;  // padding lane: every cache row is masked
    }
    mrun[i] = -INFINITY;
    lrun[i] = 0.0f;
  }
  std::memset(o, 0, sizeof(float) * static_cast<size_t>(mp) * static_cast<size_t>(hdp));

  const int64_t head_off = static_cast<int64_t>(hk) * hd;
  const bool v_direct = a.kv_type == KvType::kF32 && hd % W == 0;
  for (int64_t j0 = 0; j0 < max_kv; j0 += T) {
    const int tc = static_cast<int>(imin64(T, max_kv - j0));
    const float* k;
    int64_t ks;
    if (a.kv_type == KvType::kF32) {
      k = static_cast<const float*>(a.k) + j0 * a.kv_stride + head_off;
      ks = a.kv_stride;
    } else {
      for (int j = 0; j < tc; ++j) row_to_f32(a.k, a.kv_type, (j0 + j) * a.kv_stride + head_off, hd, kc + j * hdp);
      k = kc;
      ks = hdp;
    }
    const float* v;
    int64_t vs;
    if (v_direct) {
      v = static_cast<const float*>(a.v) + j0 * a.kv_stride + head_off;
      vs = a.kv_stride;
    } else {
      for (int j = 0; j < tc; ++j) row_to_f32(a.v, a.kv_type, (j0 + j) * a.kv_stride + head_off, hd, vc + j * hdp);
      v = vc;
      vs = hdp;
    }
    if (dots) qk_tile_dots(k, ks, qrows, m, mp, hd, st, tc);
    else qk_tile(k, ks, qt, mp, hd, st, tc);
    softmax_tile(st, mp, tc, j0, a.scale, posf, mrun, lrun, alpha);
    // P * V for row groups, each over the cache rows its rows can see (P is 0 past them).
    for (int i = 0; i < m;) {
      const int r = m - i >= kPvRows ? kPvRows : 1;
      int tv = 0;
      for (int q = 0; q < r; ++q) tv = static_cast<int>(imax64(tv, imin64(tc, static_cast<int64_t>(posf[i + q]) + 1 - j0)));
      // A group that sees none of this tile has alpha = 1 (its max is unchanged): skip it.
      if (tv > 0) {
        if (r == kPvRows) pv_rows<kPvRows>(st + i, mp, v, vs, tv, o + static_cast<int64_t>(i) * hdp, hdp, alpha + i);
        else pv_rows<1>(st + i, mp, v, vs, tv, o + static_cast<int64_t>(i) * hdp, hdp, alpha + i);
      }
      i += r;
    }
  }

  for (int i = 0; i < m; ++i) {
    const int64_t t = t0 + i / ng;
    const int h = hk * pl.group + g0 + i % ng;
    float* out = a.out + t * a.out_stride + static_cast<int64_t>(h) * hd;
    const float* oi = o + static_cast<int64_t>(i) * hdp;
    const vf inv = vset1(1.0f / lrun[i]);
    int d = 0;
    for (; d + W <= hd; d += W) vstore(out + d, vmul(vload(oi + d), inv));
    if (d < hd) vstore_n(out + d, vmul(vload(oi + d), inv), hd - d);
  }
}

void attention_tiled(const AttentionArgs& a, ThreadPool& pool) {
  if (a.n_tokens <= 0) return;
  Plan pl;
  pl.a = &a;
  pl.group = a.n_head / a.n_head_kv;
  pl.hdp = round_up(a.head_dim, W);
  int target = kRowTarget;
  pl.T = 128;
  for (;;) {
    pl.gh = imin(pl.group, target);
    pl.qb = static_cast<int>(imin64(imax64(1, target / pl.gh), a.n_tokens));
    if (unit_floats(a.head_dim, pl.hdp, pl.T, round_up(pl.gh * pl.qb, W)) <= kAttentionTileScratchFloats) break;
    if (pl.T > 16) {
      pl.T /= 2;
    } else if (target > 1) {
      target /= 2;
    } else {
      ref_kernels().attention(a, pool);  // a head too large for the tile scratch
      return;
    }
  }
  // At least one unit per thread, splitting tokens first. Splitting a head group makes each
  // unit convert and read the same K/V tiles again, so decode keeps whole groups when it can.
  auto count = [&] {
    pl.n_gs = (pl.group + pl.gh - 1) / pl.gh;
    pl.n_tb = static_cast<int>((a.n_tokens + pl.qb - 1) / pl.qb);
    pl.n_units = static_cast<int64_t>(a.n_head_kv) * pl.n_gs * pl.n_tb;
  };
  count();
  while (pl.n_units < static_cast<int64_t>(pool.size())) {
    if (pl.qb > 1) pl.qb = (pl.qb + 1) / 2;
    else if (pl.gh > 1) pl.gh = (pl.gh + 1) / 2;
    else break;
    count();
  }
  pl.mp_max = round_up(pl.gh * pl.qb, W);
  pool.run(
      [](void* p, int ti, int) {
        Plan& pl = *static_cast<Plan*>(p);
        float* ws = pl.a->scratch + static_cast<size_t>(ti) * kAttentionTileScratchFloats;
        for (;;) {
          const int64_t u = pl.next.fetch_add(1, std::memory_order_relaxed);
          if (u >= pl.n_units) break;
          run_unit(pl, u, ws);
        }
      },
      &pl);
}

// ---- Element-wise ops ---------------------------------------------------------------------

void rms_norm_impl(float* y, const float* x, const float* w, int64_t n, float eps) {
  const float mean = static_cast<float>(sum_d(x, n, 0.0f, true) / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  const vf s = vset1(scale);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    vf v = vmul(vload(x + i), s);
    if (w) v = vmul(v, vload(w + i));
    vstore(y + i, v);
  }
  for (; i < n; ++i) y[i] = x[i] * scale * (w ? w[i] : 1.0f);
}

void layer_norm_impl(float* y, const float* x, const float* w, const float* b, int64_t n, float eps) {
  const float mean = static_cast<float>(sum_d(x, n, 0.0f, false) / static_cast<double>(n));
  const float variance = static_cast<float>(sum_d(x, n, mean, true) / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(variance + eps);
  const vf mv = vset1(mean), s = vset1(scale);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    vf v = vmul(vsub(vload(x + i), mv), s);
    if (w) v = vmul(v, vload(w + i));
    if (b) v = vadd(v, vload(b + i));
    vstore(y + i, v);
  }
  for (; i < n; ++i) {
    float v = (x[i] - mean) * scale;
    if (w) v *= w[i];
    if (b) v += b[i];
    y[i] = v;
  }
}

void rope_impl(float* x, int n_head, int head_dim, int n_rot, const float* cs, RopeMode mode) {
  for (int h = 0; h < n_head; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    int i = 0;  // rotation index into cs, stepping by 2 as in ref
    if (mode == RopeMode::kNorm) {
      for (; i + W <= n_rot; i += W) vstore(v + i, rope_pairs(vload(v + i), vload(cs + i)));
    } else {
      const int half = n_rot / 2;
      // Pairs (v[k], v[k + half]) for k = i / 2; W pairs read 2W floats of cs.
      for (; i / 2 + W <= half; i += 2 * W) {
        const int k = i / 2;
        vf c, s;
        deinterleave(cs + i, c, s);
        const vf x0 = vload(v + k), x1 = vload(v + k + half);
        vstore(v + k, vfms(x0, c, vmul(x1, s)));
        vstore(v + k + half, vfma(x0, s, vmul(x1, c)));
      }
    }
    for (; i < n_rot; i += 2) {
      const float c = cs[i], s = cs[i + 1];
      const int ia = mode == RopeMode::kNorm ? i : i / 2;
      const int ib = mode == RopeMode::kNorm ? i + 1 : i / 2 + n_rot / 2;
      const float x0 = v[ia], x1 = v[ib];
      v[ia] = x0 * c - x1 * s;
      v[ib] = x0 * s + x1 * c;
    }
  }
}

void softmax_impl(float* x, int64_t n) {
  vf mxv = vset1(-INFINITY);
  int64_t i = 0;
  for (; i + W <= n; i += W) mxv = vmax(mxv, vload(x + i));
  float mx = vhmax(mxv);
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  const vf m = vset1(mx);
  for (i = 0; i + W <= n; i += W) vstore(x + i, vexp(vsub(vload(x + i), m)));
  if (i < n) vstore_n(x + i, vexp(vsub(vload_n(x + i, static_cast<int>(n - i)), m)), static_cast<int>(n - i));
  const float inv = static_cast<float>(1.0 / sum_d(x, n, 0.0f, false));
  const vf s = vset1(inv);
  for (i = 0; i + W <= n; i += W) vstore(x + i, vmul(vload(x + i), s));
  for (; i < n; ++i) x[i] *= inv;
}

inline vf silu_mul(vf g, vf u) { return vmul(vdiv(g, vadd(vset1(1.0f), vexp(vsub(vzero(), g)))), u); }

void swiglu_impl(float* g, const float* u, int64_t n) {
  int64_t i = 0;
  for (; i + W <= n; i += W) vstore(g + i, silu_mul(vload(g + i), vload(u + i)));
  if (i < n) {
    const int r = static_cast<int>(n - i);
    vstore_n(g + i, silu_mul(vload_n(g + i, r), vload_n(u + i, r)), r);
  }
}

void add_impl(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + W <= n; i += W) vstore(y + i, vadd(vload(y + i), vload(x + i)));
  for (; i < n; ++i) y[i] += x[i];
}

}  // namespace

void attention_avx2(const AttentionArgs& a, ThreadPool& pool) { attention_tiled(a, pool); }
void rms_norm_avx2(float* y, const float* x, const float* w, int64_t n, float eps) { rms_norm_impl(y, x, w, n, eps); }
void layer_norm_avx2(float* y, const float* x, const float* w, const float* b, int64_t n, float eps) {
  layer_norm_impl(y, x, w, b, n, eps);
}
void rope_avx2(float* x, int n_head, int head_dim, int n_rot, const float* cs, RopeMode mode) {
  rope_impl(x, n_head, head_dim, n_rot, cs, mode);
}
void softmax_avx2(float* x, int64_t n) { softmax_impl(x, n); }
void swiglu_avx2(float* g, const float* u, int64_t n) { swiglu_impl(g, u, n); }
void add_avx2(float* y, const float* x, int64_t n) { add_impl(y, x, n); }

}  // namespace hearth::kernels
