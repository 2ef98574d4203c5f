// The f32 matrix product under MatMul, Gemm and the recurrent ops (ops/matmul.cpp):
// Y[M][N] = A[M][K] · B[K][N], with A read through a row and a column stride (so a transposed
// A costs nothing) and B row-major. Register-blocked tiles of MR rows x 2 vectors of columns,
// k in blocks that keep the B strip in cache; at most 4 rows (a matrix-vector product) stream
// each B row instead. The variant follows the kernel table's ISA (ref: 4-wide generic vectors,
// avx2: 8-wide with FMA, avx512: 16-wide). Each output is summed in k order by one thread, so
// gemm_f32 and gemm_f32_serial agree bit for bit. gemm_f32_ref is the scalar oracle of the tests.
#pragma once

#include <cstdint>

#include "hearth/core/thread_pool.h"

namespace hearth::kernels {
struct KernelTable;
}

namespace hearth::onnx {

struct GemmF32 {
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;  // A(i, p) = a[i * a_row + p * a_col]
  int64_t a_row = 0, a_col = 1;
  const float* b = nullptr;  // B(p, j) = b[p * ldb + j]
  int64_t ldb = 0;
  float* y = nullptr;  // Y(i, j) = y[i * ldy + j], overwritten
  int64_t ldy = 0;
};

// Spreads the tiles over `pool` (nothing is allocated on the pool's threads).
void gemm_f32(const GemmF32& g, ThreadPool& pool, const kernels::KernelTable& kt);
// The same on the calling thread only (for callers that split work across the pool themselves).
void gemm_f32_serial(const GemmF32& g, const kernels::KernelTable& kt);
void gemm_f32_ref(const GemmF32& g);

}  // namespace hearth::onnx
