// AVX-512 (F/BW/VL/DQ + VNNI) kernels. Compiled with those flags (set on the x86/avx512/
// folder in kernels/CMakeLists.txt) and selected at run time. Quantized dots use vpdpbusd
// (unsigned x signed bytes into int32): signed weights are offset to unsigned and the offset
// is removed with the activation sums.
// Types without an AVX-512 kernel use the AVX2 ones (AVX-512 CPUs all have AVX2).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/matmul_driver.h"
#include "hearth/kernels/quant.h"
#include "hearth/kernels/quant_blocks.h"
#include "hearth/kernels/quant_ref.h"
#include "hearth/kernels/type_kernels.h"
#include "hearth/kernels/x86/packed.h"
#include "hearth/kernels/x86/packed_matmul.h"
#include "hearth/kernels/x86/vector_ops.h"

namespace hearth::kernels {

namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Two Q4_0 blocks' 64 nibbles as unsigned bytes: [lo0 hi0 | lo1 hi1].
inline __m512i unpack_q4_pair(const BlockQ4_0& a, const BlockQ4_0& b) {
  const __m128i ba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.qs));
  const __m128i bb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m256i ya = _mm256_set_m128i(_mm_srli_epi16(ba, 4), ba);
  const __m256i yb = _mm256_set_m128i(_mm_srli_epi16(bb, 4), bb);
  return _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(ya), yb, 1), _mm512_set1_epi8(0x0f));
}

inline __m512i load_q8_pair(const BlockQ8_0& a, const BlockQ8_0& b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)), 1);
}

inline __m512 scale_pair(float da, float db) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(da)), _mm256_set1_ps(db), 1);
}

// sum_i (q_i - 8) * y_i for a pair of blocks, per 32-bit lane (lanes 0-7 block a, 8-15 block b).
inline __m512i q4_pair_dot(__m512i q, __m512i y) {
  const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, y);
  const __m512i sy = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), y);
  return _mm512_sub_epi32(dot, sy);
}

// sum_i x_i * y_i for signed x: (x + 128) is unsigned; subtract 128 * sum(y).
inline __m512i q8_pair_dot(__m512i x, __m512i y) {
  const __m512i xu = _mm512_xor_si512(x, _mm512_set1_epi8(static_cast<char>(0x80)));
  const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), xu, y);
  const __m512i sy = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)), y);
  return _mm512_sub_epi32(dot, sy);
}

float dot_q4_0(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ4_0*>(wv);
  const auto* x = static_cast<const BlockQ8_0*>(xv);
  const int64_t nb = n / kQK4_0;
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m512i d = q4_pair_dot(unpack_q4_pair(w[i], w[i + 1]), load_q8_pair(x[i], x[i + 1]));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d),
                          scale_pair(h2f(w[i].d) * h2f(x[i].d), h2f(w[i + 1].d) * h2f(x[i + 1].d)), acc);
  }
  float s = _mm512_reduce_add_ps(acc);
  if (i < nb) s += ref::vec_dot_q4_0_q8_0(kQK4_0, w + i, x + i);
  return s;
}

void dot4_q4_0(int64_t n, const void* wv, const void* const xv[4], float out[4]) {
  const auto* w = static_cast<const BlockQ4_0*>(wv);
  const BlockQ8_0* x[4];
  for (int j = 0; j < 4; ++j) x[j] = static_cast<const BlockQ8_0*>(xv[j]);
  const int64_t nb = n / kQK4_0;
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m512i q = unpack_q4_pair(w[i], w[i + 1]);
    const float da = h2f(w[i].d), db = h2f(w[i + 1].d);
    for (int j = 0; j < 4; ++j) {
      const __m512i d = q4_pair_dot(q, load_q8_pair(x[j][i], x[j][i + 1]));
      acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), scale_pair(da * h2f(x[j][i].d), db * h2f(x[j][i + 1].d)), acc[j]);
    }
  }
  for (int j = 0; j < 4; ++j) {
    out[j] = _mm512_reduce_add_ps(acc[j]);
    if (i < nb) out[j] += ref::vec_dot_q4_0_q8_0(kQK4_0, w + i, x[j] + i);
  }
}

