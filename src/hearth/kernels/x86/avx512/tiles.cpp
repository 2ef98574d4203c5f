// Repacked weights for the avx512 table: 16 rows interleaved so that one 512-bit register holds
// the same 4 consecutive weights of 16 rows. vpdpbusd against a broadcast of 4 activation bytes
// then yields 16 rows' partial dots in 16 lanes: no horizontal sums, the per-row scales of a
// block load as one vector, and an output vector is 16 consecutive rows of one token.
//
// The layouts and the packing code are in x86/pack.cpp.
#include <immintrin.h>

#include <cstring>

#include "hearth/kernels/quant_blocks.h"
#include "hearth/kernels/x86/packed.h"

namespace hearth::kernels {
namespace {

constexpr int kG = kPackRows;

// 16 bf16 values widened to f32 (a bf16 is the top half of an f32).
inline __m512 load_bf16x16(const std::byte* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}
template <bool kBf16>
inline __m512 load_half16(const std::byte* p) {
  if constexpr (kBf16) {
    return load_bf16x16(p);
  } else {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
}
inline __m512i bcast4(const int8_t* p) { return _mm512_set1_epi32(load_i32(p)); }
inline __m512i load512(const std::byte* p) { return _mm512_loadu_si512(p); }
inline __m512 load_f16x16(const std::byte* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// ---- Q4_0, IQ4_NL, Q8_0 ----------------------------------------------------------------------

// The 32 quants of a block as 8 unsigned vectors (chunk c: elements 4c..4c+3 of each row), each
// the weight level plus kQ0Offset<T>. Q4_0's and IQ4_NL's bytes hold elements j (low nibble)
// and j + 16 (high): Q4_0's nibble is its q + 8, IQ4_NL's indexes the grid (looked up plus
// 128); Q8_0's bytes are the quants + 128.
template <TensorType T>
constexpr int kQ0Offset = T == TensorType::Q4_0 ? 8 : 128;

template <TensorType T>
inline void load_block32(const std::byte* q, __m512i v[8]) {
  if constexpr (T == TensorType::Q8_0) {
    for (int c = 0; c < 8; ++c) v[c] = load512(q + 64 * c);
  } else {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int c = 0; c < 4; ++c) {
      const __m512i raw = load512(q + 64 * c);
      v[c] = _mm512_and_si512(raw, m4);
      v[c + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
    }
    if constexpr (T == TensorType::IQ4_NL) {
      __m128i grid = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues));
      grid = _mm_xor_si128(grid, _mm_set1_epi8(static_cast<char>(0x80)));  // level + 128
      const __m512i table = _mm512_broadcast_i32x4(grid);
      for (int c = 0; c < 8; ++c) v[c] = _mm512_shuffle_epi8(table, v[c]);
    }
  }
}

// 16 rows' sums of v times a block of 32 activation quants, starting from `init`.
inline __m512i dot_block32(const __m512i v[8], const int8_t* xq, __m512i init) {
  __m512i s0 = init, s1 = _mm512_setzero_si512();
  for (int c = 0; c < 4; ++c) {
    s0 = _mm512_dpbusd_epi32(s0, v[c], bcast4(xq + 4 * c));
    s1 = _mm512_dpbusd_epi32(s1, v[c + 4], bcast4(xq + 16 + 4 * c));
  }
  return _mm512_add_epi32(s0, s1);
}

// Q4_0, IQ4_NL and Q8_0: the stored values are the levels plus an offset, so each dot starts
// from -offset * sum(x) to remove it.
template <int NT, TensorType T>
void tile_q_0(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  constexpr size_t kBytes = T == TensorType::Q8_0 ? kQ8_0Bytes : kQ4_0Bytes;
  constexpr int kOffset = kQ0Offset<T>;
  __m512 acc[NT];
  for (int j = 0; j < NT; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const std::byte* p = grp + static_cast<size_t>(b) * kBytes;
    if constexpr (NT == 1) prefetch_block(p, kBytes);
    const __m512 dw = load_f16x16(p);
    __m512i v[8];
    load_block32<T>(p + 32, v);
    for (int j = 0; j < NT; ++j) {
      const int64_t t = t0 + j;
      const __m512i s = dot_block32(v, x.q8_0(t, b), _mm512_set1_epi32(-kOffset * x.sum(t, b)));
      acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(x.scale(t, b))), acc[j]);
    }
  }
  for (int j = 0; j < NT; ++j) _mm512_storeu_ps(y + (t0 + j) * y_stride, acc[j]);
}

