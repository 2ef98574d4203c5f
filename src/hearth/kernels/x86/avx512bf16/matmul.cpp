// The avx512bf16 table: the avx512 table, with F16/BF16 weight matmuls on the bf16 dot product
// vdpbf16ps (AVX512-BF16: each 32-bit lane gets a0*b0 + a1*b1 of two bf16 pairs, the products
// exact in f32, accumulated in f32). Compiled with -mavx512bf16 (this folder only, see
// kernels/CMakeLists.txt); dispatch.cpp selects the table only when CPUID reports AVX512-BF16.
//
// Packed layout (this table's own; it replaces x86/pack.cpp's for the types it handles): per
// group of 16 rows, kp = ceil(cols / 2) column pairs of [16 rows][2] bf16, 64 bytes each:
// byte p*64 + 4r + 2e holds element 2p + e of row r (0 past an odd row's end). One zmm is then
// one column pair of 16 rows, and vdpbf16ps against a broadcast activation pair gives the 16
// rows' partial sums of one token in 16 lanes.
//
// Numerics. BF16 weights: the activations are rounded to bf16 (vcvtne2ps2bf16: round to
// nearest even, as the reference's dot-product partner conversion), so the result equals
// ref's up to f32 summation order. F16 weights go through here only when f16_via_bf16() (see
// below): the weights are rounded f16 -> bf16 at load (8 of 11 significant bits kept) and the
// activations to bf16 rather than f16, a relative error of up to 2^-8 on each factor.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/matmul_driver.h"
#include "hearth/kernels/type_kernels.h"
#include "hearth/kernels/type_traits.h"

namespace hearth::kernels {

KernelTable make_avx512_kernels();  // x86/avx512/matmul.cpp

namespace {

constexpr int kRowsPerGroup = 16;
constexpr size_t kPairBytes = 64;  // one column pair of a 16-row group
// Prefill tile: two groups x 12 tokens keep 24 accumulators, two weight registers and a
// broadcast in the 32 zmm registers, with 14 loads per 24 vdpbf16ps.
constexpr int kGroupTile = 2;
constexpr int kTokenTile = 12;

// The avx512 table this one extends: every type and shape the bf16 path does not take.
const KernelTable& base() {
  static const KernelTable t = make_avx512_kernels();
  return t;
}

// F16 weights on the bf16 path: HEARTH_F16_BF16=1 turns it on, 0 off; unset: off (the f16
// rounding of the weights and activations is what the reference tolerance for F16 files is
// stated against; see README "Benchmarks" for the measured error of the bf16 path).
bool f16_via_bf16() {
  static const bool on = [] {
    const char* e = std::getenv("HEARTH_F16_BF16");
    return e != nullptr && e[0] == '1';
  }();
  return on;
}

bool on_bf16_path(TensorType t) { return t == TensorType::BF16 || (t == TensorType::F16 && f16_via_bf16()); }

int64_t pairs_of(int64_t cols) { return (cols + 1) / 2; }

// f32 -> bf16 with round to nearest even, NaN kept NaN (quiet), as the reference's scalar
// conversion: for the odd elements the vector code does not cover.
inline uint16_t bf16_of(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

inline uint16_t weight_bf16(TensorType t, const std::byte* row, int64_t k) {
  uint16_t h;
  std::memcpy(&h, row + 2 * k, 2);
  return t == TensorType::BF16 ? h : bf16_of(_cvtsh_ss(h));
}

size_t packed_bytes_bf16(TensorType t, int64_t rows, int64_t cols) {
  if (!on_bf16_path(t)) return base().packed_bytes(t, rows, cols);
  if (rows < kRowsPerGroup || cols <= 0) return 0;
  return static_cast<size_t>(rows / kRowsPerGroup) * static_cast<size_t>(pairs_of(cols)) * kPairBytes;
}

// One group: 16 rows of 16 column pairs at a time by a gather per pair (the 16 rows' 32-bit
// pairs, row_bytes apart), F16 widened and rounded to bf16 in registers; the odd last column
// and rows too far apart for 32-bit gather offsets element by element.
void pack_group(TensorType t, const std::byte* w, size_t row_bytes, int64_t cols, std::byte* out) {
  const int64_t kp = pairs_of(cols), full = cols / 2;
  int64_t p = 0;
  if (row_bytes <= 0x7fffffffu / kRowsPerGroup) {
    const __m512i offs = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32(static_cast<int>(row_bytes)));
    // Lane 2r of the result: row r's even element, lane 2r+1 its odd one.
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                                22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (; p < full; ++p) {
      const __m512i v = _mm512_i32gather_epi32(offs, w + 4 * p, 1);
      __m512i bf;
      if (t == TensorType::BF16) {
        bf = v;
      } else {
        const __m512 even = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
        const __m512 odd = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16)));
        bf = _mm512_permutexvar_epi16(interleave, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(odd, even)));
      }
      _mm512_storeu_si512(out + static_cast<size_t>(p) * kPairBytes, bf);
    }
  }
  for (; p < kp; ++p) {
    auto* dst = reinterpret_cast<uint16_t*>(out + static_cast<size_t>(p) * kPairBytes);
    for (int r = 0; r < kRowsPerGroup; ++r) {
      const std::byte* row = w + static_cast<size_t>(r) * row_bytes;
      dst[2 * r] = weight_bf16(t, row, 2 * p);
      dst[2 * r + 1] = 2 * p + 1 < cols ? weight_bf16(t, row, 2 * p + 1) : 0;
    }
  }
}

