// The x86 tables' side of the matmul driver (matmul_driver.h): their activation converters and
// the packed paths (activations prepared for the tiles of x86/<isa>/tiles.cpp, the 16-row groups
// handed to the threads). Internal linkage throughout, as in matmul_driver.h: each ISA's
// translation unit compiles its own copy with its own flags. Include only from x86/<isa>/.
#pragma once

#include <cstddef>
#include <cstring>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/fp16.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/matmul_driver.h"
#include "hearth/kernels/quant.h"
#include "hearth/kernels/quant_blocks.h"
#include "hearth/kernels/quant_ref.h"
#include "hearth/kernels/type_kernels.h"
#include "hearth/kernels/type_traits.h"

namespace hearth::kernels {
namespace {

inline void convert_row_q8_0_x86(const float* x, void* dst, int64_t n) {
  ref::quantize_row_q8_0_x86(x, static_cast<BlockQ8_0*>(dst), n);
}

// The x86 tables' activation converters: Q8_0 rounds as ggml's x86 path does, the other
// activation types use the reference quantizers.
inline void set_x86_from_float(TypeKernels& k) {
  set_row(k.from_float, TensorType::F16, type_traits(TensorType::F16).from_float);
  set_row(k.from_float, TensorType::BF16, type_traits(TensorType::BF16).from_float);
  set_row(k.from_float, TensorType::Q8_0, &convert_row_q8_0_x86);
  set_row(k.from_float, TensorType::Q8_1, type_traits(TensorType::Q8_1).from_float);
  set_row(k.from_float, TensorType::Q8_K, type_traits(TensorType::Q8_K).from_float);
}

// Scratch of a packed path: beside the converted rows, each Q8_0/Q8_1 block's float scale,
// quant sum and scaled sum (12 bytes), or for F16/BF16 the activations widened to f32 in whole
// tiles of f32_tile tokens (prepare_packed_float); +64: they start at a 64-byte boundary.
inline size_t packed_scratch_bytes(TensorType wtype, int64_t cols, int64_t n_tokens, int64_t f32_tile) {
  const TensorType act = vec_dot_type(wtype);
  const size_t base = activation_bytes(wtype, cols, n_tokens);
  const auto n = static_cast<size_t>(n_tokens);
  if (act == TensorType::Q8_0 || act == TensorType::Q8_1) return base + static_cast<size_t>(cols / 32) * 12 * n + 64;
  if (act == TensorType::F16 || act == TensorType::BF16) {
    const auto tile = static_cast<size_t>(f32_tile);
    return base + static_cast<size_t>(cols) * 4 * ((n + tile - 1) / tile * tile) + 64;
  }
  return base;
}

// Converts the activations for the packed tiles into scratch (sized by packed_scratch_bytes)
// and describes them in x, a PackedActivations (a template because packed.h must stay out of
// generic code such as ref/ops.cpp). Q8_0/Q8_1: the rows, then each block's scale as a float,
// quant sum and d * sum (Q8_1: its stored s, as the reference dots use it). Q8_K: the rows
// (the tiles read d and bsums from the blocks). Returns false for any other type, having set
// only data, row_bytes and n_tokens: the caller prepares those.
template <class X>
bool prepare_packed_int(const MatmulArgs& a, ThreadPool& pool, const TypeKernels& k, TensorType act_type,
                        size_t act_row, X& x) {
  x.data = a.scratch;
  x.row_bytes = act_row;
  x.n_tokens = a.n_tokens;
  if (act_type == TensorType::Q8_K) {
    x.nb = a.cols / kQK_K;
    convert_activations(a, pool, act_type, act_row, type_row(k.from_float, act_type));
    return true;
  }
  if (act_type != TensorType::Q8_0 && act_type != TensorType::Q8_1) return false;
  // Q8_1 blocks (for Q4_1/Q5_1) carry their quants 2 bytes further on.
  x.nb = a.cols / kQK8_0;
  x.block_bytes = act_type == TensorType::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ8_1);
  x.qs_offset = act_type == TensorType::Q8_0 ? 2 : 4;
  const size_t off = (act_row * static_cast<size_t>(a.n_tokens) + 63) / 64 * 64;
  float* scales = reinterpret_cast<float*>(a.scratch + off);
  int32_t* sums = reinterpret_cast<int32_t*>(scales + a.n_tokens * x.nb);
  float* dsums = reinterpret_cast<float*>(sums + a.n_tokens * x.nb);
  const ConvertRowFn convert = type_row(k.from_float, act_type);
  pool.parallel_for(a.n_tokens, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      std::byte* row = a.scratch + static_cast<size_t>(t) * act_row;
      convert(a.x + t * a.x_stride, row, a.cols);
      for (int64_t b = 0; b < x.nb; ++b) {
        const std::byte* blk = row + static_cast<size_t>(b) * x.block_bytes;
        uint16_t d;
        std::memcpy(&d, blk, 2);  // d leads both block types
        scales[t * x.nb + b] = fp16_to_fp32(d);
        const int8_t* q = x.q8_0(t, b);
        int32_t s = 0;
        for (int i = 0; i < kQK8_0; ++i) s += q[i];
        sums[t * x.nb + b] = s;
        if (act_type == TensorType::Q8_1) {
          uint16_t sh;
          std::memcpy(&sh, blk + 2, 2);
          dsums[t * x.nb + b] = fp16_to_fp32(sh);
        } else {
          dsums[t * x.nb + b] = scales[t * x.nb + b] * static_cast<float>(s);
        }
      }
    }
  });
  x.scales = scales;
  x.sums = sums;
  x.dsums = dsums;
  return true;
}

