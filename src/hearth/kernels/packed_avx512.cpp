// Repacked weights for the avx512 table: 16 rows interleaved so that one 512-bit register holds
// the same 4 consecutive weights of 16 rows. vpdpbusd against a broadcast of 4 activation bytes
// then yields 16 rows' partial dots in 16 lanes: no horizontal sums, the per-row scales of a
// block load as one vector, and an output vector is 16 consecutive rows of one token.
//
// Layouts (per group of 16 rows, per block along the row; "q[c][r][k]" means byte 4c+k of the
// block's quants of row r, stored at c*64 + r*4 + k):
//   Q4_0: d[16] f16 | qs[4][16][4] (the original bytes: low nibble element 4c+k, high 16+4c+k)
//   Q8_0: d[16] f16 | qs[8][16][4] as unsigned (q ^ 0x80)
//   Q4_K: d[16] f16 | dmin[16] f16 | sc[8][16] u8 | m[8][16] u8 | qs[4 j][8 c][16][4] (the
//         original bytes 32j+4c+k: low nibble element 64j+4c+k, high 64j+32+4c+k)
//   Q6_K: d[16] f16 | sc[16][16] i8 | lo[32][16][4] (low 4 bits: byte u*256+k*64+4r+e holds
//         chunk 8u+k in its low nibble, chunk 8u+k+4 in its high one) | hi[16][16][4] (top 2
//         bits: byte u*128+m*64+4r+e holds chunk 8u+4m+b in bits 2b..2b+1): the stored size
//   F16:  per element k: w[16] f16 (one 32-byte row of 16 weights; a "block" is one column)
//   BF16: as F16 with bf16 weights
// Types whose quants are not bytes or nibbles in a usable order are expanded to bytes:
//   Q4_1, Q5_0, Q5_1: d[16] f32 | m[16] f32 | qs[4][16][4] as Q4_0 (the low 4 bits) | Q5_x:
//         bits[16][4] (byte 4r+k, bit c: bit 4 of element 4c+k); weight = d * q + m
//   Q5_K (8 sub-blocks of 32), Q2_K (16 of 16): d[16] f16 | dmin[16] f16 | sc[NS][16] u8 |
//         m[NS][16] u8 | quants; weight = d * sc * q - dmin * m. Q5_K's quants: per sub-block
//         s a nibble plane (byte s*256+k*64+4r+e: chunk k low, chunk k+4 high), then per s a bit
//         plane (byte 2048+s*64+4r+e, bit c: bit 4 of chunk c). Q2_K's: per sub-block one
//         64-byte plane, chunk c in bits 2c..2c+1. Both within 2.3 % / 19 % of stored.
//   Q3_K: as Q6_K's first two parts, with q + 4 (0..7) in the nibbles and its 6-bit signed
//         scales (+33 %: the 3 bits sit in a nibble)
// Sizes equal the original for Q4_0/Q8_0/Q6_K and +2.8 % for Q4_K.
#include <immintrin.h>

#include <cstring>

#include "hearth/kernels/packed.h"
#include "hearth/kernels/quant_blocks.h"
#include "hearth/kernels/quant_ref.h"

namespace hearth::kernels {
namespace {

constexpr int kG = kPackRows;

constexpr size_t kQ4_0Bytes = 32 + 256;
constexpr size_t kQ8_0Bytes = 32 + 512;
constexpr size_t kQ4_KBytes = 64 + 256 + 2048;
constexpr size_t kQ6_KBytes = 32 + 256 + 2048 + 1024;
constexpr size_t kQ3_KBytes = 32 + 256 + 2048;
constexpr size_t kF16Bytes = 32;
constexpr size_t kQ4_1Bytes = 128 + 256;
constexpr size_t kQ5xBytes = 128 + 256 + 64;
constexpr size_t kQ5_KBytes = 64 + 2 * 8 * 16 + 2048 + 512;
constexpr size_t kQ2_KBytes = 64 + 2 * 16 * 16 + 1024;

// Exact binary16 -> f32 (F16C; a local function, so no inline from a shared header is
// compiled with this file's flags).
inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// Decode streams each weight once: ask for the lines kAhead bytes ahead of the block in use.
constexpr size_t kAhead = 2048;
inline void prefetch_block(const std::byte* p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + kAhead + o), _MM_HINT_T0);
}
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

