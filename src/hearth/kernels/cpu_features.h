// Run-time CPU feature detection, used once to select the kernel table. x86: CPUID plus XGETBV,
// so that an ISA is used only when the OS also saves its registers. AArch64: the kernel's
// HWCAP words (getauxval), which list only what the kernel enables for user space.
#pragma once

#include <string>

namespace hearth::kernels {

struct CpuFeatures {
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool avx_vnni = false;
  bool os_avx = false;     // XCR0 has SSE and AVX state
  bool os_avx512 = false;  // XCR0 has opmask and ZMM state
  bool asimd = false;      // AArch64 Advanced SIMD (HWCAP_ASIMD; every AArch64 CPU)
  bool asimddp = false;    // sdot/udot (HWCAP_ASIMDDP, FEAT_DotProd)
  bool i8mm = false;       // smmla/ummla (HWCAP2_I8MM, FEAT_I8MM)

  bool has_avx2_table() const { return os_avx && avx2 && fma && f16c; }
  bool has_avx512_table() const { return has_avx2_table() && os_avx512 && avx512f && avx512bw && avx512vl && avx512dq; }
  // The avx512 table (with VNNI) plus vdpbf16ps / vcvtne2ps2bf16.
  bool has_avx512bf16_table() const { return has_avx512_table() && avx512vnni && avx512bf16; }
  bool has_neon_table() const { return asimd; }
  bool has_neon_dotprod_table() const { return asimd && asimddp; }
  bool has_neon_i8mm_table() const { return has_neon_dotprod_table() && i8mm; }
  std::string describe() const;
};

const CpuFeatures& cpu_features();

}  // namespace hearth::kernels