float dot_q8_0(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ8_0*>(wv);
  const auto* x = static_cast<const BlockQ8_0*>(xv);
  const int64_t nb = n / kQK8_0;
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m512i d = q8_pair_dot(load_q8_pair(w[i], w[i + 1]), load_q8_pair(x[i], x[i + 1]));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d),
                          scale_pair(h2f(w[i].d) * h2f(x[i].d), h2f(w[i + 1].d) * h2f(x[i + 1].d)), acc);
  }
  float s = _mm512_reduce_add_ps(acc);
  if (i < nb) s += ref::vec_dot_q8_0_q8_0(kQK8_0, w + i, x + i);
  return s;
}

void dot4_q8_0(int64_t n, const void* wv, const void* const xv[4], float out[4]) {
  const auto* w = static_cast<const BlockQ8_0*>(wv);
  const BlockQ8_0* x[4];
  for (int j = 0; j < 4; ++j) x[j] = static_cast<const BlockQ8_0*>(xv[j]);
  const int64_t nb = n / kQK8_0;
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m512i xu = _mm512_xor_si512(load_q8_pair(w[i], w[i + 1]), _mm512_set1_epi8(static_cast<char>(0x80)));
    const float da = h2f(w[i].d), db = h2f(w[i + 1].d);
    for (int j = 0; j < 4; ++j) {
      const __m512i y = load_q8_pair(x[j][i], x[j][i + 1]);
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), xu, y);
      const __m512i sy = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)), y);
      acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(dot, sy)),
                               scale_pair(da * h2f(x[j][i].d), db * h2f(x[j][i + 1].d)), acc[j]);
    }
  }
  for (int j = 0; j < 4; ++j) {
    out[j] = _mm512_reduce_add_ps(acc[j]);
    if (i < nb) out[j] += ref::vec_dot_q8_0_q8_0(kQK8_0, w + i, x[j] + i);
  }
}

// ---- IQ4_NL, IQ4_XS ----
// Levels come from the grid kIq4nlValues by an in-lane byte shuffle. The table holds them plus
// 128 (unsigned, for vpdpbusd); the offset is removed with 128 * sum(y), as in q8_pair_dot.
constexpr uint8_t iq4_offset_level(int k) { return static_cast<uint8_t>(kIq4nlValues[k] + 128); }
alignas(16) constexpr uint8_t kIq4Unsigned[16] = {
    iq4_offset_level(0),  iq4_offset_level(1),  iq4_offset_level(2),  iq4_offset_level(3),
    iq4_offset_level(4),  iq4_offset_level(5),  iq4_offset_level(6),  iq4_offset_level(7),
    iq4_offset_level(8),  iq4_offset_level(9),  iq4_offset_level(10), iq4_offset_level(11),
    iq4_offset_level(12), iq4_offset_level(13), iq4_offset_level(14), iq4_offset_level(15)};

// Two 16-byte runs of nibbles (32 elements each) as offset levels: [lo_a hi_a | lo_b hi_b].
inline __m512i iq4_levels_pair(const uint8_t* a, const uint8_t* b) {
  const __m128i ba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a));
  const __m128i bb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
  const __m256i ya = _mm256_set_m128i(_mm_srli_epi16(ba, 4), ba);
  const __m256i yb = _mm256_set_m128i(_mm_srli_epi16(bb, 4), bb);
  const __m512i idx = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(ya), yb, 1), _mm512_set1_epi8(0x0f));
  const __m512i table = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(kIq4Unsigned)));
  return _mm512_shuffle_epi8(table, idx);
}

// sum level * y per 32-bit lane for offset levels lu.
inline __m512i iq4_pair_dot(__m512i lu, __m512i y) {
  const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lu, y);
  const __m512i sy = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)), y);
  return _mm512_sub_epi32(dot, sy);
}

// One IQ4_NL row against R activation rows (R = 1: vec_dot, 4: vec_dot4), two blocks a step.
template <int R>
void iq4_nl_rows(int64_t n, const BlockIQ4_NL* w, const BlockQ8_0* const* x, float* out) {
  const int64_t nb = n / kQK4_NL;
  __m512 acc[R];
  for (int j = 0; j < R; ++j) acc[j] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m512i lu = iq4_levels_pair(w[i].qs, w[i + 1].qs);
    const float da = h2f(w[i].d), db = h2f(w[i + 1].d);
    for (int j = 0; j < R; ++j) {
      const __m512i d = iq4_pair_dot(lu, load_q8_pair(x[j][i], x[j][i + 1]));
      acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), scale_pair(da * h2f(x[j][i].d), db * h2f(x[j][i + 1].d)), acc[j]);
    }
  }
  for (int j = 0; j < R; ++j) {
    out[j] = _mm512_reduce_add_ps(acc[j]);
    if (i < nb) out[j] += ref::vec_dot_iq4_nl_q8_0(kQK4_NL, w + i, x[j] + i);
  }
}

