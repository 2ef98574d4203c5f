// Weight repacking shared by the x86 tables (avx2 and avx512 read the same layouts; see
// x86/avx2/tiles.cpp, x86/avx512/tiles.cpp). Compiled with AVX2 flags: only tables that need AVX2
// call it.
//
// 16 rows are interleaved so that one 64-byte chunk holds the same 4 consecutive weights of 16
// rows: one zmm (avx512), or two ymm of 8 rows each (avx2).
//
// Layouts (per group of 16 rows, per block along the row; "q[c][r][k]" means byte 4c+k of the
// block's quants of row r, stored at c*64 + r*4 + k):
//   Q4_0: d[16] f16 | qs[4][16][4] (the original bytes: low nibble element 4c+k, high 16+4c+k)
//   IQ4_NL: as Q4_0 (the same block layout; the nibbles index kIq4nlValues)
//   Q8_0: d[16] f16 | qs[8][16][4] as unsigned (q ^ 0x80)
//   Q4_K: d[16] f16 | dmin[16] f16 | sc[8][16] u8 | m[8][16] u8 | qs[4 j][8 c][16][4] (the
//         original bytes 32j+4c+k: low nibble element 64j+4c+k, high 64j+32+4c+k)
//   Q6_K: d[16] f16 | sc[16][16] i8 | lo[32][16][4] (low 4 bits: byte u*256+k*64+4r+e holds
//         chunk 8u+k in its low nibble, chunk 8u+k+4 in its high one) | hi[16][16][4] (top 2
//         bits: byte u*128+m*64+4r+e holds chunk 8u+4m+b in bits 2b..2b+1): the stored size
//   F16:  per element k: w[16] f16 (one 32-byte row of 16 weights; a "block" is one column)
//   BF16: as F16 with bf16 weights
// Types whose bits are split across planes keep them so; the tiles join them in registers:
//   Q4_1, Q5_0, Q5_1: d[16] f32 | m[16] f32 | qs[4][16][4] as Q4_0 (the low 4 bits) | Q5_x:
//         bits[16][4] (byte 4r+k, bit c: bit 4 of element 4c+k); weight = d * q + m
//   Q5_K (8 sub-blocks of 32), Q2_K (16 of 16): d[16] f16 | dmin[16] f16 | sc[NS][16] u8 |
//         m[NS][16] u8 | quants; weight = d * sc * q - dmin * m. Q5_K's quants: per sub-block
//         s a nibble plane (byte s*256+k*64+4r+e: chunk k low, chunk k+4 high), then per s a bit
//         plane (byte 2048+s*64+4r+e, bit c: bit 4 of chunk c). Q2_K's: per sub-block one
//         64-byte plane, chunk c in bits 2c..2c+1. Both within 2.3 % / 19 % of stored.
//   Q3_K: as Q6_K's first two parts, with q + 4 (0..7) in the nibbles and its 6-bit signed
//         scales (+33 %: the 3 bits sit in a nibble)
//   IQ4_XS: d[16] f16 | sc[8][16] i8 (the sub-block scales s - 32) | per sub-block s the Q4_0
//         arrangement of its 16 bytes, qs[8 s][4 c][16][4] (+1.5 %)
// Sizes equal the original for Q4_0/IQ4_NL/Q8_0/Q6_K/F16/BF16, +2.8 % for Q4_K, and Q4_1 +20 %,
// Q5_0 +27 %, Q5_1 +17 % (f32 d/m).
#include <immintrin.h>

#include <array>
#include <cstring>

#include "hearth/kernels/quant_blocks.h"
#include "hearth/kernels/quant_ref.h"
#include "hearth/kernels/type_traits.h"
#include "hearth/kernels/x86/packed.h"