// ---- Q4_K ------------------------------------------------------------------------------------

// acc += (d * isum - dmin * msum) * x.d for a K-quant block with d[16] and dmin[16] (f16) at p.
template <int NT>
inline void scale_d_dmin(const std::byte* p, const BlockQ8_K* const xb[NT], const __m512i isum[NT],
                         const __m512i msum[NT], __m512 acc[NT]) {
  const __m512 d = load_f16x16(p);
  const __m512 dmin = load_f16x16(p + 32);
  for (int j = 0; j < NT; ++j) {
    const __m512 dx = _mm512_set1_ps(xb[j]->d);
    acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[j]), _mm512_mul_ps(d, dx), acc[j]);
    acc[j] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum[j]), _mm512_mul_ps(dmin, dx), acc[j]);
  }
}

template <int NT>
void tile_q4_k(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  __m512 acc[NT];
  for (int j = 0; j < NT; ++j) acc[j] = _mm512_setzero_ps();
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  for (int64_t i = 0; i < nb; ++i) {
    const std::byte* p = grp + static_cast<size_t>(i) * kQ4_KBytes;
    if constexpr (NT == 1) prefetch_block(p, kQ4_KBytes);
    const std::byte* sc = p + 64;
    const std::byte* mn = p + 64 + 128;
    const std::byte* qs = p + 64 + 256;
    const BlockQ8_K* xb[NT];
    __m512i isum[NT], msum[NT];
    for (int j = 0; j < NT; ++j) {
      xb[j] = x.q8_k(t0 + j, i);
      isum[j] = _mm512_setzero_si512();
      msum[j] = _mm512_setzero_si512();
    }
    for (int jj = 0; jj < 4; ++jj) {  // 64 elements: sub-blocks 2jj (low nibbles), 2jj+1 (high)
      __m512i slo[NT], shi[NT];
      for (int j = 0; j < NT; ++j) slo[j] = shi[j] = _mm512_setzero_si512();
      for (int h = 0; h < 2; ++h) {
        __m512i lo[4], hi[4];
        for (int c = 0; c < 4; ++c) {
          const __m512i raw = load512(qs + (jj * 8 + h * 4 + c) * 64);
          lo[c] = _mm512_and_si512(raw, m4);
          hi[c] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
        }
        for (int j = 0; j < NT; ++j) {
          const int8_t* xq = xb[j]->qs + 64 * jj + 16 * h;
          for (int c = 0; c < 4; ++c) {
            slo[j] = _mm512_dpbusd_epi32(slo[j], lo[c], bcast4(xq + 4 * c));
            shi[j] = _mm512_dpbusd_epi32(shi[j], hi[c], bcast4(xq + 32 + 4 * c));
          }
        }
      }
      const __m512i sc_lo = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 32 * jj)));
      const __m512i sc_hi = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 32 * jj + 16)));
      const __m512i m_lo = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mn + 32 * jj)));
      const __m512i m_hi = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mn + 32 * jj + 16)));
      for (int j = 0; j < NT; ++j) {
        isum[j] = _mm512_add_epi32(
            isum[j], _mm512_add_epi32(_mm512_mullo_epi32(slo[j], sc_lo), _mm512_mullo_epi32(shi[j], sc_hi)));
        const int16_t* bs = xb[j]->bsums + 4 * jj;
        msum[j] =
            _mm512_add_epi32(msum[j], _mm512_add_epi32(_mm512_mullo_epi32(m_lo, _mm512_set1_epi32(bs[0] + bs[1])),
                                                       _mm512_mullo_epi32(m_hi, _mm512_set1_epi32(bs[2] + bs[3]))));
      }
    }
    scale_d_dmin<NT>(p, xb, isum, msum, acc);
  }
  for (int j = 0; j < NT; ++j) _mm512_storeu_ps(y + (t0 + j) * y_stride, acc[j]);
}