// One token for prepare_packed_float with the reference rounding (as the plain dots' rows):
// n values of src rounded to act (F16/BF16) into h, and widened back (exactly) to dst[k * st].
inline void f16_row_ref(TensorType act, const float* src, uint16_t* h, float* dst, int64_t st, int64_t n) {
  type_traits(act).from_float(src, h, n);
  for (int64_t k = 0; k < n; ++k) dst[k * st] = act == TensorType::BF16 ? bf16_to_fp32(h[k]) : fp16_to_fp32(h[k]);
}

// F16/BF16 weights (after prepare_packed_int returned false): the activations rounded to
// act_type rows (for the unpacked tail rows) and as f32 for the tiles, interleaved by tiles of
// `tile` tokens as PackedActivations::f32 describes. row(src, h, dst, st) converts one token
// (f16_row_ref or an ISA's faster equivalent).
template <class X, class RowFn>
void prepare_packed_float(const MatmulArgs& a, ThreadPool& pool, size_t act_row, int64_t tile, X& x, RowFn&& row) {
  x.nb = a.cols;
  const size_t off = (act_row * static_cast<size_t>(a.n_tokens) + 63) / 64 * 64;
  float* f = reinterpret_cast<float*>(a.scratch + off);
  const int64_t st = a.n_tokens == 1 ? 1 : tile;
  x.f32_stride = st;
  // Whole tiles per work item: a tile's tokens share cache lines.
  pool.parallel_for(a.n_tokens, tile, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      auto* h = reinterpret_cast<uint16_t*>(a.scratch + static_cast<size_t>(t) * act_row);
      row(a.x + t * a.x_stride, h, f + (t / tile) * a.cols * st + t % tile, st);
    }
  });
  x.f32 = f;
}

// Runs a packed matmul once the activations are prepared: `groups(g0, g1)` computes 16-row
// groups [g0, g1) (an ISA's packed_groups bound to its arguments), the rows past the last full
// group use the ordinary dot.
template <class GroupsFn>
void run_packed_matmul(const MatmulArgs& a, ThreadPool& pool, size_t act_row, int64_t pack_rows, DotFn dot,
                       GroupsFn&& groups) {
  const int64_t n_groups = a.rows / pack_rows;
  if (a.n_tokens <= 4) {
    // Decode streams the weights: long contiguous runs keep the hardware prefetchers going,
    // and the shrinking last pieces keep the threads finishing together.
    pool.parallel_for_guided(n_groups, 2, groups);
  } else {
    pool.parallel_for(n_groups, 1, groups);  // prefill is compute-bound: single groups balance
  }
  if (n_groups * pack_rows < a.rows) dot_rows(a, act_row, dot, n_groups * pack_rows, a.rows);
}

}  // namespace
}  // namespace hearth::kernels
