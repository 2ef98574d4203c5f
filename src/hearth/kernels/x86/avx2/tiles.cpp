// Packed-weight tiles for the avx2 table, reading the layouts of x86/pack.cpp (the ones
// the avx512 tiles read). A 64-byte chunk (the same 4 weights of 16 rows) is two ymm: rows 0-7
// and 8-15, done one after the other ("half" h) while the block is in L1. vpdpbusd becomes
// vpmaddubsw (int16 pair sums) then vpmaddwd: exact as long as no int16 sum saturates. Every
// quant here is at most 63 (2 * 63 * 128 < 32767), and int16 sums of several vpmaddubsw
// results are only taken where their bound stays below 32767 (noted at each). vpmaddwd against
// int16 pairs of the per-row scales then does the scale multiply in the same instruction.
// Q8_0's stored bytes (q ^ 0x80, up to 255) would saturate: its tile recovers the signed quant
// and multiplies |q| by x carrying q's sign instead. F16/BF16 use float FMAs.
#include <immintrin.h>

#include <cstring>

#include "hearth/kernels/quant_blocks.h"
#include "hearth/kernels/x86/packed.h"

namespace hearth::kernels {
namespace {

constexpr int kG = kPackRows;
using I = __m256i;

inline I ld(const std::byte* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m128i ld8(const std::byte* p) { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }
// 8 rows' f16 values as f32 (exact).
inline __m256 ld_f16x8(const std::byte* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// 8 rows' unsigned quants of a chunk against 4 activation bytes: per row two int16 pair sums.
inline I mb(I v, const int8_t* xq) { return _mm256_maddubs_epi16(v, _mm256_set1_epi32(load_i32(xq))); }
inline I add16(I a, I b) { return _mm256_add_epi16(a, b); }
inline I add32(I a, I b) { return _mm256_add_epi32(a, b); }
inline I widen(I s16) { return _mm256_madd_epi16(s16, _mm256_set1_epi16(1)); }
// 8 rows' scale bytes as int16 pairs (s, s) per row: vpmaddwd of pair sums with this is
// (sum of the pair) * s.
inline I pair_u8(const std::byte* p) {
  const __m128i b = ld8(p);
  return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(b, b));
}
inline I pair_i8(const std::byte* p) {
  const __m128i b = ld8(p);
  return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(b, b));
}
// Two sub-blocks' bytes of 8 rows as int16 pairs (a, b) per row, for a * x + b * y.
inline I pair2_u8(const std::byte* a, const std::byte* b) {
  return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(ld8(a), ld8(b)));
}
inline I pair2_i8(const std::byte* a, const std::byte* b) {
  return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(ld8(a), ld8(b)));
}
inline I set_pair(int32_t x, int32_t y) {
  return _mm256_set1_epi32(
      static_cast<int32_t>((static_cast<uint32_t>(y) << 16) | (static_cast<uint32_t>(x) & 0xffffu)));
}

// Low and high nibbles of a chunk half.
inline void nibbles(const std::byte* p, I& lo, I& hi) {
  const I m4 = _mm256_set1_epi8(0x0f);
  const I raw = ld(p);
  lo = _mm256_and_si256(raw, m4);
  hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
}

template <int NT>
inline void store(float* y, int64_t y_stride, int64_t t0, __m256 acc[][2]) {
  for (int j = 0; j < NT; ++j) {
    _mm256_storeu_ps(y + (t0 + j) * y_stride, acc[j][0]);
    _mm256_storeu_ps(y + (t0 + j) * y_stride + 8, acc[j][1]);
  }
}

// ---- Q4_0, IQ4_NL, Q8_0 ----------------------------------------------------------------------
// Q4_0: stored q + 8 in nibbles, so each dot starts from -8 * sum(x); int16: 8 products of
// <= 2 * 15 * 128. Q8_0: stored q ^ 0x80; vpmaddubsw(|q|, sign(x, q)) keeps each pair sum
// within 2 * 128 * 127 (the unsigned bytes would reach 2 * 255 * 127 and saturate), widened to
// int32 at every chunk. IQ4_NL: the nibbles index the grid kIq4nlValues (signed, |v| <= 127),
// looked up with vpshufb and multiplied as Q8_0's.