float dot_iq4_nl(int64_t n, const void* wv, const void* xv) {
  const auto* x = static_cast<const BlockQ8_0*>(xv);
  float out;
  iq4_nl_rows<1>(n, static_cast<const BlockIQ4_NL*>(wv), &x, &out);
  return out;
}

void dot4_iq4_nl(int64_t n, const void* wv, const void* const xv[4], float out[4]) {
  const BlockQ8_0* x[4];
  for (int j = 0; j < 4; ++j) x[j] = static_cast<const BlockQ8_0*>(xv[j]);
  iq4_nl_rows<4>(n, static_cast<const BlockIQ4_NL*>(wv), x, out);
}

// One IQ4_XS row against R activation rows: per block, four pairs of sub-blocks, each pair's
// lanes scaled by d_w * d_x * (s - 32) of its sub-blocks.
template <int R>
void iq4_xs_rows(int64_t n, const BlockIQ4_XS* w, const BlockQ8_K* const* x, float* out) {
  __m512 acc[R];
  for (int j = 0; j < R; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    float ls[kQK_K / 32];
    for (int s = 0; s < kQK_K / 32; ++s) {
      const int v = ((w[i].scales_l[s / 2] >> (4 * (s % 2))) & 0xf) | (((w[i].scales_h >> (2 * s)) & 3) << 4);
      ls[s] = static_cast<float>(v - 32);
    }
    const float dw = h2f(w[i].d);
    for (int p = 0; p < kQK_K / 64; ++p) {
      const __m512i lu = iq4_levels_pair(w[i].qs + 32 * p, w[i].qs + 32 * p + 16);
      for (int j = 0; j < R; ++j) {
        const __m512i y = _mm512_loadu_si512(x[j][i].qs + 64 * p);
        const float d = dw * x[j][i].d;
        acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iq4_pair_dot(lu, y)), scale_pair(d * ls[2 * p], d * ls[2 * p + 1]),
                                 acc[j]);
      }
    }
  }
  for (int j = 0; j < R; ++j) out[j] = _mm512_reduce_add_ps(acc[j]);
}

float dot_iq4_xs(int64_t n, const void* wv, const void* xv) {
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  float out;
  iq4_xs_rows<1>(n, static_cast<const BlockIQ4_XS*>(wv), &x, &out);
  return out;
}

void dot4_iq4_xs(int64_t n, const void* wv, const void* const xv[4], float out[4]) {
  const BlockQ8_K* x[4];
  for (int j = 0; j < 4; ++j) x[j] = static_cast<const BlockQ8_K*>(xv[j]);
  iq4_xs_rows<4>(n, static_cast<const BlockIQ4_XS*>(wv), x, out);
}

float dot_f16(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const uint16_t*>(wv);
  const auto* x = static_cast<const uint16_t*>(xv);
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i))),
                         _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))), a0);
    a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16))),
                         _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 16))), a1);
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
  for (; i < n; ++i) s += h2f(w[i]) * h2f(x[i]);
  return s;
}

void dot4_f16(int64_t n, const void* wv, const void* const xv[4], float out[4]) {
  const auto* w = static_cast<const uint16_t*>(wv);
  const uint16_t* x[4];
  for (int j = 0; j < 4; ++j) x[j] = static_cast<const uint16_t*>(xv[j]);
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 wf = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
    for (int j = 0; j < 4; ++j) {
      acc[j] =
          _mm512_fmadd_ps(wf, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[j] + i))), acc[j]);
    }
  }
  for (int j = 0; j < 4; ++j) {
    out[j] = _mm512_reduce_add_ps(acc[j]);
    for (int64_t k = i; k < n; ++k) out[j] += h2f(w[k]) * h2f(x[j][k]);
  }
}

float dot_f32(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const float*>(wv);
  const auto* x = static_cast<const float*>(xv);
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
  for (; i < n; ++i) s += w[i] * x[i];
  return s;
}

