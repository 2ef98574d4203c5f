// AVX2 + FMA + F16C kernels. Compiled with those flags (set on the x86/avx2/ folder in
// kernels/CMakeLists.txt); selected at run time when the CPU and OS support them. Slots
// without an AVX2 version fall back to ref.
// Quantized dot products follow the integer scheme of the formats: |w| * sign-adjusted
// activations with vpmaddubsw, pairs summed with vpmaddwd, one float scale per block.
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <type_traits>

#include "hearth/kernels/fp16.h"
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

// IQ4_NL / IQ4_XS: the 32 grid values (kIq4nlValues) of a 16-byte run of nibbles, low nibbles
// first, looked up with one in-lane byte shuffle per half.
inline __m256i iq4_levels(const uint8_t* qs) {
  const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  return _mm256_shuffle_epi8(table, unpack_nibbles(qs));
}

float dot_iq4_nl(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockIQ4_NL*>(wv);
  const auto* x = static_cast<const BlockQ8_0*>(xv);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK4_NL; ++i) {
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)),
                          _mm256_cvtepi32_ps(dot_i8_pairs(iq4_levels(w[i].qs), y)), acc);
  }
  return hsum8(acc);
}

// IQ4_XS: levels |v| <= 127 against activations |y| <= 127, so maddubs cannot saturate; the
// pair sums are multiplied by the sub-block's scale in the vpmaddwd that widens them, and the
// int32 sum of a block stays below 8 * 32 * 127 * 127 * 32.
float dot_iq4_xs(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockIQ4_XS*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    __m256i isum = _mm256_setzero_si256();
    for (int j = 0; j < kQK_K / 32; ++j) {
      const __m256i q = iq4_levels(w[i].qs + 16 * j);
      const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * j));
      const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q));
      const int ls = ((w[i].scales_l[j / 2] >> (4 * (j % 2))) & 0xf) | (((w[i].scales_h >> (2 * j)) & 3) << 4);
      const auto scale = static_cast<int16_t>(ls - 32);
      isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, _mm256_set1_epi16(scale)));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * x[i].d), _mm256_cvtepi32_ps(isum), acc);
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

// int16 element a of each 128-bit half of v into all of the low half, element b into the high
// half: per-16-element scales for one maddubs result (its halves cover two sub-blocks).
inline __m256i pick16(__m256i v, int a, int b) {
  const auto idx = [](int e) { return static_cast<short>(((2 * e + 1) << 8) | (2 * e)); };
  return _mm256_shuffle_epi8(v, _mm256_set_m128i(_mm_set1_epi16(idx(b)), _mm_set1_epi16(idx(a))));
}

// Q2_K: q in [0, 3] is already unsigned, so maddubs takes it as is; the mins come out of the
// activation bsums (16 per block, one per sub-block, as are the scales).
float dot_q2_k(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ2_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales));
    const __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(packed, _mm_set1_epi8(0x0f)));
    const __m256i mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0f)));
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].bsums));
    const __m256i mins = _mm256_madd_epi16(mn, bsums);
    __m256i isum = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      // Scales 8*half .. 8*half+7 in both 128-bit halves, so pick16 can reach them in-lane.
      const __m256i sh = half == 0 ? _mm256_permute4x64_epi64(sc, 0x44) : _mm256_permute4x64_epi64(sc, 0xee);
      __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qs + 32 * half));
      const int8_t* y = x[i].qs + 128 * half;
      for (int s = 0; s < 4; ++s) {
        // Bit pair s of every byte: elements 32*s .. 32*s+31 of this half.
        const __m256i yy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 32 * s));
        const __m256i p16 = _mm256_maddubs_epi16(_mm256_and_si256(q, m3), yy);
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, pick16(sh, 2 * s, 2 * s + 1)));
        q = _mm256_srli_epi16(q, 2);  // bits shifted in from the next byte stay above bit 1
      }
    }
    const float dx = x[i].d;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(w[i].d)), _mm256_cvtepi32_ps(isum), acc);
    acc = _mm256_fnmadd_ps(_mm256_set1_ps(dx * h2f(w[i].dmin)), _mm256_cvtepi32_ps(mins), acc);
  }
  return hsum8(acc);
}

