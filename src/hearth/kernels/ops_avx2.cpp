// AVX2 + FMA + F16C kernels. Compiled with those flags for this file only; selected at run
// time when the CPU and OS support them. Slots without an AVX2 version fall back to ref.
// Quantized dot products follow the integer scheme of the formats: |w| * sign-adjusted
// activations with vpmaddubsw, pairs summed with vpmaddwd, one float scale per block.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "hearth/kernels/fp16.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/matmul_driver.h"
#include "hearth/kernels/quant.h"
#include "hearth/kernels/quant_blocks.h"
#include "hearth/kernels/quant_ref.h"
#include "hearth/kernels/simd_ops.h"

namespace hearth::kernels {
namespace {

inline float hsum8(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 sh = _mm_movehdup_ps(lo);
  lo = _mm_add_ps(lo, sh);
  sh = _mm_movehl_ps(sh, lo);
  lo = _mm_add_ss(lo, sh);
  return _mm_cvtss_f32(lo);
}

inline int hsum_i32_8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Sum of products of signed int8 x and y, as 8 int32 lanes.
inline __m256i dot_i8_pairs(__m256i x, __m256i y) {
  const __m256i ax = _mm256_sign_epi8(x, x);
  const __m256i sy = _mm256_sign_epi8(y, x);
  const __m256i p16 = _mm256_maddubs_epi16(ax, sy);
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

// 32 nibbles of a 16-byte array: low nibbles first, then high nibbles.
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

float dot_q4_0(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ4_0*>(wv);
  const auto* x = static_cast<const BlockQ8_0*>(xv);
  const int64_t nb = n / kQK4_0;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const __m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d));
    const __m256i q = _mm256_sub_epi8(unpack_nibbles(w[i].qs), _mm256_set1_epi8(8));
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_pairs(q, y)), acc);
  }
  return hsum8(acc);
}

// Sum of products of unsigned x (each < 128) and signed y, as 8 int32 lanes.
inline __m256i dot_u8_i8(__m256i x, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1));
}

// 32 bytes, 0xFF where bit j of the 32-bit mask is set (element j of a Q5 block).
inline __m256i bytes_from_bits(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), shuf);
  b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

// 5-bit quants of a Q5 block, 0..31, element order.
inline __m256i unpack_q5(const uint8_t* qs, const uint8_t* qh) {
  return _mm256_or_si256(unpack_nibbles(qs), _mm256_and_si256(bytes_from_bits(qh), _mm256_set1_epi8(0x10)));
}

// Q4_1 and Q5_1 against Q8_1: d_w d_x sum(q y) + m_w s_x, with s_x the activation block's
// stored d * sum(y), as the reference dot uses it.
float dot_q4_1(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ4_1*>(wv);
  const auto* x = static_cast<const BlockQ8_1*>(xv);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t i = 0; i < n / kQK4_1; ++i) {
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)),
                          _mm256_cvtepi32_ps(dot_u8_i8(unpack_nibbles(w[i].qs), y)), acc);
    mins += h2f(w[i].m) * h2f(x[i].s);
  }
  return hsum8(acc) + mins;
}

float dot_q5_1(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ5_1*>(wv);
  const auto* x = static_cast<const BlockQ8_1*>(xv);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t i = 0; i < n / kQK5_1; ++i) {
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)),
                          _mm256_cvtepi32_ps(dot_u8_i8(unpack_q5(w[i].qs, w[i].qh), y)), acc);
    mins += h2f(w[i].m) * h2f(x[i].s);
  }
  return hsum8(acc) + mins;
}

float dot_q5_0(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ5_0*>(wv);
  const auto* x = static_cast<const BlockQ8_0*>(xv);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK5_0; ++i) {
    const __m256i q = _mm256_sub_epi8(unpack_q5(w[i].qs, w[i].qh), _mm256_set1_epi8(16));
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(dot_i8_pairs(q, y)), acc);
  }
  return hsum8(acc);
}

// bf16 x bf16: widen by shifting into the top half of an f32 (exact), then FMA.
inline __m256 load_bf16x8(const uint16_t* p) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}

float dot_bf16(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const uint16_t*>(wv);
  const auto* x = static_cast<const uint16_t*>(xv);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(load_bf16x8(w + i), load_bf16x8(x + i), a0);
    a1 = _mm256_fmadd_ps(load_bf16x8(w + i + 8), load_bf16x8(x + i + 8), a1);
  }
  float s = hsum8(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) {
    const uint32_t wb = static_cast<uint32_t>(w[i]) << 16, xb = static_cast<uint32_t>(x[i]) << 16;
    float wf, xf;
    std::memcpy(&wf, &wb, 4);
    std::memcpy(&xf, &xb, 4);
    s += wf * xf;
  }
  return s;
}

float dot_q8_0(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ8_0*>(wv);
  const auto* x = static_cast<const BlockQ8_0*>(xv);
  const int64_t nb = n / kQK8_0;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const __m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d));
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qs));
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_pairs(q, y)), acc);
  }
  return hsum8(acc);
}