// ---- Q6_K ------------------------------------------------------------------------------------

// kHigh: Q6_K's 2-bit plane supplies bits 4..5; Q3_K (kOff 4) has nibbles only.
template <int NT, int kOff = 32, bool kHigh = true>
void tile_q6_k(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  constexpr size_t kBytes = kHigh ? kQ6_KBytes : kQ3_KBytes;
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i m30 = _mm512_set1_epi8(0x30);
  __m512 acc[NT];
  for (int j = 0; j < NT; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const std::byte* p = grp + static_cast<size_t>(i) * kBytes;
    if constexpr (NT == 1) prefetch_block(p, kBytes);
    const std::byte* sc = p + 32;
    const std::byte* lo = p + 32 + 256;
    const std::byte* hi = lo + 2048;
    const BlockQ8_K* xb[NT];
    __m512i isum[NT];
    for (int j = 0; j < NT; ++j) {
      xb[j] = x.q8_k(t0 + j, i);
      isum[j] = _mm512_setzero_si512();
    }
    for (int s = 0; s < 16; s += 2) {  // two sub-blocks of 16 per step: chunks 4s .. 4s+7
      const int u = s / 2;
      __m512i v[8];
      for (int k = 0; k < 4; ++k) {
        const __m512i raw = load512(lo + (4 * u + k) * 64);
        v[k] = _mm512_and_si512(raw, m4);
        v[k + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
      }
      if constexpr (kHigh) {
        for (int m = 0; m < 2; ++m) {
          const __m512i h = load512(hi + (2 * u + m) * 64);
          // Bits 2b..2b+1 of each byte to bits 4..5 (16-bit shifts: the mask drops what
          // crosses from the neighbouring byte); ternary logic 0xF8 is v | (shifted & m30).
          v[4 * m + 0] = _mm512_ternarylogic_epi32(v[4 * m + 0], _mm512_slli_epi16(h, 4), m30, 0xF8);
          v[4 * m + 1] = _mm512_ternarylogic_epi32(v[4 * m + 1], _mm512_slli_epi16(h, 2), m30, 0xF8);
          v[4 * m + 2] = _mm512_ternarylogic_epi32(v[4 * m + 2], h, m30, 0xF8);
          v[4 * m + 3] = _mm512_ternarylogic_epi32(v[4 * m + 3], _mm512_srli_epi16(h, 2), m30, 0xF8);
        }
      }
      const __m512i sc0 = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 16 * s)));
      const __m512i sc1 = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 16 * s + 16)));
      for (int j = 0; j < NT; ++j) {
        const int8_t* xq = xb[j]->qs + 16 * s;
        // The stored values are q + kOff: start from -kOff * sum(x) of each sub-block.
        __m512i a0 = _mm512_set1_epi32(-kOff * xb[j]->bsums[s]);
        __m512i a1 = _mm512_set1_epi32(-kOff * xb[j]->bsums[s + 1]);
        for (int c = 0; c < 4; ++c) {
          a0 = _mm512_dpbusd_epi32(a0, v[c], bcast4(xq + 4 * c));
          a1 = _mm512_dpbusd_epi32(a1, v[c + 4], bcast4(xq + 16 + 4 * c));
        }
        isum[j] = _mm512_add_epi32(isum[j], _mm512_add_epi32(_mm512_mullo_epi32(a0, sc0), _mm512_mullo_epi32(a1, sc1)));
      }
    }
    const __m512 d = load_f16x16(p);
    for (int j = 0; j < NT; ++j) {
      acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[j]), _mm512_mul_ps(d, _mm512_set1_ps(xb[j]->d)), acc[j]);
    }
  }
  for (int j = 0; j < NT; ++j) _mm512_storeu_ps(y + (t0 + j) * y_stride, acc[j]);
}

