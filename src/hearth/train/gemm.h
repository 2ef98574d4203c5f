// The f32 matrix product the training passes run on: Y[M][N] (+)= X[M][K] · B[K][N], all
// row-major. Register-blocked (4 rows x 16 columns per tile) with an AVX2+FMA variant chosen
// at run time when the CPU has it. Each output element is summed over k in order by one thread,
// so the result does not depend on the thread count or scheduling.
#pragma once

#include <cstdint>

#include "hearth/core/thread_pool.h"

namespace hearth::train {

struct GemmArgs {
  int64_t m, n, k;
  const float* x;  // [m][ldx]
  int64_t ldx;
  const float* b;  // [k][ldb]
  int64_t ldb;
  float* y;  // [m][ldy]
  int64_t ldy;
  bool accumulate;  // y += product (else y = product)
};

void gemm(const GemmArgs& a, ThreadPool& pool);
// The same on the calling thread (for callers that already split work across the pool).
void gemm_serial(const GemmArgs& a);

// The scalar loop (the oracle in tests).
void gemm_ref(const GemmArgs& a);

}  // namespace hearth::train
