// Vectorized attention and element-wise ops for the avx2 and avx512 kernel tables. Each ISA's
// definitions live in their own translation unit (x86/avx2/vector_ops.cpp, x86/avx512/vector_ops.cpp),
// compiled with that ISA's flags; this header declares them without any intrinsics so that
// x86/avx2/matmul.cpp / x86/avx512/matmul.cpp can put them in their tables.
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

// Each ISA's attention and element-wise kernels (x86/<isa>/vector_ops.cpp: vector_ops.inc over
// that ISA's vector layer) into a table's slots.
void fill_vector_ops_avx512(KernelTable& t);
void fill_vector_ops_avx2(KernelTable& t);

}  // namespace hearth::kernels
