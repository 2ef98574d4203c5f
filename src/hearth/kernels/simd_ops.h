// Vectorized attention and element-wise ops for the avx2 and avx512 kernel tables. Each ISA's
// definitions live in their own translation unit (attention_avx2.cpp, attention_avx512.cpp),
// compiled with that ISA's flags; this header declares them without any intrinsics so that
// ops_avx2.cpp / ops_avx512.cpp can put them in their tables.
#pragma once

#include <cstddef>
#include <cstdint>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kernel_table.h"

namespace hearth::kernels {

// Floats of per-thread working space the tiled attention kernels use (transposed query block,
// score tile, output accumulators, converted K/V tiles). attention_scratch_floats adds this to
// ref's n_kv floats per thread, so one scratch buffer serves every table.
inline constexpr size_t kAttentionTileScratchFloats = size_t{64} * 1024;

void attention_avx512(const AttentionArgs& a, ThreadPool& pool);
void rms_norm_avx512(float* y, const float* x, const float* w, int64_t n, float eps);
void layer_norm_avx512(float* y, const float* x, const float* w, const float* b, int64_t n, float eps);
void rope_avx512(float* x, int n_head, int head_dim, int n_rot, const float* cos_sin, RopeMode mode);
void softmax_avx512(float* x, int64_t n);
void swiglu_avx512(float* gate, const float* up, int64_t n);
void add_avx512(float* y, const float* x, int64_t n);

void attention_avx2(const AttentionArgs& a, ThreadPool& pool);
void rms_norm_avx2(float* y, const float* x, const float* w, int64_t n, float eps);
void layer_norm_avx2(float* y, const float* x, const float* w, const float* b, int64_t n, float eps);
void rope_avx2(float* x, int n_head, int head_dim, int n_rot, const float* cos_sin, RopeMode mode);
void softmax_avx2(float* x, int64_t n);
void swiglu_avx2(float* gate, const float* up, int64_t n);
void add_avx2(float* y, const float* x, int64_t n);

}  // namespace hearth::kernels