// avx2's rows (AVX-512 CPUs all run AVX2), with this file's kernels where it has them.
TypeKernels make_type_kernels() {
  TypeKernels k = avx2_type_kernels();
  set_row(k.vec_dot, TensorType::F32, &dot_f32);
  set_row(k.vec_dot, TensorType::F16, &dot_f16);
  set_row(k.vec_dot, TensorType::Q4_0, &dot_q4_0);
  set_row(k.vec_dot, TensorType::Q8_0, &dot_q8_0);
  set_row(k.vec_dot4, TensorType::F16, &dot4_f16);
  set_row(k.vec_dot4, TensorType::Q4_0, &dot4_q4_0);
  set_row(k.vec_dot4, TensorType::Q8_0, &dot4_q8_0);
  set_row(k.vec_dot, TensorType::IQ4_NL, &dot_iq4_nl);
  set_row(k.vec_dot, TensorType::IQ4_XS, &dot_iq4_xs);
  set_row(k.vec_dot4, TensorType::IQ4_NL, &dot4_iq4_nl);
  set_row(k.vec_dot4, TensorType::IQ4_XS, &dot4_iq4_xs);
  return k;
}

const TypeKernels& avx512_type_kernels() {
  static const TypeKernels k = make_type_kernels();
  return k;
}

// The packed path: 16-row groups by the packed micro-kernels, the remaining rows (fewer than
// 16) by the ordinary dots.
void matmul_packed(const MatmulArgs& a, ThreadPool& pool, const TypeKernels& k, TensorType act_type, size_t act_row) {
  PackedActivations x;
  if (!prepare_packed_int(a, pool, k, act_type, act_row, x)) {
    // F16/BF16: f16 rounding with the AVX-512 conversion; BF16 by the reference.
    prepare_packed_float(a, pool, act_row, kF16Tile, x, [&](const float* src, uint16_t* h, float* dst, int64_t st) {
      if (act_type == TensorType::BF16) {
        f16_row_ref(act_type, src, h, dst, st, a.cols);
        return;
      }
      int64_t i = 0;
      alignas(64) float wide[16];
      for (; i + 16 <= a.cols; i += 16) {
        const __m256i hv = _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + i), hv);
        _mm512_store_ps(wide, _mm512_cvtph_ps(hv));
        for (int u = 0; u < 16; ++u) dst[(i + u) * st] = wide[u];
      }
      for (; i < a.cols; ++i) {
        h[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        dst[i * st] = h2f(h[i]);
      }
    });
  }
  run_packed_matmul(a, pool, act_row, kPackRows, type_row(k.vec_dot, a.wtype), [&](int64_t g0, int64_t g1) {
    avx512_packed_groups(a.wtype, a.packed, a.cols, x, g0, g1, a.y, a.y_stride);
  });
}

void matmul_avx512(const MatmulArgs& a, ThreadPool& pool) {
  const TypeKernels& k = avx512_type_kernels();
  const TensorType act_type = vec_dot_type(a.wtype);
  const size_t act_row = *row_bytes(act_type, static_cast<uint64_t>(a.cols));
  if (a.packed != nullptr && packed_bytes_x86(a.wtype, a.rows, a.cols) != 0) {
    matmul_packed(a, pool, k, act_type, act_row);
    return;
  }
  matmul_drive(a, pool, act_type, act_row, type_row(k.from_float, act_type), type_row(k.vec_dot, a.wtype),
               type_row(k.vec_dot4, a.wtype));
}

size_t scratch_bytes_avx512(TensorType wtype, int64_t cols, int64_t n_tokens) {
  return packed_scratch_bytes(wtype, cols, n_tokens, kF16Tile);
}

uint64_t read_sum_avx512(const std::byte* p, size_t bytes) {
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  size_t o = 0;
  for (; o + 256 <= bytes; o += 256) {
    s0 = _mm512_add_epi64(s0, _mm512_load_si512(p + o));
    s1 = _mm512_add_epi64(s1, _mm512_load_si512(p + o + 64));
    s2 = _mm512_add_epi64(s2, _mm512_load_si512(p + o + 128));
    s3 = _mm512_add_epi64(s3, _mm512_load_si512(p + o + 192));
  }
  for (; o + 64 <= bytes; o += 64) s0 = _mm512_add_epi64(s0, _mm512_load_si512(p + o));
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)));
  uint64_t sum = 0;
  for (uint64_t v : lanes) sum += v;
  return sum;
}

}  // namespace

KernelTable make_avx512_kernels() {
  KernelTable t{};
  t.name = "avx512";
  fill_vector_ops_avx512(t);
  t.matmul = &matmul_avx512;
  t.packed_bytes = &packed_bytes_x86;
  t.pack = &pack_x86;
  t.read_sum = &read_sum_avx512;
  t.scratch_bytes = &scratch_bytes_avx512;
  return t;
}

}  // namespace hearth::kernels