// The 6-bit scale and min of sub-block j of a Q4_K block (ggml's get_scale_min_k4).
inline void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// ---- Q4_0, Q8_0 -------------------------------------------------------------------------------

// The 32 quants of a block as 8 vectors (chunk c: elements 4c..4c+3 of each row). Q4_0's bytes
// hold elements j (low nibble) and j + 16 (high); Q8_0's are the quants + 128.
template <bool kNibbles>
inline void load_block32(const std::byte* q, __m512i v[8]) {
  if constexpr (kNibbles) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int c = 0; c < 4; ++c) {
      const __m512i raw = load512(q + 64 * c);
      v[c] = _mm512_and_si512(raw, m4);
      v[c + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
    }
  } else {
    for (int c = 0; c < 8; ++c) v[c] = load512(q + 64 * c);
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

// Q4_0 (kNibbles) and Q8_0: the stored values are q + 8 / q + 128, so each dot starts from
// -offset * sum(x) to remove the offset.
template <int NT, bool kNibbles>
void tile_q_0(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  constexpr size_t kBytes = kNibbles ? kQ4_0Bytes : kQ8_0Bytes;
  constexpr int kOffset = kNibbles ? 8 : 128;
  __m512 acc[NT];
  for (int j = 0; j < NT; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const std::byte* p = grp + static_cast<size_t>(b) * kBytes;
    if constexpr (NT == 1) prefetch_block(p, kBytes);
    const __m512 dw = load_f16x16(p);
    __m512i v[8];
    load_block32<kNibbles>(p + 32, v);
    for (int j = 0; j < NT; ++j) {
      const int64_t t = t0 + j;
      const __m512i s = dot_block32(v, x.q8_0(t, b), _mm512_set1_epi32(-kOffset * x.sum(t, b)));
      acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(x.scale(t, b))), acc[j]);
    }
  }
  for (int j = 0; j < NT; ++j) _mm512_storeu_ps(y + (t0 + j) * y_stride, acc[j]);
}

// ---- Q4_K ------------------------------------------------------------------------------------

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
        isum[j] = _mm512_add_epi32(isum[j], _mm512_add_epi32(_mm512_mullo_epi32(slo[j], sc_lo),
                                                             _mm512_mullo_epi32(shi[j], sc_hi)));
        const int16_t* bs = xb[j]->bsums + 4 * jj;
        msum[j] = _mm512_add_epi32(msum[j], _mm512_add_epi32(_mm512_mullo_epi32(m_lo, _mm512_set1_epi32(bs[0] + bs[1])),
                                                             _mm512_mullo_epi32(m_hi, _mm512_set1_epi32(bs[2] + bs[3]))));
      }
    }
    const __m512 d = load_f16x16(p);
    const __m512 dmin = load_f16x16(p + 32);
    for (int j = 0; j < NT; ++j) {
      const __m512 dx = _mm512_set1_ps(xb[j]->d);
      acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[j]), _mm512_mul_ps(d, dx), acc[j]);
      acc[j] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum[j]), _mm512_mul_ps(dmin, dx), acc[j]);
    }
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
      a[0] = _mm512_fmadd_ps(load_half16<kBf16>(grp + static_cast<size_t>(k) * kF16Bytes), _mm512_set1_ps(xt[k * st]), a[0]);
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
    load_block32<true>(p + 128, v);
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
    const __m512 d = load_f16x16(p);
    const __m512 dmin = load_f16x16(p + 32);
    for (int j = 0; j < NT; ++j) {
      const __m512 dx = _mm512_set1_ps(xb[j]->d);
      acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[j]), _mm512_mul_ps(d, dx), acc[j]);
      acc[j] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum[j]), _mm512_mul_ps(dmin, dx), acc[j]);
    }
  }
  for (int j = 0; j < NT; ++j) _mm512_storeu_ps(y + (t0 + j) * y_stride, acc[j]);
}

using TileFn = void (*)(const std::byte*, int64_t, const PackedActivations&, int64_t, float*, int64_t);