// The 16 Q3_K scales, 6-bit values minus 32, sign-extended to int16 (element j = scale j).
inline __m256i unpack_scales_q3(const uint8_t* p) {
  uint64_t lo8;
  uint32_t hi4;
  std::memcpy(&lo8, p, 8);
  std::memcpy(&hi4, p + 8, 4);
  // Low nibbles: bytes 0..7 give scales 0..7, their high nibbles scales 8..15.
  const __m128i b = _mm_cvtsi64_si128(static_cast<long long>(lo8));
  const __m128i low = _mm_and_si128(_mm_unpacklo_epi64(b, _mm_srli_epi16(b, 4)), _mm_set1_epi8(0x0f));
  // Top two bits of scale j: byte j % 4 of hi4, bit pair j / 4; every 32-bit lane holds hi4,
  // so lane j / 4 only needs a right shift by 2 * (j / 4).
  const __m128i h = _mm_srlv_epi32(_mm_set1_epi32(static_cast<int>(hi4)), _mm_setr_epi32(0, 2, 4, 6));
  const __m128i high = _mm_slli_epi16(_mm_and_si128(h, _mm_set1_epi8(3)), 4);
  return _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_or_si128(low, high), _mm_set1_epi8(32)));
}

// Q3_K: level q - 4 with q = low2 | hbit << 2 in [0, 7]. maddubs on q, and the -4 becomes
// 4 * sum(scale * bsum) per block.
float dot_q3_k(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ3_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i m4 = _mm256_set1_epi8(4);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const __m256i sc = unpack_scales_q3(w[i].scales);
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].bsums));
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc, bsums), 2);
    // hmask bit k (= 4*half + s) of byte l is the high bit of element 32k + l.
    __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].hmask));
    __m256i isum = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i sh = half == 0 ? _mm256_permute4x64_epi64(sc, 0x44) : _mm256_permute4x64_epi64(sc, 0xee);
      __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qs + 32 * half));
      const int8_t* y = x[i].qs + 128 * half;
      for (int s = 0; s < 4; ++s) {
        const __m256i q3 = _mm256_or_si256(_mm256_and_si256(q, m3), _mm256_and_si256(_mm256_slli_epi16(hm, 2), m4));
        const __m256i yy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 32 * s));
        const __m256i p16 = _mm256_maddubs_epi16(q3, yy);
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, pick16(sh, 2 * s, 2 * s + 1)));
        q = _mm256_srli_epi16(q, 2);
        hm = _mm256_srli_epi16(hm, 1);  // bit 0 of each byte stays in-byte for 8 shifts
      }
    }
    acc =
        _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), _mm256_cvtepi32_ps(_mm256_sub_epi32(isum, offset)), acc);
  }
  return hsum8(acc);
}

// The 8 6-bit scales and mins of a Q4_K/Q5_K block as bytes. Sub-blocks 0..3 sit in the low
// 6 bits of bytes 0..3 (scales) and 4..7 (mins); 4..7 take their low nibbles from bytes 8..11
// and their top two bits from bits 6..7 of bytes 0..3 (scales) and 4..7 (mins).
inline void unpack_k4_scales(const uint8_t* p, uint64_t* sc, uint64_t* mn) {
  uint32_t w0, w1, w2;
  std::memcpy(&w0, p, 4);
  std::memcpy(&w1, p + 4, 4);
  std::memcpy(&w2, p + 8, 4);
  const uint32_t sc_hi = (w2 & 0x0f0f0f0f) | ((w0 >> 2) & 0x30303030);
  const uint32_t mn_hi = ((w2 >> 4) & 0x0f0f0f0f) | ((w1 >> 2) & 0x30303030);
  *sc = (w0 & 0x3f3f3f3f) | static_cast<uint64_t>(sc_hi) << 32;
  *mn = (w1 & 0x3f3f3f3f) | static_cast<uint64_t>(mn_hi) << 32;
}

// Q4_K and Q5_K (kHigh: the qh bit above the nibble, q at most 31, so maddubs cannot saturate:
// 2 * 31 * 127). Scales decoded inline, one float accumulator per row.
template <bool kHigh>
float dot_k4(int64_t n, const void* wv, const void* xv) {
  using Block = std::conditional_t<kHigh, BlockQ5_K, BlockQ4_K>;
  const auto* w = static_cast<const Block*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i bit4 = _mm256_set1_epi8(0x10);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    uint64_t sc8, mn8;
    unpack_k4_scales(w[i].scales, &sc8, &mn8);
    // Scale j as int16 element j of both 128-bit halves.
    const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(sc8))));
    // Each min covers two 16-element bsums: duplicate it to line up with them.
    const __m128i m = _mm_cvtsi64_si128(static_cast<long long>(mn8));
    const __m256i mins = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m)),
                                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].bsums)));
    __m256i hb = _mm256_setzero_si256();
    if constexpr (kHigh) hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qh));
    __m256i isum = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      // Chunk j: 64 elements; qh bit 2j (then 2j + 1) of byte l is bit 4 of element l (l + 32).
      const __m256i q4 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i].qs + 32 * j));
      __m256i lo = _mm256_and_si256(q4, m4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
      if constexpr (kHigh) {
        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), bit4));
        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), bit4));
        hb = _mm256_srli_epi16(hb, 2);
      }
      const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 64 * j));
      const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 64 * j + 32));
      const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), pick16(sc, 2 * j, 2 * j));
      const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), pick16(sc, 2 * j + 1, 2 * j + 1));
      isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
    }
    const float dx = x[i].d;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(w[i].d)), _mm256_cvtepi32_ps(isum), acc);
    acc = _mm256_fnmadd_ps(_mm256_set1_ps(dx * h2f(w[i].dmin)), _mm256_cvtepi32_ps(mins), acc);
  }
  return hsum8(acc);
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

