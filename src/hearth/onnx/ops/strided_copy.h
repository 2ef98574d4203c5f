// Copying one tensor's elements into a new row-major layout through per-dim input strides:
// the one loop behind Transpose (permuted strides), Expand (stride 0 on broadcast dims), Slice
// (a start offset and stepped, possibly negative, strides) and DepthToSpace / SpaceToDepth.
// Elements are moved by size (1, 2, 4 or 8 bytes), so every held type goes through the same
// code. transpose_copy() adds the fast path for permutations that are batched 2-D transposes
// (NCHW <-> NHWC, [B,S,H,D] <-> [B,H,S,D] after merging dims), in cache-sized tiles;
// strided_copy_ref() is the scalar reference the unit tests compare both with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/onnx/tensor.h"

namespace hearth::onnx {

// out[i_0..i_{r-1}] = in[base + sum_d i_d * strides[d]] (offsets in elements of `es` bytes).
void strided_copy(ThreadPool& pool, const std::byte* in, int64_t base, const Shape& out_shape,
                  const std::vector<int64_t>& strides, std::byte* out, size_t es);

// The same, one element at a time.
void strided_copy_ref(const std::byte* in, int64_t base, const Shape& out_shape, const std::vector<int64_t>& strides,
                      std::byte* out, size_t es);

// out = in transposed by `perm` (out dim d is in dim perm[d]); in_shape is the input's shape.
void transpose_copy(ThreadPool& pool, const std::byte* in, const Shape& in_shape, const std::vector<int64_t>& perm,
                    std::byte* out, size_t es);

// Row-major element strides of a shape.
std::vector<int64_t> contiguous_strides(const Shape& shape);

}  // namespace hearth::onnx