void pack_bf16(TensorType t, int64_t rows, int64_t cols, const std::byte* w, size_t row_bytes, std::byte* out) {
  if (!on_bf16_path(t)) {
    base().pack(t, rows, cols, w, row_bytes, out);
    return;
  }
  const size_t group_bytes = static_cast<size_t>(pairs_of(cols)) * kPairBytes;
  for (int64_t g = 0; g < rows / kRowsPerGroup; ++g) {
    pack_group(t, w + static_cast<size_t>(g * kRowsPerGroup) * row_bytes, row_bytes, cols,
               out + static_cast<size_t>(g) * group_bytes);
  }
}

// Scratch: the activation rows of vec_dot_type (for the rows past the last full group), then
// from a 64-byte boundary the bf16 pairs of every token, in whole tiles of kTokenTile tokens.
size_t scratch_bytes_bf16(TensorType wtype, int64_t cols, int64_t n_tokens) {
  if (!on_bf16_path(wtype)) return base().scratch_bytes(wtype, cols, n_tokens);
  const auto tiles = static_cast<size_t>((n_tokens + kTokenTile - 1) / kTokenTile);
  return activation_bytes(wtype, cols, n_tokens) + 64 + 4 * static_cast<size_t>(pairs_of(cols)) * tiles * kTokenTile;
}

// One token's activations as bf16 pairs: pair p at dst[p * st] (the low half is element 2p).
void activation_pairs(const float* src, int64_t cols, uint32_t* dst, int64_t st) {
  int64_t k = 0;
  alignas(64) uint32_t pairs[16];
  for (; k + 32 <= cols; k += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + k + 16), _mm512_loadu_ps(src + k));
    if (st == 1) {
      _mm512_storeu_si512(dst + k / 2, reinterpret_cast<__m512i>(v));
    } else {
      _mm512_store_si512(pairs, reinterpret_cast<__m512i>(v));
      for (int i = 0; i < 16; ++i) dst[(k / 2 + i) * st] = pairs[i];
    }
  }
  for (; k < cols; k += 2) {
    // The reference's conversion is vcvtne2ps2bf16's on these CPUs: round to nearest even with
    // denormal inputs flushed; bf16_of keeps denormals, a difference below 2^-126.
    const uint32_t lo = bf16_of(src[k]);
    const uint32_t hi = k + 1 < cols ? bf16_of(src[k + 1]) : 0;
    dst[(k / 2) * st] = lo | hi << 16;
  }
}

inline __m512bh as_bh(__m512i v) { return reinterpret_cast<__m512bh>(v); }

// NG consecutive groups (group_bytes apart) x NT tokens whose pairs are xt[p * st + j].
template <int NG, int NT>
void tile(const std::byte* w, size_t group_bytes, int64_t kp, const uint32_t* xt, int64_t st, float* y,
          int64_t y_stride) {
  __m512 acc[NG][NT];
  for (int g = 0; g < NG; ++g)
    for (int j = 0; j < NT; ++j) acc[g][j] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kp; ++p) {
    __m512bh wv[NG];
    for (int g = 0; g < NG; ++g) {
      wv[g] = as_bh(_mm512_loadu_si512(w + g * group_bytes + static_cast<size_t>(p) * kPairBytes));
    }
    const uint32_t* xp = xt + p * st;
    for (int j = 0; j < NT; ++j) {
      const __m512bh xv = as_bh(_mm512_set1_epi32(static_cast<int>(xp[j])));
      for (int g = 0; g < NG; ++g) acc[g][j] = _mm512_dpbf16_ps(acc[g][j], wv[g], xv);
    }
  }
  for (int j = 0; j < NT; ++j)
    for (int g = 0; g < NG; ++g) _mm512_storeu_ps(y + j * y_stride + g * kRowsPerGroup, acc[g][j]);
}

// Decode: one group, one token with contiguous pairs; four independent sums cover the latency.
void tile_decode(const std::byte* w, int64_t kp, const uint32_t* x, float* y) {
  __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t p = 0;
  for (; p + 4 <= kp; p += 4) {
    for (int u = 0; u < 4; ++u) {
      a[u] = _mm512_dpbf16_ps(a[u], as_bh(_mm512_loadu_si512(w + static_cast<size_t>(p + u) * kPairBytes)),
                              as_bh(_mm512_set1_epi32(static_cast<int>(x[p + u]))));
    }
  }
  for (; p < kp; ++p) {
    a[0] = _mm512_dpbf16_ps(a[0], as_bh(_mm512_loadu_si512(w + static_cast<size_t>(p) * kPairBytes)),
                            as_bh(_mm512_set1_epi32(static_cast<int>(x[p]))));
  }
  _mm512_storeu_ps(y, _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])));
}