// v * x for signed bytes v of 8 rows against 4 activation bytes, as int32 per row.
inline I signed_dot(I v, const int8_t* xq) {
  const I xv = _mm256_set1_epi32(load_i32(xq));
  return widen(_mm256_maddubs_epi16(_mm256_abs_epi8(v), _mm256_sign_epi8(xv, v)));
}

template <int NT, TensorType T>
void tile_q_0(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  constexpr size_t kBytes = T == TensorType::Q8_0 ? kQ8_0Bytes : kQ4_0Bytes;
  __m256 acc[NT][2];
  for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const std::byte* p = grp + static_cast<size_t>(b) * kBytes;
    if constexpr (NT == 1) prefetch_block(p, kBytes);
    for (int h = 0; h < 2; ++h) {
      I s32[NT];
      if constexpr (T == TensorType::Q8_0) {
        const I flip = _mm256_set1_epi8(static_cast<char>(0x80));
        for (auto& s : s32) s = _mm256_setzero_si256();
#pragma GCC unroll 1  // see tile_q4_k
        for (int c = 0; c < 8; ++c) {
          const I q = _mm256_xor_si256(ld(p + 32 + 64 * c + 32 * h), flip);
          const I aq = _mm256_abs_epi8(q);  // -128 becomes 0x80, read as 128 by vpmaddubsw
          for (int j = 0; j < NT; ++j) {
            const I xv = _mm256_set1_epi32(load_i32(x.q8_0(t0 + j, b) + 4 * c));
            s32[j] = add32(s32[j], widen(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(xv, q))));
          }
        }
      } else if constexpr (T == TensorType::IQ4_NL) {
        const I grid = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
        for (auto& s : s32) s = _mm256_setzero_si256();
#pragma GCC unroll 1  // see tile_q4_k
        for (int c = 0; c < 4; ++c) {
          I lo, hi;
          nibbles(p + 32 + 64 * c + 32 * h, lo, hi);
          lo = _mm256_shuffle_epi8(grid, lo);
          hi = _mm256_shuffle_epi8(grid, hi);
          for (int j = 0; j < NT; ++j) {
            const int8_t* xq = x.q8_0(t0 + j, b);
            s32[j] = add32(s32[j], add32(signed_dot(lo, xq + 4 * c), signed_dot(hi, xq + 16 + 4 * c)));
          }
        }
      } else {
        I s16[NT];
        for (auto& s : s16) s = _mm256_setzero_si256();
#pragma GCC unroll 1  // see tile_q4_k
        for (int c = 0; c < 4; ++c) {
          I lo, hi;
          nibbles(p + 32 + 64 * c + 32 * h, lo, hi);
          for (int j = 0; j < NT; ++j) {
            const int8_t* xq = x.q8_0(t0 + j, b);
            s16[j] = add16(s16[j], add16(mb(lo, xq + 4 * c), mb(hi, xq + 16 + 4 * c)));
          }
        }
        for (int j = 0; j < NT; ++j) s32[j] = add32(widen(s16[j]), _mm256_set1_epi32(-8 * x.sum(t0 + j, b)));
      }
      const __m256 dw = ld_f16x8(p + 16 * h);
      for (int j = 0; j < NT; ++j) {
        const __m256 sc = _mm256_mul_ps(dw, _mm256_set1_ps(x.scale(t0 + j, b)));
        acc[j][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[j]), sc, acc[j][h]);
      }
    }
  }
  store<NT>(y, y_stride, t0, acc);
}

// ---- Q4_1 / Q5_0 / Q5_1 ----------------------------------------------------------------------
// weight = d * q + m. int16: 8 (Q4_1) or 4 (5-bit) products of <= 2 * 31 * 128.

