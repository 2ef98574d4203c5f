// The matmul loop shared by the kernel tables: convert the activations once, then hand out
// blocks of weight rows to the threads; each block is dotted with every token's activations
// while it is hot in cache. Everything here has internal linkage on purpose: each ISA's
// translation unit gets its own copy compiled with its own flags (no ODR merging of an AVX2
// instantiation into the ref path).
#pragma once

#include <cstddef>
#include <cstring>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/fp16.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/quant.h"
#include "hearth/kernels/quant_blocks.h"
#include "hearth/kernels/type_kernels.h"
#include "hearth/kernels/type_traits.h"

namespace hearth::kernels {
namespace {

using ConvertRowFn = FromFloatFn;
using DotFn = VecDotFn;
using Dot4Fn = VecDot4Fn;

// Bytes of the converted activations alone: n_tokens rows of vec_dot_type(wtype).
inline size_t activation_bytes(TensorType wtype, int64_t cols, int64_t n_tokens) {
  auto rb = row_bytes(vec_dot_type(wtype), static_cast<uint64_t>(cols));
  return rb ? *rb * static_cast<size_t>(n_tokens) : 0;
}

// Converts every token's activations into scratch rows of act_row bytes.
inline void convert_activations(const MatmulArgs& a, ThreadPool& pool, TensorType act_type, size_t act_row,
                                ConvertRowFn convert) {
  pool.parallel_for(a.n_tokens, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      void* dst = a.scratch + static_cast<size_t>(t) * act_row;
      if (act_type == TensorType::F32) {
        std::memcpy(dst, a.x + t * a.x_stride, static_cast<size_t>(a.cols) * sizeof(float));
      } else {
        convert(a.x + t * a.x_stride, dst, a.cols);
      }
    }
  });
}

// Rows [r0, r1) of y for every token, one dot product per output.
inline void dot_rows(const MatmulArgs& a, size_t act_row, DotFn dot, int64_t r0, int64_t r1) {
  for (int64_t t = 0; t < a.n_tokens; ++t) {
    const std::byte* xq = a.scratch + static_cast<size_t>(t) * act_row;
    float* y = a.y + t * a.y_stride;
    for (int64_t r = r0; r < r1; ++r) y[r] = dot(a.cols, a.w + static_cast<size_t>(r) * a.w_row_bytes, xq);
  }
}

inline void matmul_drive(const MatmulArgs& a, ThreadPool& pool, TensorType act_type, size_t act_row,
                         ConvertRowFn convert, DotFn dot, Dot4Fn dot4 = nullptr) {
  convert_activations(a, pool, act_type, act_row, convert);
  // Rows per work item: enough to amortise the counter, small enough to balance 2..64 threads.
  const int64_t grain = a.rows >= 4096 ? 32 : 8;
  pool.parallel_for(a.rows, grain, [&](int64_t r0, int64_t r1) {
    int64_t t = 0;
    if (dot4 != nullptr) {
      for (; t + 4 <= a.n_tokens; t += 4) {
        const void* xs[4];
        for (int j = 0; j < 4; ++j) xs[j] = a.scratch + static_cast<size_t>(t + j) * act_row;
        for (int64_t r = r0; r < r1; ++r) {
          float out[4];
          dot4(a.cols, a.w + static_cast<size_t>(r) * a.w_row_bytes, xs, out);
          for (int j = 0; j < 4; ++j) a.y[(t + j) * a.y_stride + r] = out[j];
        }
      }
    }
    for (; t < a.n_tokens; ++t) {
      const std::byte* xq = a.scratch + static_cast<size_t>(t) * act_row;
      float* y = a.y + t * a.y_stride;
      for (int64_t r = r0; r < r1; ++r) y[r] = dot(a.cols, a.w + static_cast<size_t>(r) * a.w_row_bytes, xq);
    }
  });
}

}  // namespace
}  // namespace hearth::kernels