namespace hearth::kernels {
namespace {

constexpr int kG = kPackRows;

// Exact binary16 -> f32 (F16C; local, so no shared inline is compiled with these flags).
inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

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

// Q4_0 and IQ4_NL (the same bytes: an f16 d, then 16 bytes of nibbles).
template <class Block>
void pack_q4_0(const std::byte* row, int64_t b, int r, uint8_t* u8) {
  static_assert(sizeof(Block) == sizeof(BlockQ4_0));
  Block w;
  std::memcpy(&w, row + b * sizeof(Block), sizeof w);
  std::memcpy(u8 + 2 * r, &w.d, 2);
  for (int c = 0; c < 4; ++c) std::memcpy(u8 + 32 + 64 * c + 4 * r, w.qs + 4 * c, 4);
}

void pack_q8_0(const std::byte* row, int64_t b, int r, uint8_t* u8) {
  BlockQ8_0 w;
  std::memcpy(&w, row + b * sizeof(BlockQ8_0), sizeof w);
  std::memcpy(u8 + 2 * r, &w.d, 2);
  for (int e = 0; e < 32; ++e) u8[32 + 64 * (e / 4) + 4 * r + e % 4] = static_cast<uint8_t>(w.qs[e]) ^ 0x80;
}

void pack_q4_k(const std::byte* row, int64_t b, int r, uint8_t* u8) {
  BlockQ4_K w;
  std::memcpy(&w, row + b * sizeof(BlockQ4_K), sizeof w);
  std::memcpy(u8 + 2 * r, &w.d, 2);
  std::memcpy(u8 + 32 + 2 * r, &w.dmin, 2);
  for (int s = 0; s < 8; ++s) scale_min_k4(s, w.scales, u8 + 64 + 16 * s + r, u8 + 64 + 128 + 16 * s + r);
  for (int j = 0; j < 4; ++j) {
    for (int c = 0; c < 8; ++c) std::memcpy(u8 + 320 + (j * 8 + c) * 64 + 4 * r, w.qs + 32 * j + 4 * c, 4);
  }
}

void pack_q6_k(const std::byte* row, int64_t b, int r, uint8_t* u8) {
  BlockQ6_K w;
  std::memcpy(&w, row + b * sizeof(BlockQ6_K), sizeof w);
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
}

// Q4_1, Q5_0, Q5_1: f32 d and m, the low 4 bits as Q4_0, Q5_x's bit planes.
template <TensorType t>
void pack_a32(const std::byte* row, int64_t b, int r, uint8_t* u8) {
  uint8_t q[32];
  float d = 0, m = 0;
  if (t == TensorType::Q4_1) {
    BlockQ4_1 w;
    std::memcpy(&w, row + b * sizeof(BlockQ4_1), sizeof w);
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
      std::memcpy(&w, row + b * sizeof(BlockQ5_0), sizeof w);
      dh = w.d;
      std::memcpy(qh4, w.qh, 4);
      std::memcpy(qs, w.qs, 16);
    } else {
      BlockQ5_1 w;
      std::memcpy(&w, row + b * sizeof(BlockQ5_1), sizeof w);
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
}

void pack_q5_k(const std::byte* row, int64_t b, int r, uint8_t* u8) {
  BlockQ5_K w;
  std::memcpy(&w, row + b * sizeof(BlockQ5_K), sizeof w);
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
}

void pack_q2_k(const std::byte* row, int64_t b, int r, uint8_t* u8) {
  BlockQ2_K w;
  std::memcpy(&w, row + b * sizeof(BlockQ2_K), sizeof w);
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
}

void pack_q3_k(const std::byte* row, int64_t b, int r, uint8_t* u8) {
  BlockQ3_K w;
  std::memcpy(&w, row + b * sizeof(BlockQ3_K), sizeof w);
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
}

void pack_iq4_xs(const std::byte* row, int64_t b, int r, uint8_t* u8) {
  BlockIQ4_XS w;
  std::memcpy(&w, row + b * sizeof(BlockIQ4_XS), sizeof w);
  std::memcpy(u8 + 2 * r, &w.d, 2);
  for (int s = 0; s < 8; ++s) {
    const int ls = ((w.scales_l[s / 2] >> (4 * (s % 2))) & 0xf) | (((w.scales_h >> (2 * s)) & 3) << 4);
    u8[32 + 16 * s + r] = static_cast<uint8_t>(static_cast<int8_t>(ls - 32));
    for (int c = 0; c < 4; ++c) std::memcpy(u8 + 160 + 256 * s + 64 * c + 4 * r, w.qs + 16 * s + 4 * c, 4);
  }
}

void pack_f16(const std::byte* row, int64_t b, int r, uint8_t* u8) { std::memcpy(u8 + 2 * r, row + 2 * b, 2); }

// One packed layout per type: bytes and elements of a packed block (16 rows), and the function
// that writes row r of block b into it. Types without a layout are not packed.
struct Layout {
  size_t block_bytes;
  int64_t block_elems;
  void (*pack_row)(const std::byte* row, int64_t b, int r, uint8_t* u8);
};

constexpr std::array<Layout, kTypeCount> make_layouts() {
  std::array<Layout, kTypeCount> l{};
  auto set = [&l](TensorType t, Layout row) { l[static_cast<size_t>(t)] = row; };
  set(TensorType::Q4_0, {kQ4_0Bytes, 32, &pack_q4_0<BlockQ4_0>});
  set(TensorType::IQ4_NL, {kQ4_0Bytes, 32, &pack_q4_0<BlockIQ4_NL>});
  set(TensorType::Q4_1, {kQ4_1Bytes, 32, &pack_a32<TensorType::Q4_1>});
  set(TensorType::Q5_0, {kQ5xBytes, 32, &pack_a32<TensorType::Q5_0>});
  set(TensorType::Q5_1, {kQ5xBytes, 32, &pack_a32<TensorType::Q5_1>});
  set(TensorType::Q8_0, {kQ8_0Bytes, 32, &pack_q8_0});
  set(TensorType::Q2_K, {kQ2_KBytes, kQK_K, &pack_q2_k});
  set(TensorType::Q3_K, {kQ3_KBytes, kQK_K, &pack_q3_k});
  set(TensorType::Q4_K, {kQ4_KBytes, kQK_K, &pack_q4_k});
  set(TensorType::Q5_K, {kQ5_KBytes, kQK_K, &pack_q5_k});
  set(TensorType::Q6_K, {kQ6_KBytes, kQK_K, &pack_q6_k});
  set(TensorType::IQ4_XS, {kIQ4_XSBytes, kQK_K, &pack_iq4_xs});
  set(TensorType::F16, {kF16Bytes, 1, &pack_f16});
  set(TensorType::BF16, {kF16Bytes, 1, &pack_f16});
  return l;
}

constexpr std::array<Layout, kTypeCount> kLayouts = make_layouts();

const Layout& layout(TensorType t) {
  static constexpr Layout kNone{};
  const auto i = static_cast<size_t>(t);
  return i < kTypeCount ? kLayouts[i] : kNone;
}

void pack_group(TensorType t, int64_t nb, const std::byte* const rows[kG], std::byte* out) {
  const Layout& l = layout(t);
  for (int64_t b = 0; b < nb; ++b) {
    auto* u8 = reinterpret_cast<uint8_t*>(out + static_cast<size_t>(b) * l.block_bytes);
    for (int r = 0; r < kG; ++r) l.pack_row(rows[r], b, r, u8);
  }
}

// F16/BF16 (a 16 x cols transpose of 16-bit values), two columns a step: each row's pair as one
// 32-bit gather lane (rows 0-7, then 8-15), the pairs' low and high halves separated by a byte
// shuffle. About 4x the element-by-element pack_row, which ran at ~1 GB/s. The odd last
// column, and rows too far apart for 32-bit gather offsets, element by element.
void pack_halves(const std::byte* w, size_t row_bytes, int64_t cols, std::byte* out) {
  int64_t k = 0;
  if (row_bytes <= 0x7fffffffu / kG) {
    const __m256i offs = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                            _mm256_set1_epi32(static_cast<int>(row_bytes)));
    // Per 128-bit lane (4 rows): the low halves (column k), then the high ones (column k + 1).
    const __m256i split = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9,
                                           12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    const std::byte* hi_rows = w + 8 * row_bytes;
    for (; k + 2 <= cols; k += 2) {
      __m256i v0 = _mm256_i32gather_epi32(reinterpret_cast<const int*>(w + 2 * k), offs, 1);
      __m256i v1 = _mm256_i32gather_epi32(reinterpret_cast<const int*>(hi_rows + 2 * k), offs, 1);
      // [k: rows 0-3 | k+1: rows 0-3 | k: rows 4-7 | k+1: rows 4-7] -> [k: 0-7 | k+1: 0-7]
      v0 = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v0, split), 0xD8);
      v1 = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v1, split), 0xD8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k * kF16Bytes), _mm256_permute2x128_si256(v0, v1, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (k + 1) * kF16Bytes),
                          _mm256_permute2x128_si256(v0, v1, 0x31));
    }
  }
  for (; k < cols; ++k) {
    for (int r = 0; r < kG; ++r) std::memcpy(out + k * kF16Bytes + 2 * r, w + r * row_bytes + 2 * k, 2);
  }
}

}  // namespace