// ---- F16 -------------------------------------------------------------------------------------
// Float FMAs on f16 weights widened to f32, against activations rounded to f16 (as the dot
// products of ref and ggml do). Up to 8 tokens per tile keep both FMA pipes busy; one token
// splits the sum over four accumulators instead.

template <int NT, bool kBf16 = false>
void tile_f16(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  // t0 is a multiple of kF16Tile: this tile's activations are [k][f32_stride] floats.
  const int64_t st = x.f32_stride;
  const float* xt = x.f32 + (t0 / kF16Tile) * nb * st;
  if constexpr (NT == 1) {
    // Decode: eight independent sums over whole 256-byte steps. No software prefetch: the
    // stream is one contiguous run, which the hardware prefetchers follow better on their own.
    __m512 a[8];
    for (auto& v : a) v = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= nb; k += 8) {
      const std::byte* p = grp + static_cast<size_t>(k) * kF16Bytes;
      for (int u = 0; u < 8; ++u) {
        a[u] = _mm512_fmadd_ps(load_half16<kBf16>(p + 32 * u), _mm512_set1_ps(xt[(k + u) * st]), a[u]);
      }
    }
    for (; k < nb; ++k) {
      a[0] = _mm512_fmadd_ps(load_half16<kBf16>(grp + static_cast<size_t>(k) * kF16Bytes), _mm512_set1_ps(xt[k * st]),
                             a[0]);
    }
    for (int u = 0; u < 4; ++u) a[u] = _mm512_add_ps(a[u], a[u + 4]);
    _mm512_storeu_ps(y + t0 * y_stride, _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])));
  } else {
    __m512 acc[NT];
    for (int j = 0; j < NT; ++j) acc[j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < nb; ++k) {
      const __m512 w = load_half16<kBf16>(grp + static_cast<size_t>(k) * kF16Bytes);
      const float* xk = xt + k * st;
      for (int j = 0; j < NT; ++j) acc[j] = _mm512_fmadd_ps(w, _mm512_set1_ps(xk[j]), acc[j]);
    }
    for (int j = 0; j < NT; ++j) _mm512_storeu_ps(y + (t0 + j) * y_stride, acc[j]);
  }
}

// Bit c of each byte of h becomes bit 4 of v[c] (c < 8). 16-bit shifts by at most 4 keep the
// kept bit within its byte; ternary logic 0xF8 is v | (shifted & bit 4).
inline void or_bit4(__m512i v[8], __m512i h) {
  const __m512i m10 = _mm512_set1_epi8(0x10);
  v[0] = _mm512_ternarylogic_epi32(v[0], _mm512_slli_epi16(h, 4), m10, 0xF8);
  v[1] = _mm512_ternarylogic_epi32(v[1], _mm512_slli_epi16(h, 3), m10, 0xF8);
  v[2] = _mm512_ternarylogic_epi32(v[2], _mm512_slli_epi16(h, 2), m10, 0xF8);
  v[3] = _mm512_ternarylogic_epi32(v[3], _mm512_slli_epi16(h, 1), m10, 0xF8);
  v[4] = _mm512_ternarylogic_epi32(v[4], h, m10, 0xF8);
  v[5] = _mm512_ternarylogic_epi32(v[5], _mm512_srli_epi16(h, 1), m10, 0xF8);
  v[6] = _mm512_ternarylogic_epi32(v[6], _mm512_srli_epi16(h, 2), m10, 0xF8);
  v[7] = _mm512_ternarylogic_epi32(v[7], _mm512_srli_epi16(h, 3), m10, 0xF8);
}

// ---- Q4_1 / Q5_0 / Q5_1 ----------------------------------------------------------------------