template <int NT, bool k5>
void tile_a32(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  constexpr size_t kBytes = k5 ? kQ5xBytes : kQ4_1Bytes;
  __m256 acc[NT][2];
  for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const std::byte* p = grp + static_cast<size_t>(b) * kBytes;
    if constexpr (NT == 1) prefetch_block(p, kBytes);
    for (int h = 0; h < 2; ++h) {
      // Chunk c's bit 4 is bit c of the bits plane (c + 4: high nibbles): bl and bh carry bits
      // c and c + 4 to bit 4 as c advances (16-bit shifts; the mask keeps each byte's own).
      I bl = _mm256_setzero_si256(), bh = bl;
      if constexpr (k5) {
        bh = ld(p + 128 + 256 + 32 * h);
        bl = _mm256_slli_epi16(bh, 4);
      }
      const I m10 = _mm256_set1_epi8(0x10);
      I lo[NT], hi[NT];
      for (int j = 0; j < NT; ++j) lo[j] = hi[j] = _mm256_setzero_si256();
#pragma GCC unroll 1  // see tile_q4_k
      for (int c = 0; c < 4; ++c) {
        I vl, vh;
        nibbles(p + 128 + 64 * c + 32 * h, vl, vh);
        if constexpr (k5) {
          vl = _mm256_or_si256(vl, _mm256_and_si256(bl, m10));
          vh = _mm256_or_si256(vh, _mm256_and_si256(bh, m10));
          bl = _mm256_srli_epi16(bl, 1);
          bh = _mm256_srli_epi16(bh, 1);
        }
        for (int j = 0; j < NT; ++j) {
          const int8_t* xq = x.q8_0(t0 + j, b);
          lo[j] = add16(lo[j], mb(vl, xq + 4 * c));
          hi[j] = add16(hi[j], mb(vh, xq + 16 + 4 * c));
        }
      }
      const __m256 d = _mm256_loadu_ps(reinterpret_cast<const float*>(p) + 8 * h);
      const __m256 m = _mm256_loadu_ps(reinterpret_cast<const float*>(p + 64) + 8 * h);
      for (int j = 0; j < NT; ++j) {
        const int64_t t = t0 + j;
        const I s = k5 ? add32(widen(lo[j]), widen(hi[j])) : widen(add16(lo[j], hi[j]));
        acc[j][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, _mm256_set1_ps(x.scale(t, b))), acc[j][h]);
        acc[j][h] = _mm256_fmadd_ps(m, _mm256_set1_ps(x.dsum(t, b)), acc[j][h]);
      }
    }
  }
  store<NT>(y, y_stride, t0, acc);
}

// ---- Q4_K ------------------------------------------------------------------------------------
// int16: a sub-block's 8 products of <= 2 * 15 * 128.

template <int NT>
void tile_q4_k(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  __m256 acc[NT][2];
  for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const std::byte* p = grp + static_cast<size_t>(i) * kQ4_KBytes;
    if constexpr (NT == 1) prefetch_block(p, kQ4_KBytes);
    const std::byte* sc = p + 64;
    const std::byte* mn = p + 64 + 128;
    const std::byte* qs = p + 64 + 256;
    const BlockQ8_K* xb[NT];
    for (int j = 0; j < NT; ++j) xb[j] = x.q8_k(t0 + j, i);
    for (int h = 0; h < 2; ++h) {
      I isum[NT], msum[NT];
      for (int j = 0; j < NT; ++j) isum[j] = msum[j] = _mm256_setzero_si256();
      for (int jj = 0; jj < 4; ++jj) {  // 64 elements: sub-blocks 2jj (low nibbles), 2jj+1 (high)
        I slo[NT], shi[NT];
        for (int j = 0; j < NT; ++j) slo[j] = shi[j] = _mm256_setzero_si256();
          // Rolled: unrolled, GCC issues all the vpmaddubsw first and spills them before summing.
#pragma GCC unroll 1
        for (int c = 0; c < 8; ++c) {
          I lo, hi;
          nibbles(qs + (jj * 8 + c) * 64 + 32 * h, lo, hi);
          for (int j = 0; j < NT; ++j) {
            const int8_t* xq = xb[j]->qs + 64 * jj + 4 * c;
            slo[j] = add16(slo[j], mb(lo, xq));
            shi[j] = add16(shi[j], mb(hi, xq + 32));
          }
        }
        const I sc_lo = pair_u8(sc + 32 * jj + 8 * h);
        const I sc_hi = pair_u8(sc + 32 * jj + 16 + 8 * h);
        const I mp = pair2_u8(mn + 32 * jj + 8 * h, mn + 32 * jj + 16 + 8 * h);
        for (int j = 0; j < NT; ++j) {
          isum[j] = add32(isum[j], add32(_mm256_madd_epi16(slo[j], sc_lo), _mm256_madd_epi16(shi[j], sc_hi)));
          const int16_t* bs = xb[j]->bsums + 4 * jj;
          msum[j] = add32(msum[j], _mm256_madd_epi16(mp, set_pair(bs[0] + bs[1], bs[2] + bs[3])));
        }
      }
      const __m256 d = ld_f16x8(p + 16 * h);
      const __m256 dmin = ld_f16x8(p + 32 + 16 * h);
      for (int j = 0; j < NT; ++j) {
        const __m256 dx = _mm256_set1_ps(xb[j]->d);
        acc[j][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(d, dx), acc[j][h]);
        acc[j][h] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[j]), _mm256_mul_ps(dmin, dx), acc[j][h]);
      }
    }
  }
  store<NT>(y, y_stride, t0, acc);
}

