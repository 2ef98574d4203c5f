// The neon-dotprod table: the neon table's dot products (arm/neon/quant_dots.inc) on sdot, four
// int8 products summed into each int32 lane per instruction (FEAT_DotProd). This file alone is
// compiled with +dotprod (kernels/CMakeLists.txt); dispatch.cpp selects the table only when
// HWCAP has ASIMDDP.
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

inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }

#include "hearth/kernels/arm/neon/quant_dots.inc"

const TypeKernels& dotprod_type_kernels() {
  static const TypeKernels k = [] {
    TypeKernels t{};
    set_neon_rows(t);
    return t;
  }();
  return k;
}

void matmul_dotprod(const MatmulArgs& a, ThreadPool& pool) { matmul_rows(a, pool, dotprod_type_kernels()); }

}  // namespace

KernelTable make_neon_dotprod_kernels() {
  KernelTable t{};
  t.name = "neon-dotprod";
  fill_vector_ops_neon(t);
  t.matmul = &matmul_dotprod;
  return t;
}

}  // namespace hearth::kernels