template <int NT, bool k5>
void tile_a32(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  constexpr size_t kA32Bytes = k5 ? kQ5xBytes : kQ4_1Bytes;
  __m512 acc[NT];
  for (int j = 0; j < NT; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const std::byte* p = grp + static_cast<size_t>(b) * kA32Bytes;
    if constexpr (NT == 1) prefetch_block(p, kA32Bytes);
    const __m512 d = _mm512_loadu_ps(reinterpret_cast<const float*>(p));
    const __m512 m = _mm512_loadu_ps(reinterpret_cast<const float*>(p + 64));
    __m512i v[8];
    load_block32<TensorType::Q4_0>(p + 128, v);  // the low 4 bits, as Q4_0's nibbles
    if constexpr (k5) or_bit4(v, load512(p + 128 + 256));
    for (int j = 0; j < NT; ++j) {
      const int64_t t = t0 + j;
      const __m512i s = dot_block32(v, x.q8_0(t, b), _mm512_setzero_si512());
      acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(d, _mm512_set1_ps(x.scale(t, b))), acc[j]);
      acc[j] = _mm512_fmadd_ps(m, _mm512_set1_ps(x.dsum(t, b)), acc[j]);
    }
  }
  for (int j = 0; j < NT; ++j) _mm512_storeu_ps(y + (t0 + j) * y_stride, acc[j]);
}

// ---- Q5_K / Q2_K (expanded; NS sub-blocks of 256 / NS) ---------------------------------------

template <int NT, int NS>
void tile_kmin(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  constexpr size_t kBytes = NS == 8 ? kQ5_KBytes : kQ2_KBytes;
  constexpr int kChunks = 64 / NS;  // 4-element chunks per sub-block
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i m3 = _mm512_set1_epi8(0x03);
  __m512 acc[NT];
  for (int j = 0; j < NT; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const std::byte* p = grp + static_cast<size_t>(i) * kBytes;
    if constexpr (NT == 1) prefetch_block(p, kBytes);
    const std::byte* sc = p + 64;
    const std::byte* mn = p + 64 + NS * 16;
    const std::byte* qs = p + 64 + 2 * NS * 16;
    const BlockQ8_K* xb[NT];
    __m512i isum[NT], msum[NT];
    for (int j = 0; j < NT; ++j) {
      xb[j] = x.q8_k(t0 + j, i);
      isum[j] = _mm512_setzero_si512();
      msum[j] = _mm512_setzero_si512();
    }
    for (int s = 0; s < NS; ++s) {
      __m512i v[kChunks];
      if constexpr (NS == 8) {
        for (int k = 0; k < 4; ++k) {
          const __m512i raw = load512(qs + s * 256 + k * 64);
          v[k] = _mm512_and_si512(raw, m4);
          v[k + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
        }
        or_bit4(v, load512(qs + 2048 + s * 64));
      } else {
        const __m512i raw = load512(qs + s * 64);
        v[0] = _mm512_and_si512(raw, m3);
        v[1] = _mm512_and_si512(_mm512_srli_epi16(raw, 2), m3);
        v[2] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m3);
        v[3] = _mm512_and_si512(_mm512_srli_epi16(raw, 6), m3);
      }
      const __m512i scv = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 16 * s)));
      const __m512i mv = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mn + 16 * s)));
      for (int j = 0; j < NT; ++j) {
        const int8_t* xq = xb[j]->qs + s * kChunks * 4;
        __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
        for (int c = 0; c < kChunks; c += 2) {
          a0 = _mm512_dpbusd_epi32(a0, v[c], bcast4(xq + 4 * c));
          a1 = _mm512_dpbusd_epi32(a1, v[c + 1], bcast4(xq + 4 * c + 4));
        }
        isum[j] = _mm512_add_epi32(isum[j], _mm512_mullo_epi32(_mm512_add_epi32(a0, a1), scv));
        int32_t bs = 0;
        for (int k = 0; k < 16 / NS; ++k) bs += xb[j]->bsums[s * (16 / NS) + k];
        msum[j] = _mm512_add_epi32(msum[j], _mm512_mullo_epi32(mv, _mm512_set1_epi32(bs)));
      }
    }
    scale_d_dmin<NT>(p, xb, isum, msum, acc);
  }
  for (int j = 0; j < NT; ++j) _mm512_storeu_ps(y + (t0 + j) * y_stride, acc[j]);
}