// ---- Q6_K / Q3_K -----------------------------------------------------------------------------
// Stored q + kOff: subtract kOff * sum(sc * bsum). int16: Q6_K 2 products of <= 2 * 63 * 128,
// Q3_K (kHigh false, q + 4 <= 7) a sub-block's 4.

template <int NT, int kOff = 32, bool kHigh = true>
void tile_q6_k(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  constexpr size_t kBytes = kHigh ? kQ6_KBytes : kQ3_KBytes;
  constexpr int kOffShift = kOff == 32 ? 5 : 2;
  static_assert(kOff == 32 || kOff == 4);
  const I m4 = _mm256_set1_epi8(0x0f);
  const I m30 = _mm256_set1_epi8(0x30);
  __m256 acc[NT][2];
  for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const std::byte* p = grp + static_cast<size_t>(i) * kBytes;
    if constexpr (NT == 1) prefetch_block(p, kBytes);
    const std::byte* sc = p + 32;
    const std::byte* lo = p + 32 + 256;
    const std::byte* hi = lo + 2048;
    const BlockQ8_K* xb[NT];
    for (int j = 0; j < NT; ++j) xb[j] = x.q8_k(t0 + j, i);
    for (int h = 0; h < 2; ++h) {
      I isum[NT], off[NT];
      for (int j = 0; j < NT; ++j) isum[j] = off[j] = _mm256_setzero_si256();
        // One sub-block of 16 (chunks 4s .. 4s+3) at a time, rolled: few live registers.
#pragma GCC unroll 1
      for (int s = 0; s < 16; ++s) {
        const int u = s / 2, m = s % 2;  // chunks 8u+4m+k: lo plane 4u+k nibble m, hi plane 2u+m
        const __m128i nib = _mm_cvtsi32_si128(4 * m);
        I v[4];
        for (int k = 0; k < 4; ++k)
          v[k] = _mm256_and_si256(_mm256_srl_epi16(ld(lo + (4 * u + k) * 64 + 32 * h), nib), m4);
        if constexpr (kHigh) {
          // Bits 2k..2k+1 of each byte to bits 4..5 (the mask drops what a 16-bit shift
          // brings over from the neighbouring byte).
          const I hb = ld(hi + (2 * u + m) * 64 + 32 * h);
          v[0] = _mm256_or_si256(v[0], _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
          v[1] = _mm256_or_si256(v[1], _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
          v[2] = _mm256_or_si256(v[2], _mm256_and_si256(hb, m30));
          v[3] = _mm256_or_si256(v[3], _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
        }
        const I scv = pair_i8(sc + 16 * s + 8 * h);
        for (int j = 0; j < NT; ++j) {
          const int8_t* xq = xb[j]->qs + 16 * s;
          I a;
          if constexpr (kHigh) {
            a = add32(_mm256_madd_epi16(add16(mb(v[0], xq), mb(v[1], xq + 4)), scv),
                      _mm256_madd_epi16(add16(mb(v[2], xq + 8), mb(v[3], xq + 12)), scv));
          } else {
            a = _mm256_madd_epi16(
                add16(add16(mb(v[0], xq), mb(v[1], xq + 4)), add16(mb(v[2], xq + 8), mb(v[3], xq + 12))), scv);
          }
          isum[j] = add32(isum[j], a);
        }
      }
      for (int s = 0; s < 16; s += 2) {  // apart from the dots: fewer live registers there
        const I scp = pair2_i8(sc + 16 * s + 8 * h, sc + 16 * s + 16 + 8 * h);
        for (int j = 0; j < NT; ++j) {
          off[j] = add32(off[j], _mm256_madd_epi16(scp, set_pair(xb[j]->bsums[s], xb[j]->bsums[s + 1])));
        }
      }
      const __m256 d = ld_f16x8(p + 16 * h);
      for (int j = 0; j < NT; ++j) {
        const I s = _mm256_sub_epi32(isum[j], _mm256_slli_epi32(off[j], kOffShift));
        acc[j][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, _mm256_set1_ps(xb[j]->d)), acc[j][h]);
      }
    }
  }
  store<NT>(y, y_stride, t0, acc);
}

// ---- Q5_K / Q2_K (expanded; NS sub-blocks of 256 / NS) ---------------------------------------
// int16: Q5_K 4 products of <= 2 * 31 * 128, Q2_K a sub-block's 4 of <= 2 * 3 * 128.

template <int NT, int NS>
void tile_kmin(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  constexpr size_t kBytes = NS == 8 ? kQ5_KBytes : kQ2_KBytes;
  constexpr int kPer = 16 / NS;  // Q8_K bsums per sub-block
  const I m3 = _mm256_set1_epi8(0x03);
  __m256 acc[NT][2];
  for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const std::byte* p = grp + static_cast<size_t>(i) * kBytes;
    if constexpr (NT == 1) prefetch_block(p, kBytes);
    const std::byte* sc = p + 64;
    const std::byte* mn = p + 64 + NS * 16;
    const std::byte* qs = p + 64 + 2 * NS * 16;
    const BlockQ8_K* xb[NT];
    for (int j = 0; j < NT; ++j) xb[j] = x.q8_k(t0 + j, i);
    for (int h = 0; h < 2; ++h) {
      I isum[NT], msum[NT];
      for (int j = 0; j < NT; ++j) isum[j] = msum[j] = _mm256_setzero_si256();
      for (int s = 0; s < NS; ++s) {
        const I scv = pair_u8(sc + 16 * s + 8 * h);
        if constexpr (NS == 8) {
          // Chunk k (low nibbles) and k + 4 (high) per step, their bit 4 carried down from the
          // bit plane as in tile_a32; rolled, so the 4 tokens' sums stay in registers.
          I bh = ld(qs + 2048 + s * 64 + 32 * h), bl = _mm256_slli_epi16(bh, 4);
          const I m10 = _mm256_set1_epi8(0x10);
          I lo[NT], hi[NT];
          for (int j = 0; j < NT; ++j) lo[j] = hi[j] = _mm256_setzero_si256();
#pragma GCC unroll 1
          for (int k = 0; k < 4; ++k) {
            I vl, vh;
            nibbles(qs + s * 256 + k * 64 + 32 * h, vl, vh);
            vl = _mm256_or_si256(vl, _mm256_and_si256(bl, m10));
            vh = _mm256_or_si256(vh, _mm256_and_si256(bh, m10));
            bl = _mm256_srli_epi16(bl, 1);
            bh = _mm256_srli_epi16(bh, 1);
            for (int j = 0; j < NT; ++j) {
              const int8_t* xq = xb[j]->qs + s * 32 + 4 * k;
              lo[j] = add16(lo[j], mb(vl, xq));
              hi[j] = add16(hi[j], mb(vh, xq + 16));
            }
          }
          for (int j = 0; j < NT; ++j) {
            isum[j] = add32(isum[j], add32(_mm256_madd_epi16(lo[j], scv), _mm256_madd_epi16(hi[j], scv)));
          }
        } else {
          const I raw = ld(qs + s * 64 + 32 * h);
          const I v0 = _mm256_and_si256(raw, m3);
          const I v1 = _mm256_and_si256(_mm256_srli_epi16(raw, 2), m3);
          const I v2 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m3);
          const I v3 = _mm256_and_si256(_mm256_srli_epi16(raw, 6), m3);
          for (int j = 0; j < NT; ++j) {
            const int8_t* xq = xb[j]->qs + s * 16;
            const I s16 = add16(add16(mb(v0, xq), mb(v1, xq + 4)), add16(mb(v2, xq + 8), mb(v3, xq + 12)));
            isum[j] = add32(isum[j], _mm256_madd_epi16(s16, scv));
          }
        }
        if (s % 2 == 1) {  // the mins of sub-blocks s-1 and s in one vpmaddwd
          const I mp = pair2_u8(mn + 16 * (s - 1) + 8 * h, mn + 16 * s + 8 * h);
          for (int j = 0; j < NT; ++j) {
            int32_t b0 = 0, b1 = 0;
            for (int k = 0; k < kPer; ++k) {
              b0 += xb[j]->bsums[(s - 1) * kPer + k];
              b1 += xb[j]->bsums[s * kPer + k];
            }
            msum[j] = add32(msum[j], _mm256_madd_epi16(mp, set_pair(b0, b1)));
          }
        }
      }
      const __m256 d = ld_f16x8(p + 16 * h);
      const __m256 dmin = ld_f16x8(p + 32 + 16 * h);
      for (int j = 0; j < NT; ++j) {
        const __m256 dx = _mm256_set1_ps(xb[j]->d);
        acc[j][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(d, dx), acc[j][h]);
        acc[j][h] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[j]), _mm256_mul_ps(dmin, dx), acc[j][h]);
      }
    }
  }
  store<NT>(y, y_stride, t0, acc);
}

