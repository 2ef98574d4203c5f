// The neon table: base ARMv8-A Advanced SIMD, which every AArch64 CPU has, so this file takes
// no extra -march flags. Integer dots widen with smull (int8 x int8 -> int16, exact) and add
// pairs into int32 lanes with sadalp. The dot products are arm/neon/quant_dots.inc's.
#include <arm_neon.h>

#include <cstring>
#include <type_traits>

#include "hearth/kernels/arm/neon/neon.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/matmul_driver.h"
#include "hearth/kernels/quant.h"
#include "hearth/kernels/quant_blocks.h"
#include "hearth/kernels/type_kernels.h"
#include "hearth/kernels/type_traits.h"

namespace hearth::kernels {
namespace {

inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
  return vpadalq_s16(acc, vmull_high_s8(a, b));
}

#include "hearth/kernels/arm/neon/quant_dots.inc"

const TypeKernels& neon_type_kernels() {
  static const TypeKernels k = [] {
    TypeKernels t{};
    set_neon_rows(t);
    return t;
  }();
  return k;
}

void matmul_neon(const MatmulArgs& a, ThreadPool& pool) { matmul_rows(a, pool, neon_type_kernels()); }

}  // namespace

// Null slots are completed with ref kernels in dispatch.cpp.
KernelTable make_neon_kernels() {
  KernelTable t{};
  t.name = "neon";
  fill_vector_ops_neon(t);
  t.matmul = &matmul_neon;
  return t;
}

}  // namespace hearth::kernels