// ---- IQ4_XS ----------------------------------------------------------------------------------
// Each sub-block of 32 as an IQ4_NL block (levels + 128, the offset removed with 128 times the
// sub-block's activation sum, two Q8_K bsums), times its signed 6-bit scale per row.

template <int NT>
void tile_iq4_xs(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y,
                 int64_t y_stride) {
  __m512 acc[NT];
  for (int j = 0; j < NT; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const std::byte* p = grp + static_cast<size_t>(i) * kIQ4_XSBytes;
    if constexpr (NT == 1) prefetch_block(p, kIQ4_XSBytes);
    const BlockQ8_K* xb[NT];
    __m512i isum[NT];
    for (int j = 0; j < NT; ++j) {
      xb[j] = x.q8_k(t0 + j, i);
      isum[j] = _mm512_setzero_si512();
    }
    for (int s = 0; s < 8; ++s) {
      __m512i v[8];
      load_block32<TensorType::IQ4_NL>(p + 160 + 256 * s, v);
      const __m512i scv = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32 + 16 * s)));
      for (int j = 0; j < NT; ++j) {
        const int32_t sx = xb[j]->bsums[2 * s] + xb[j]->bsums[2 * s + 1];
        const __m512i d = dot_block32(v, xb[j]->qs + 32 * s, _mm512_set1_epi32(-128 * sx));
        isum[j] = _mm512_add_epi32(isum[j], _mm512_mullo_epi32(d, scv));
      }
    }
    const __m512 dw = load_f16x16(p);
    for (int j = 0; j < NT; ++j) {
      acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[j]), _mm512_mul_ps(dw, _mm512_set1_ps(xb[j]->d)), acc[j]);
    }
  }
  for (int j = 0; j < NT; ++j) _mm512_storeu_ps(y + (t0 + j) * y_stride, acc[j]);
}

using TileFn = void (*)(const std::byte*, int64_t, const PackedActivations&, int64_t, float*, int64_t);

template <TensorType T, int NT>
TileFn tile_for() {
  if constexpr (T == TensorType::Q4_0 || T == TensorType::IQ4_NL || T == TensorType::Q8_0) return &tile_q_0<NT, T>;
  if constexpr (T == TensorType::Q4_K) return &tile_q4_k<NT>;
  if constexpr (T == TensorType::Q6_K) return &tile_q6_k<NT>;
  if constexpr (T == TensorType::F16) return &tile_f16<NT>;
  if constexpr (T == TensorType::BF16) return &tile_f16<NT, true>;
  if constexpr (T == TensorType::Q4_1) return &tile_a32<NT, false>;
  if constexpr (T == TensorType::Q5_0 || T == TensorType::Q5_1) return &tile_a32<NT, true>;
  if constexpr (T == TensorType::Q5_K) return &tile_kmin<NT, 8>;
  if constexpr (T == TensorType::Q2_K) return &tile_kmin<NT, 16>;
  if constexpr (T == TensorType::Q3_K) return &tile_q6_k<NT, 4, false>;
  if constexpr (T == TensorType::IQ4_XS) return &tile_iq4_xs<NT>;
  return nullptr;
}

// Token tile: kF16Tile for F16/BF16 (independent FMA chains), 4 for the integer kernels.
template <TensorType T>
constexpr int kTokenTile = T == TensorType::F16 || T == TensorType::BF16 ? kF16Tile : 4;
template <TensorType T>
constexpr bool kHasTile = true;  // every type x86/pack.cpp packs

#include "hearth/kernels/x86/packed_groups.inc"

}  // namespace

void avx512_packed_groups(TensorType t, const std::byte* packed, int64_t cols, const PackedActivations& x, int64_t g0,
                          int64_t g1, float* y, int64_t y_stride) {
  run_packed_groups(t, packed, cols, x, g0, g1, y, y_stride);
}

}  // namespace hearth::kernels