// ---- F16 / BF16 ------------------------------------------------------------------------------
// Float FMAs on the weights widened to f32, against activations rounded to f16/bf16 (as the
// plain dots' rows). A tile's tokens never cross a kF16Tile group of PackedActivations::f32
// (kTokenTile divides kF16Tile).

template <bool kBf16>
inline __m256 load_half8(const std::byte* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (kBf16) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));  // bf16: top half of an f32
  } else {
    return _mm256_cvtph_ps(v);
  }
}

template <int NT, bool kBf16 = false>
void tile_f16(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y, int64_t y_stride) {
  const int64_t st = x.f32_stride;
  const float* xt = x.f32 + (t0 / kF16Tile) * nb * st + t0 % kF16Tile;
  if constexpr (NT == 1) {
    // Decode: two columns per step, four independent sums.
    __m256 a[4];
    for (auto& v : a) v = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 2 <= nb; k += 2) {
      const std::byte* p = grp + static_cast<size_t>(k) * kF16Bytes;
      const __m256 x0 = _mm256_set1_ps(xt[k * st]), x1 = _mm256_set1_ps(xt[(k + 1) * st]);
      a[0] = _mm256_fmadd_ps(load_half8<kBf16>(p), x0, a[0]);
      a[1] = _mm256_fmadd_ps(load_half8<kBf16>(p + 16), x0, a[1]);
      a[2] = _mm256_fmadd_ps(load_half8<kBf16>(p + 32), x1, a[2]);
      a[3] = _mm256_fmadd_ps(load_half8<kBf16>(p + 48), x1, a[3]);
    }
    for (; k < nb; ++k) {
      const std::byte* p = grp + static_cast<size_t>(k) * kF16Bytes;
      const __m256 x0 = _mm256_set1_ps(xt[k * st]);
      a[0] = _mm256_fmadd_ps(load_half8<kBf16>(p), x0, a[0]);
      a[1] = _mm256_fmadd_ps(load_half8<kBf16>(p + 16), x0, a[1]);
    }
    _mm256_storeu_ps(y + t0 * y_stride, _mm256_add_ps(a[0], a[2]));
    _mm256_storeu_ps(y + t0 * y_stride + 8, _mm256_add_ps(a[1], a[3]));
  } else {
    __m256 acc[NT][2];
    for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < nb; ++k) {
      const std::byte* p = grp + static_cast<size_t>(k) * kF16Bytes;
      const __m256 w0 = load_half8<kBf16>(p), w1 = load_half8<kBf16>(p + 16);
      const float* xk = xt + k * st;
      for (int j = 0; j < NT; ++j) {
        const __m256 xv = _mm256_set1_ps(xk[j]);
        acc[j][0] = _mm256_fmadd_ps(w0, xv, acc[j][0]);
        acc[j][1] = _mm256_fmadd_ps(w1, xv, acc[j][1]);
      }
    }
    store<NT>(y, y_stride, t0, acc);
  }
}