template <TensorType T, int NT>
TileFn tile_for() {
  if constexpr (T == TensorType::Q4_0) return &tile_q_0<NT, true>;
  if constexpr (T == TensorType::Q8_0) return &tile_q_0<NT, false>;
  if constexpr (T == TensorType::Q4_K) return &tile_q4_k<NT>;
  if constexpr (T == TensorType::Q6_K) return &tile_q6_k<NT>;
  if constexpr (T == TensorType::F16) return &tile_f16<NT>;
  if constexpr (T == TensorType::BF16) return &tile_f16<NT, true>;
  if constexpr (T == TensorType::Q4_1) return &tile_a32<NT, false>;
  if constexpr (T == TensorType::Q5_0 || T == TensorType::Q5_1) return &tile_a32<NT, true>;
  if constexpr (T == TensorType::Q5_K) return &tile_kmin<NT, 8>;
  if constexpr (T == TensorType::Q2_K) return &tile_kmin<NT, 16>;
  if constexpr (T == TensorType::Q3_K) return &tile_q6_k<NT, 4, false>;
  return nullptr;
}

// Token tile: 8 for F16 (float FMAs need 8 independent sums), 4 for the integer kernels.
template <TensorType T>
constexpr int kTile = T == TensorType::F16 || T == TensorType::BF16 ? kF16Tile : 4;

template <TensorType T, int NT>
void tail_tile(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t, int64_t left, float* y,
               int64_t y_stride) {
  if constexpr (NT > 0) {
    if (left == NT) {
      tile_for<T, NT>()(grp, nb, x, t, y, y_stride);
    } else {
      tail_tile<T, NT - 1>(grp, nb, x, t, left, y, y_stride);
    }
  }
}

template <TensorType T>
void run_groups(const std::byte* packed, size_t group_bytes, int64_t nb, const PackedActivations& x, int64_t g0,
                int64_t g1, float* y, int64_t y_stride) {
  constexpr int kT = kTile<T>;
  for (int64_t g = g0; g < g1; ++g) {
    const std::byte* grp = packed + static_cast<size_t>(g) * group_bytes;
    float* yg = y + g * kG;
    int64_t t = 0;
    for (; t + kT <= x.n_tokens; t += kT) tile_for<T, kT>()(grp, nb, x, t, yg, y_stride);
    if (t < x.n_tokens) tail_tile<T, kT - 1>(grp, nb, x, t, x.n_tokens - t, yg, y_stride);
  }
}

size_t block_bytes(TensorType t) {
  switch (t) {
    case TensorType::Q4_0: return kQ4_0Bytes;
    case TensorType::Q8_0: return kQ8_0Bytes;
    case TensorType::Q4_K: return kQ4_KBytes;
    case TensorType::Q6_K: return kQ6_KBytes;
    case TensorType::F16:
    case TensorType::BF16: return kF16Bytes;
    case TensorType::Q4_1: return kQ4_1Bytes;
    case TensorType::Q5_0:
    case TensorType::Q5_1: return kQ5xBytes;
    case TensorType::Q5_K: return kQ5_KBytes;
    case TensorType::Q2_K: return kQ2_KBytes;
    case TensorType::Q3_K: return kQ3_KBytes;
    default: return 0;
  }
}

int64_t block_elems(TensorType t) {
  switch (t) {
    case TensorType::F16:
    case TensorType::BF16: return 1;
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K: return kQK_K;
    default: return 32;
  }
}

// Stores row r's 256 6-bit quants in the Q6_K/Q3_K planes (see the layout at the top): element
// e is chunk C = e / 4, step u = C / 8, place c = C % 8 within the step. The planes are
// zeroed by the caller for row 0 (bits are OR-ed in).
inline void put_planes(uint8_t* lo, uint8_t* hi, int r, const uint8_t* q) {
  for (int e = 0; e < kQK_K; ++e) {
    const int chunk = e / 4, u = chunk / 8, c = chunk % 8, at = 4 * r + e % 4;
    lo[(4 * u + c % 4) * 64 + at] |= static_cast<uint8_t>((q[e] & 0x0f) << (c < 4 ? 0 : 4));
    if (hi != nullptr) hi[(2 * u + c / 4) * 64 + at] |= static_cast<uint8_t>((q[e] >> 4) << (2 * (c % 4)));
  }
}

