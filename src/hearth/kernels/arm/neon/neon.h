// The neon kernel tables (AArch64): declarations without intrinsics, so that dispatch.cpp can
// name them. Three tables share one layout and differ in their integer dot instruction:
//   neon          base ARMv8-A Advanced SIMD (smull + sadalp), any AArch64 CPU
//   neon-dotprod  sdot (FEAT_DotProd, HWCAP_ASIMDDP), -march=armv8.2-a+dotprod on its file only
//   neon-i8mm     neon-dotprod plus smmla 2x2 tiles (FEAT_I8MM, HWCAP2_I8MM) for prefill
// Each table's files are compiled with their own flags (kernels/CMakeLists.txt), so the binary
// runs on any ARMv8-A CPU and picks the table from HWCAP at run time.
// Per-op fallback: the vector ops and attention (arm/neon/vector_ops.cpp) are NEON in all
// three; a weight type without a NEON dot (Q2_K, Q3_K) goes through ref's row (reference
// activation conversion and dot), and null KernelTable slots are filled with ref's by
// dispatch.cpp.
#pragma once

#include "hearth/kernels/kernel_table.h"

namespace hearth::kernels {

void fill_vector_ops_neon(KernelTable& t);  // arm/neon/vector_ops.cpp
KernelTable make_neon_kernels();            // arm/neon/matmul.cpp
KernelTable make_neon_dotprod_kernels();    // arm/neon/dotprod.cpp
KernelTable make_neon_i8mm_kernels();       // arm/neon/i8mm.cpp

}  // namespace hearth::kernels