// ---- IQ4_XS ----------------------------------------------------------------------------------
// Each sub-block of 32 as IQ4_NL's tile does it (signed levels by vpshufb, |v| * sign(x, v));
// the vpmaddwd that widens the pair sums multiplies them by the row's sub-block scale. int32:
// 8 sub-blocks of <= 32 * 127 * 127 * 32.

template <int NT>
void tile_iq4_xs(const std::byte* grp, int64_t nb, const PackedActivations& x, int64_t t0, float* y,
                 int64_t y_stride) {
  const I grid = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  __m256 acc[NT][2];
  for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    const std::byte* p = grp + static_cast<size_t>(i) * kIQ4_XSBytes;
    if constexpr (NT == 1) prefetch_block(p, kIQ4_XSBytes);
    const BlockQ8_K* xb[NT];
    for (int j = 0; j < NT; ++j) xb[j] = x.q8_k(t0 + j, i);
    for (int h = 0; h < 2; ++h) {
      I isum[NT];
      for (auto& s : isum) s = _mm256_setzero_si256();
      for (int s = 0; s < 8; ++s) {
        const I sc = pair_i8(p + 32 + 16 * s + 8 * h);
#pragma GCC unroll 1  // see tile_q4_k
        for (int c = 0; c < 4; ++c) {
          I lo, hi;
          nibbles(p + 160 + 256 * s + 64 * c + 32 * h, lo, hi);
          lo = _mm256_shuffle_epi8(grid, lo);
          hi = _mm256_shuffle_epi8(grid, hi);
          const I alo = _mm256_abs_epi8(lo), ahi = _mm256_abs_epi8(hi);
          for (int j = 0; j < NT; ++j) {
            const int8_t* xq = xb[j]->qs + 32 * s;
            const I xlo = _mm256_sign_epi8(_mm256_set1_epi32(load_i32(xq + 4 * c)), lo);
            const I xhi = _mm256_sign_epi8(_mm256_set1_epi32(load_i32(xq + 16 + 4 * c)), hi);
            isum[j] = add32(isum[j], add32(_mm256_madd_epi16(_mm256_maddubs_epi16(alo, xlo), sc),
                                           _mm256_madd_epi16(_mm256_maddubs_epi16(ahi, xhi), sc)));
          }
        }
      }
      const __m256 dw = ld_f16x8(p + 16 * h);
      for (int j = 0; j < NT; ++j) {
        acc[j][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(dw, _mm256_set1_ps(xb[j]->d)), acc[j][h]);
      }
    }
  }
  store<NT>(y, y_stride, t0, acc);
}