size_t packed_block_bytes_x86(TensorType t) { return layout(t).block_bytes; }
int64_t packed_block_elems_x86(TensorType t) { return layout(t).block_elems; }

size_t packed_bytes_x86(TensorType t, int64_t rows, int64_t cols) {
  const Layout& l = layout(t);
  if (l.block_bytes == 0 || rows < kG || cols <= 0 || cols % l.block_elems != 0) return 0;
  return static_cast<size_t>(rows / kG) * static_cast<size_t>(cols / l.block_elems) * l.block_bytes;
}

void pack_x86(TensorType t, int64_t rows, int64_t cols, const std::byte* w, size_t row_bytes, std::byte* out) {
  const int64_t nb = cols / layout(t).block_elems;
  const size_t group_bytes = static_cast<size_t>(nb) * layout(t).block_bytes;
  for (int64_t g = 0; g < rows / kG; ++g) {
    if (t == TensorType::F16 || t == TensorType::BF16) {
      pack_halves(w + static_cast<size_t>(g * kG) * row_bytes, row_bytes, cols, out + static_cast<size_t>(g) * group_bytes);
      continue;
    }
    const std::byte* rp[kG];
    for (int r = 0; r < kG; ++r) rp[r] = w + static_cast<size_t>(g * kG + r) * row_bytes;
    pack_group(t, nb, rp, out + static_cast<size_t>(g) * group_bytes);
  }
}

}  // namespace hearth::kernels