template <int NG, int NT>
void tail_tile(int left, const std::byte* w, size_t gb, int64_t kp, const uint32_t* xt, int64_t st, float* y,
               int64_t ys) {
  if constexpr (NT > 0) {
    if (left == NT) {
      tile<NG, NT>(w, gb, kp, xt, st, y, ys);
    } else {
      tail_tile<NG, NT - 1>(left, w, gb, kp, xt, st, y, ys);
    }
  }
}

// NG groups starting at w for every token: full tiles, then one tile of the tokens left over.
template <int NG>
void run_tiles(const std::byte* w, size_t gb, int64_t kp, const uint32_t* xs, int64_t n_tokens, float* y,
               int64_t ys) {
  int64_t t = 0;
  for (; t + kTokenTile <= n_tokens; t += kTokenTile) {
    tile<NG, kTokenTile>(w, gb, kp, xs + (t / kTokenTile) * kp * kTokenTile, kTokenTile, y + t * ys, ys);
  }
  if (t < n_tokens) {
    const int64_t st = n_tokens < kTokenTile ? n_tokens : kTokenTile;
    tail_tile<NG, kTokenTile - 1>(static_cast<int>(n_tokens - t), w, gb, kp, xs + (t / kTokenTile) * kp * st, st,
                                  y + t * ys, ys);
  }
}

// `count` (1..kGroupTile) groups starting at w.
template <int NG = kGroupTile>
void run_groups(int64_t count, const std::byte* w, size_t gb, int64_t kp, const uint32_t* xs, int64_t n_tokens,
                float* y, int64_t ys) {
  if constexpr (NG > 0) {
    if (count == NG) {
      run_tiles<NG>(w, gb, kp, xs, n_tokens, y, ys);
    } else {
      run_groups<NG - 1>(count, w, gb, kp, xs, n_tokens, y, ys);
    }
  }
}

void matmul_bf16(const MatmulArgs& a, ThreadPool& pool) {
  if (a.packed == nullptr || !on_bf16_path(a.wtype) || packed_bytes_bf16(a.wtype, a.rows, a.cols) == 0) {
    base().matmul(a, pool);
    return;
  }
  const int64_t kp = pairs_of(a.cols);
  const size_t gb = static_cast<size_t>(kp) * kPairBytes;
  const int64_t n_groups = a.rows / kRowsPerGroup;
  const bool tail_rows = n_groups * kRowsPerGroup < a.rows;
  const TensorType act = vec_dot_type(a.wtype);
  const size_t act_row = *row_bytes(act, static_cast<uint64_t>(a.cols));
  const size_t off = (act_row * static_cast<size_t>(a.n_tokens) + 63) / 64 * 64;
  auto* xs = reinterpret_cast<uint32_t*>(a.scratch + off);
  // Tiles of kTokenTile tokens interleaved ([tile][pair][token in tile]); fewer tokens than one
  // tile are interleaved by their own count (one token: plain pairs).
  const int64_t st = a.n_tokens < kTokenTile ? a.n_tokens : kTokenTile;
  pool.parallel_for(a.n_tokens, kTokenTile, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* src = a.x + t * a.x_stride;
      activation_pairs(src, a.cols, xs + (t / kTokenTile) * kp * st + t % kTokenTile, st);
      if (tail_rows) type_traits(act).from_float(src, a.scratch + static_cast<size_t>(t) * act_row, a.cols);
    }
  });
  if (a.n_tokens == 1) {
    // Decode streams the weights: long contiguous runs for the prefetchers (as the avx512 table).
    pool.parallel_for_guided(n_groups, 2, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) tile_decode(a.packed + static_cast<size_t>(g) * gb, kp, xs, a.y + g * 16);
    });
  } else {
    // Prefill is compute-bound: kGroupTile groups share each activation broadcast.
    pool.parallel_for((n_groups + kGroupTile - 1) / kGroupTile, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t g = kGroupTile * i;
        run_groups(std::min<int64_t>(kGroupTile, n_groups - g), a.packed + static_cast<size_t>(g) * gb, gb, kp, xs,
                   a.n_tokens, a.y + g * kRowsPerGroup, a.y_stride);
      }
    });
  }
  if (tail_rows) {
    dot_rows(a, act_row, type_row(avx2_type_kernels().vec_dot, a.wtype), n_groups * kRowsPerGroup, a.rows);
  }
}

}  // namespace

KernelTable make_avx512bf16_kernels() {
  KernelTable t = base();
  t.name = "avx512bf16";
  t.matmul = &matmul_bf16;
  t.packed_bytes = &packed_bytes_bf16;
  t.pack = &pack_bf16;
  t.scratch_bytes = &scratch_bytes_bf16;
  return t;
}

}  // namespace hearth::kernels