using TileFn = void (*)(const std::byte*, int64_t, const PackedActivations&, int64_t, float*, int64_t);

template <TensorType T, int NT>
TileFn tile_for() {
  if constexpr (T == TensorType::Q4_0 || T == TensorType::IQ4_NL || T == TensorType::Q8_0) return &tile_q_0<NT, T>;
  if constexpr (T == TensorType::Q4_K) return &tile_q4_k<NT>;
  if constexpr (T == TensorType::Q6_K) return &tile_q6_k<NT>;
  if constexpr (T == TensorType::Q4_1) return &tile_a32<NT, false>;
  if constexpr (T == TensorType::Q5_0 || T == TensorType::Q5_1) return &tile_a32<NT, true>;
  if constexpr (T == TensorType::Q5_K) return &tile_kmin<NT, 8>;
  if constexpr (T == TensorType::Q2_K) return &tile_kmin<NT, 16>;
  if constexpr (T == TensorType::Q3_K) return &tile_q6_k<NT, 4, false>;
  if constexpr (T == TensorType::IQ4_XS) return &tile_iq4_xs<NT>;
  if constexpr (T == TensorType::F16) return &tile_f16<NT>;
  if constexpr (T == TensorType::BF16) return &tile_f16<NT, true>;
  return nullptr;
}

// Token tile (prefill): 4 tokens' int16 sums and a chunk's unpacked weights fit the 16 ymm
// registers (the f32 accumulators, touched once per block, may spill); measured better than 2
// or 3. F16: 4 tokens x 2 halves are the 8 FMA chains that hide the FMA latency.
template <TensorType T>
constexpr int kTokenTile = 4;
template <TensorType T>
constexpr bool kHasTile = true;  // every type x86/pack.cpp packs
static_assert(kF16Tile % kTokenTile<TensorType::F16> == 0);

#include "hearth/kernels/x86/packed_groups.inc"

}  // namespace

void avx2_packed_groups(TensorType t, const std::byte* packed, int64_t cols, const PackedActivations& x, int64_t g0,
                        int64_t g1, float* y, int64_t y_stride) {
  run_packed_groups(t, packed, cols, x, g0, g1, y, y_stride);
}

}  // namespace hearth::kernels