float dot_q4_k(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ4_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const int64_t nb = n / kQK_K;
  float sum = 0.0f;
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) ref::unpack_scale_min_k4(j, w[i].scales, &sc[j], &mn[j]);
    int32_t mins = 0;
    for (int j = 0; j < 8; ++j) mins += mn[j] * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
    __m256i isum = _mm256_setzero_si256();
    const uint8_t* q = w[i].qs;
    const int8_t* y = x[i].qs;
    for (int j = 0; j < 4; ++j) {
      const __m256i q4 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * j));
      const __m256i lo = _mm256_and_si256(q4, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
      const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 64 * j));
      const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 64 * j + 32));
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), _mm256_set1_epi16(sc[2 * j]));
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), _mm256_set1_epi16(sc[2 * j + 1]));
      isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
    }
    const float d = h2f(w[i].d) * x[i].d;
    const float dmin = h2f(w[i].dmin) * x[i].d;
    sum += d * static_cast<float>(hsum_i32_8(isum)) - dmin * static_cast<float>(mins);
  }
  return sum;
}

float dot_q6_k(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ6_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const int64_t nb = n / kQK_K;
  float sum = 0.0f;
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m3 = _mm256_set1_epi8(0x03);
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* ql = w[i].ql;
    const uint8_t* qh = w[i].qh;
    const int8_t* sc = w[i].scales;
    const int8_t* y = x[i].qs;
    // The -32 offset of every quant: subtract 32 * scale * sum(y) per 16-element group.
    int32_t offset = 0;
    for (int g = 0; g < 16; ++g) offset += sc[g] * x[i].bsums[g];
    __m256i isum = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4)),
          _mm256_or_si256(_mm256_and_si256(l1, m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4)),
      };
      for (int k = 0; k < 4; ++k) {
        const __m256i yy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 32 * k));
        const __m256i p16 = _mm256_maddubs_epi16(q[k], yy);  // 16 lanes: 8 per 16-element group
        const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, s));
      }
      ql += 64;
      qh += 32;
      sc += 8;
      y += 128;
    }
    sum += h2f(w[i].d) * x[i].d * static_cast<float>(hsum_i32_8(isum) - 32 * offset);
  }
  return sum;
}

float dot_f16(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const uint16_t*>(wv);
  const auto* x = static_cast<const uint16_t*>(xv);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i))),
                         _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))), a0);
    a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8))),
                         _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + 8))), a1);
  }
  float s = hsum8(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) s += h2f(w[i]) * h2f(x[i]);
  return s;
}

float dot_f32(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const float*>(wv);
  const auto* x = static_cast<const float*>(xv);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
  }
  float s = hsum8(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) s += w[i] * x[i];
  return s;
}

// Types without an AVX2 kernel: the reference dot.
template <TensorType T>
float dot_generic(int64_t n, const void* w, const void* x) {
  return vec_dot(T, n, w, x);
}

DotFn dot_for(TensorType w) {
  switch (w) {
    case TensorType::F32: return &dot_f32;
    case TensorType::F16: return &dot_f16;
    case TensorType::Q4_0: return &dot_q4_0;
    case TensorType::Q8_0: return &dot_q8_0;
    case TensorType::Q4_K: return &dot_q4_k;
    case TensorType::Q6_K: return &dot_q6_k;
    case TensorType::BF16: return &dot_bf16;
    case TensorType::Q4_1: return &dot_q4_1;
    case TensorType::Q5_0: return &dot_q5_0;
    case TensorType::Q5_1: return &dot_q5_1;
    case TensorType::Q2_K: return &dot_generic<TensorType::Q2_K>;
    case TensorType::Q3_K: return &dot_generic<TensorType::Q3_K>;
    case TensorType::Q5_K: return &dot_generic<TensorType::Q5_K>;
    default: return nullptr;
  }
}

void matmul_avx2(const MatmulArgs& a, ThreadPool& pool) {
  const TensorType act_type = vec_dot_type(a.wtype);
  const size_t act_row = *row_bytes(act_type, static_cast<uint64_t>(a.cols));
  matmul_drive(a, pool, act_type, act_row, convert_for_x86(act_type), dot_for(a.wtype));
}

}  // namespace

// Filled by select: null slots are completed with ref kernels in dispatch.cpp.
KernelTable make_avx2_kernels() {
  KernelTable t{};
  t.name = "avx2";
  t.attention = &attention_avx2;
  t.rms_norm = &rms_norm_avx2;
  t.layer_norm = &layer_norm_avx2;
  t.rope = &rope_avx2;
  t.softmax = &softmax_avx2;
  t.swiglu = &swiglu_avx2;
  t.add = &add_avx2;
  t.matmul = &matmul_avx2;
  return t;
}

// Exposed for the kernel tests: the AVX2 dot product for a weight type (nullptr if none).
float (*avx2_dot_for(TensorType w))(int64_t, const void*, const void*) { return dot_for(w); }

}  // namespace hearth::kernels