TypeKernels make_type_kernels() {
  TypeKernels k{};
  set_x86_from_float(k);
  set_row(k.vec_dot, TensorType::F32, &dot_f32);
  set_row(k.vec_dot, TensorType::F16, &dot_f16);
  set_row(k.vec_dot, TensorType::BF16, &dot_bf16);
  set_row(k.vec_dot, TensorType::Q4_0, &dot_q4_0);
  set_row(k.vec_dot, TensorType::Q4_1, &dot_q4_1);
  set_row(k.vec_dot, TensorType::Q5_0, &dot_q5_0);
  set_row(k.vec_dot, TensorType::Q5_1, &dot_q5_1);
  set_row(k.vec_dot, TensorType::Q8_0, &dot_q8_0);
  set_row(k.vec_dot, TensorType::Q2_K, &dot_q2_k);
  set_row(k.vec_dot, TensorType::Q3_K, &dot_q3_k);
  set_row(k.vec_dot, TensorType::Q4_K, &dot_k4<false>);
  set_row(k.vec_dot, TensorType::Q5_K, &dot_k4<true>);
  set_row(k.vec_dot, TensorType::Q6_K, &dot_q6_k);
  set_row(k.vec_dot, TensorType::IQ4_NL, &dot_iq4_nl);
  set_row(k.vec_dot, TensorType::IQ4_XS, &dot_iq4_xs);
  return k;
}

// The packed path (x86/avx2/tiles.cpp): 16-row groups by the tiles, the remaining rows (fewer
// than 16) by the ordinary dots.
void matmul_packed(const MatmulArgs& a, ThreadPool& pool, const TypeKernels& k, TensorType act_type, size_t act_row) {
  PackedActivations x;
  if (!prepare_packed_int(a, pool, k, act_type, act_row, x)) {  // F16/BF16
    prepare_packed_float(a, pool, act_row, kF16Tile, x, [&](const float* src, uint16_t* h, float* dst, int64_t st) {
      f16_row_ref(act_type, src, h, dst, st, a.cols);
    });
  }
  run_packed_matmul(a, pool, act_row, kPackRows, type_row(k.vec_dot, a.wtype), [&](int64_t g0, int64_t g1) {
    avx2_packed_groups(a.wtype, a.packed, a.cols, x, g0, g1, a.y, a.y_stride);
  });
}

size_t scratch_bytes_avx2(TensorType wtype, int64_t cols, int64_t n_tokens) {
  return packed_scratch_bytes(wtype, cols, n_tokens, kF16Tile);
}

void matmul_avx2(const MatmulArgs& a, ThreadPool& pool) {
  const TypeKernels& k = avx2_type_kernels();
  const TensorType act_type = vec_dot_type(a.wtype);
  const size_t act_row = *row_bytes(act_type, static_cast<uint64_t>(a.cols));
  if (a.packed != nullptr && packed_bytes_x86(a.wtype, a.rows, a.cols) != 0) {
    matmul_packed(a, pool, k, act_type, act_row);
    return;
  }
  matmul_drive(a, pool, act_type, act_row, type_row(k.from_float, act_type), type_row(k.vec_dot, a.wtype));
}

}  // namespace

const TypeKernels& avx2_type_kernels() {
  static const TypeKernels k = make_type_kernels();
  return k;
}

// Filled by select: null slots are completed with ref kernels in dispatch.cpp.
KernelTable make_avx2_kernels() {
  KernelTable t{};
  t.name = "avx2";
  fill_vector_ops_avx2(t);
  t.matmul = &matmul_avx2;
  t.packed_bytes = &packed_bytes_x86;
  t.pack = &pack_x86;
  t.scratch_bytes = &scratch_bytes_avx2;
  return t;
}

}  // namespace hearth::kernels