void pack_group(TensorType t, int64_t nb, const std::byte* const rows[kG], std::byte* out) {
  const size_t bb = block_bytes(t);
  for (int64_t b = 0; b < nb; ++b) {
    std::byte* o = out + static_cast<size_t>(b) * bb;
    auto* u8 = reinterpret_cast<uint8_t*>(o);
    for (int r = 0; r < kG; ++r) {
      switch (t) {
        case TensorType::Q4_0: {
          BlockQ4_0 w;
          std::memcpy(&w, rows[r] + b * sizeof(BlockQ4_0), sizeof w);
          std::memcpy(u8 + 2 * r, &w.d, 2);
          for (int c = 0; c < 4; ++c) std::memcpy(u8 + 32 + 64 * c + 4 * r, w.qs + 4 * c, 4);
          break;
        }
        case TensorType::Q8_0: {
          BlockQ8_0 w;
          std::memcpy(&w, rows[r] + b * sizeof(BlockQ8_0), sizeof w);
          std::memcpy(u8 + 2 * r, &w.d, 2);
          for (int e = 0; e < 32; ++e) u8[32 + 64 * (e / 4) + 4 * r + e % 4] = static_cast<uint8_t>(w.qs[e]) ^ 0x80;
          break;
        }
        case TensorType::Q4_K: {
          BlockQ4_K w;
          std::memcpy(&w, rows[r] + b * sizeof(BlockQ4_K), sizeof w);
          std::memcpy(u8 + 2 * r, &w.d, 2);
          std::memcpy(u8 + 32 + 2 * r, &w.dmin, 2);
          for (int s = 0; s < 8; ++s) scale_min_k4(s, w.scales, u8 + 64 + 16 * s + r, u8 + 64 + 128 + 16 * s + r);
          for (int j = 0; j < 4; ++j) {
            for (int c = 0; c < 8; ++c) std::memcpy(u8 + 320 + (j * 8 + c) * 64 + 4 * r, w.qs + 32 * j + 4 * c, 4);
          }
          break;
        }
        case TensorType::Q6_K: {
          BlockQ6_K w;
          std::memcpy(&w, rows[r] + b * sizeof(BlockQ6_K), sizeof w);
          std::memcpy(u8 + 2 * r, &w.d, 2);
          for (int s = 0; s < 16; ++s) u8[32 + 16 * s + r] = static_cast<uint8_t>(w.scales[s]);
          uint8_t q[kQK_K];
          for (int n = 0; n < 2; ++n) {
            const uint8_t* ql = w.ql + 64 * n;
            const uint8_t* qh = w.qh + 32 * n;
            for (int l = 0; l < 32; ++l) {
              q[128 * n + l] = static_cast<uint8_t>((ql[l] & 0xF) | ((qh[l] & 3) << 4));
              q[128 * n + l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
              q[128 * n + l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
              q[128 * n + l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
            }
          }
          if (r == 0) std::memset(u8 + 288, 0, 2048 + 1024);
          put_planes(u8 + 288, u8 + 288 + 2048, r, q);
          break;
        }
        case TensorType::F16:
        case TensorType::BF16:
          std::memcpy(u8 + 2 * r, rows[r] + 2 * b, 2);
          break;
        case TensorType::Q4_1:
        case TensorType::Q5_0:
        case TensorType::Q5_1: {
          uint8_t q[32];
          float d = 0, m = 0;
          if (t == TensorType::Q4_1) {
            BlockQ4_1 w;
            std::memcpy(&w, rows[r] + b * sizeof(BlockQ4_1), sizeof w);
            d = half_to_float(w.d);
            m = half_to_float(w.m);
            for (int j = 0; j < 16; ++j) {
              q[j] = w.qs[j] & 0x0f;
              q[j + 16] = w.qs[j] >> 4;
            }
          } else {
            uint16_t dh = 0, mh = 0;
            uint8_t qh4[4], qs[16];
            if (t == TensorType::Q5_0) {
              BlockQ5_0 w;
              std::memcpy(&w, rows[r] + b * sizeof(BlockQ5_0), sizeof w);
              dh = w.d;
              std::memcpy(qh4, w.qh, 4);
              std::memcpy(qs, w.qs, 16);
            } else {
              BlockQ5_1 w;
              std::memcpy(&w, rows[r] + b * sizeof(BlockQ5_1), sizeof w);
              dh = w.d;
              mh = w.m;
              std::memcpy(qh4, w.qh, 4);
              std::memcpy(qs, w.qs, 16);
            }
            uint32_t qh;
            std::memcpy(&qh, qh4, 4);
            d = half_to_float(dh);
            m = t == TensorType::Q5_0 ? -16.0f * d : half_to_float(mh);
            for (int j = 0; j < 32; ++j) {
              const int low = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
              q[j] = static_cast<uint8_t>(low | static_cast<int>(((qh >> j) & 1u) << 4));
            }
          }
          std::memcpy(u8 + 4 * r, &d, 4);
          std::memcpy(u8 + 64 + 4 * r, &m, 4);
          // Q4_0's arrangement: chunk c's byte k holds element 4c+k low, 16+4c+k high.
          for (int c = 0; c < 4; ++c) {
            for (int k = 0; k < 4; ++k) {
              u8[128 + 64 * c + 4 * r + k] = static_cast<uint8_t>((q[4 * c + k] & 0x0f) | (q[16 + 4 * c + k] & 0x0f) << 4);
            }
          }
          if (t != TensorType::Q4_1) {
            for (int k = 0; k < 4; ++k) {
              uint8_t bits = 0;
              for (int c = 0; c < 8; ++c) bits = static_cast<uint8_t>(bits | ((q[4 * c + k] >> 4) & 1) << c);
              u8[128 + 256 + 4 * r + k] = bits;
            }
          }
          break;
        }
        case TensorType::Q5_K: {
          BlockQ5_K w;
          std::memcpy(&w, rows[r] + b * sizeof(BlockQ5_K), sizeof w);
          std::memcpy(u8 + 2 * r, &w.d, 2);
          std::memcpy(u8 + 32 + 2 * r, &w.dmin, 2);
          for (int j = 0; j < 8; ++j) scale_min_k4(j, w.scales, u8 + 64 + 16 * j + r, u8 + 64 + 128 + 16 * j + r);
          uint8_t q[kQK_K];
          for (int is = 0; is < 8; is += 2) {
            const uint8_t* ql = w.qs + 16 * is;
            const uint8_t u1 = static_cast<uint8_t>(1u << is), u2 = static_cast<uint8_t>(2u << is);
            for (int l = 0; l < 32; ++l) {
              q[32 * is + l] = static_cast<uint8_t>((ql[l] & 0xf) + ((w.qh[l] & u1) ? 16 : 0));
              q[32 * is + 32 + l] = static_cast<uint8_t>((ql[l] >> 4) + ((w.qh[l] & u2) ? 16 : 0));
            }
          }
          uint8_t* lo = u8 + 64 + 256;
          if (r == 0) std::memset(lo, 0, 2048 + 512);
          for (int e = 0; e < kQK_K; ++e) {
            const int sb = e / 32, c = (e % 32) / 4, at = 4 * r + e % 4;
            lo[sb * 256 + (c % 4) * 64 + at] |= static_cast<uint8_t>((q[e] & 0x0f) << (c < 4 ? 0 : 4));
            lo[2048 + sb * 64 + at] |= static_cast<uint8_t>((q[e] >> 4) << c);
          }
          break;
        }
        case TensorType::Q2_K: {
          BlockQ2_K w;
          std::memcpy(&w, rows[r] + b * sizeof(BlockQ2_K), sizeof w);
          std::memcpy(u8 + 2 * r, &w.d, 2);
          std::memcpy(u8 + 32 + 2 * r, &w.dmin, 2);
          for (int j = 0; j < 16; ++j) {
            u8[64 + 16 * j + r] = w.scales[j] & 0xf;
            u8[64 + 256 + 16 * j + r] = w.scales[j] >> 4;
          }
          uint8_t q[kQK_K];
          int e = 0;
          for (int half = 0; half < 2; ++half) {
            const uint8_t* qs = w.qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2) {
              for (int l = 0; l < 32; ++l) q[e++] = static_cast<uint8_t>((qs[l] >> shift) & 3);
            }
          }
          uint8_t* plane = u8 + 64 + 512;
          if (r == 0) std::memset(plane, 0, 1024);
          for (int e2 = 0; e2 < kQK_K; ++e2) {
            const int sb = e2 / 16, c = (e2 % 16) / 4;
            plane[sb * 64 + 4 * r + e2 % 4] |= static_cast<uint8_t>(q[e2] << (2 * c));
          }
          break;
        }
        case TensorType::Q3_K: {
          BlockQ3_K w;
          std::memcpy(&w, rows[r] + b * sizeof(BlockQ3_K), sizeof w);
          std::memcpy(u8 + 2 * r, &w.d, 2);
          int8_t scales[16];
          ref::unpack_scales_q3_k(w.scales, scales);
          for (int j = 0; j < 16; ++j) u8[32 + 16 * j + r] = static_cast<uint8_t>(scales[j]);
          uint8_t q[kQK_K];
          int e = 0;
          uint8_t m = 1;
          for (int half = 0; half < 2; ++half) {
            const uint8_t* qs = w.qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
              for (int l = 0; l < 32; ++l) {
                // q - (high bit clear ? 4 : 0), stored + 4: 0..7.
                q[e++] = static_cast<uint8_t>(((qs[l] >> shift) & 3) + ((w.hmask[l] & m) ? 4 : 0));
              }
            }
          }
          if (r == 0) std::memset(u8 + 288, 0, 2048);
          put_planes(u8 + 288, nullptr, r, q);
          break;
        }
        default: break;
      }
    }
  }
}

}  // namespace

