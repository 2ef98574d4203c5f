#include "hearth/train/gemm.h"

#include <algorithm>

namespace hearth::train {
namespace {

constexpr int64_t kTileM = 4;
constexpr int64_t kTileN = 16;

// One output strip [m0, m1) x [n0, n0 + 16) with full tiles of 4 rows, then single rows.
// Written with GCC vector types: each variant below compiles it for its own ISA.
typedef float v8 __attribute__((vector_size(32)));

// always_inline: the body is compiled inside each caller, with the caller's target ISA.
__attribute__((always_inline)) inline void strip_body(const GemmArgs& a, int64_t n0, int64_t m0, int64_t m1) {
  const int64_t K = a.k;
  int64_t m = m0;
  for (; m + kTileM <= m1; m += kTileM) {
    v8 acc[kTileM][2] = {};
    const float* x0 = a.x + m * a.ldx;
    for (int64_t k = 0; k < K; ++k) {
      v8 b0, b1;
      __builtin_memcpy(&b0, a.b + k * a.ldb + n0, 32);
      __builtin_memcpy(&b1, a.b + k * a.ldb + n0 + 8, 32);
      for (int i = 0; i < kTileM; ++i) {
        const float xv = x0[i * a.ldx + k];
        acc[i][0] += xv * b0;
        acc[i][1] += xv * b1;
      }
    }
    for (int i = 0; i < kTileM; ++i) {
      float* y = a.y + (m + i) * a.ldy + n0;
      if (a.accumulate) {
        v8 y0, y1;
        __builtin_memcpy(&y0, y, 32);
        __builtin_memcpy(&y1, y + 8, 32);
        acc[i][0] += y0;
        acc[i][1] += y1;
      }
      __builtin_memcpy(y, &acc[i][0], 32);
      __builtin_memcpy(y + 8, &acc[i][1], 32);
    }
  }
  for (; m < m1; ++m) {
    v8 acc0 = {}, acc1 = {};
    for (int64_t k = 0; k < K; ++k) {
      v8 b0, b1;
      __builtin_memcpy(&b0, a.b + k * a.ldb + n0, 32);
      __builtin_memcpy(&b1, a.b + k * a.ldb + n0 + 8, 32);
      const float xv = a.x[m * a.ldx + k];
      acc0 += xv * b0;
      acc1 += xv * b1;
    }
    float* y = a.y + m * a.ldy + n0;
    if (a.accumulate) {
      v8 y0, y1;
      __builtin_memcpy(&y0, y, 32);
      __builtin_memcpy(&y1, y + 8, 32);
      acc0 += y0;
      acc1 += y1;
    }
    __builtin_memcpy(y, &acc0, 32);
    __builtin_memcpy(y + 8, &acc1, 32);
  }
}

void strip_default(const GemmArgs& a, int64_t n0, int64_t m0, int64_t m1) { strip_body(a, n0, m0, m1); }

__attribute__((target("avx2,fma"))) void strip_avx2(const GemmArgs& a, int64_t n0, int64_t m0, int64_t m1) {
  strip_body(a, n0, m0, m1);
}

// Columns past the last full strip of 16: plain loops, same k order.
void tail_columns(const GemmArgs& a, int64_t n0, int64_t m0, int64_t m1) {
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t n = n0; n < a.n; ++n) {
      float s = 0.0f;
      for (int64_t k = 0; k < a.k; ++k) s += a.x[m * a.ldx + k] * a.b[k * a.ldb + n];
      float* y = a.y + m * a.ldy + n;
      *y = a.accumulate ? *y + s : s;
    }
  }
}

using StripFn = void (*)(const GemmArgs&, int64_t, int64_t, int64_t);

StripFn pick_strip() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &strip_avx2 : &strip_default;
}

}  // namespace

void gemm_ref(const GemmArgs& a) { tail_columns(a, 0, 0, a.m); }

const StripFn kStrip = pick_strip();

void gemm_serial(const GemmArgs& a) {
  if (a.m <= 0 || a.n <= 0) return;
  const int64_t n_full = a.n / kTileN * kTileN;
  for (int64_t n0 = 0; n0 < n_full; n0 += kTileN) kStrip(a, n0, 0, a.m);
  if (n_full < a.n) tail_columns(a, n_full, 0, a.m);
}

void gemm(const GemmArgs& a, ThreadPool& pool) {
  if (a.m <= 0 || a.n <= 0) return;
  const StripFn strip = kStrip;
  const int64_t n_strips = a.n / kTileN;
  // Work items: column strips x row blocks of 64 (the B strip stays in cache across a block).
  constexpr int64_t kRowsPerItem = 64;
  const int64_t row_blocks = (a.m + kRowsPerItem - 1) / kRowsPerItem;
  const bool tail = n_strips * kTileN < a.n;
  const int64_t items = (n_strips + (tail ? 1 : 0)) * row_blocks;
  pool.parallel_for(items, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t s = i / row_blocks, rb = i % row_blocks;
      const int64_t m0 = rb * kRowsPerItem, m1 = std::min(a.m, m0 + kRowsPerItem);
      if (s < n_strips) {
        strip(a, s * kTileN, m0, m1);
      } else {
        tail_columns(a, n_strips * kTileN, m0, m1);
      }
    }
  });
}

}  // namespace hearth::train