size_t avx512_packed_bytes(TensorType t, int64_t rows, int64_t cols) {
  const size_t bb = block_bytes(t);
  if (bb == 0 || rows < kG || cols <= 0 || cols % block_elems(t) != 0) return 0;
  return static_cast<size_t>(rows / kG) * static_cast<size_t>(cols / block_elems(t)) * bb;
}

void avx512_pack(TensorType t, int64_t rows, int64_t cols, const std::byte* w, size_t row_bytes, std::byte* out) {
  const int64_t nb = cols / block_elems(t);
  const size_t group_bytes = static_cast<size_t>(nb) * block_bytes(t);
  for (int64_t g = 0; g < rows / kG; ++g) {
    const std::byte* rp[kG];
    for (int r = 0; r < kG; ++r) rp[r] = w + static_cast<size_t>(g * kG + r) * row_bytes;
    pack_group(t, nb, rp, out + static_cast<size_t>(g) * group_bytes);
  }
}

void avx512_packed_groups(TensorType t, const std::byte* packed, int64_t cols, const PackedActivations& x, int64_t g0,
                          int64_t g1, float* y, int64_t y_stride) {
  const int64_t nb = cols / block_elems(t);
  const size_t gb = static_cast<size_t>(nb) * block_bytes(t);
  switch (t) {
    case TensorType::Q4_0: run_groups<TensorType::Q4_0>(packed, gb, nb, x, g0, g1, y, y_stride); break;
    case TensorType::Q8_0: run_groups<TensorType::Q8_0>(packed, gb, nb, x, g0, g1, y, y_stride); break;
    case TensorType::Q4_K: run_groups<TensorType::Q4_K>(packed, gb, nb, x, g0, g1, y, y_stride); break;
    case TensorType::Q6_K: run_groups<TensorType::Q6_K>(packed, gb, nb, x, g0, g1, y, y_stride); break;
    case TensorType::F16: run_groups<TensorType::F16>(packed, gb, nb, x, g0, g1, y, y_stride); break;
    case TensorType::BF16: run_groups<TensorType::BF16>(packed, gb, nb, x, g0, g1, y, y_stride); break;
    case TensorType::Q4_1: run_groups<TensorType::Q4_1>(packed, gb, nb, x, g0, g1, y, y_stride); break;
    case TensorType::Q5_0: run_groups<TensorType::Q5_0>(packed, gb, nb, x, g0, g1, y, y_stride); break;
    case TensorType::Q5_1: run_groups<TensorType::Q5_1>(packed, gb, nb, x, g0, g1, y, y_stride); break;
    case TensorType::Q2_K: run_groups<TensorType::Q2_K>(packed, gb, nb, x, g0, g1, y, y_stride); break;
    case TensorType::Q3_K: run_groups<TensorType::Q3_K>(packed, gb, nb, x, g0, g1, y, y_stride); break;
    case TensorType::Q5_K: run_groups<TensorType::Q5_K>(packed, gb, nb, x, g0, g1, y, y_stride); break;
    default: break;
  }
}

}  // namespace hearth::kernels
