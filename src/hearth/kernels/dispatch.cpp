// Selects the kernel table once: HEARTH_ISA overrides, otherwise the best table this CPU runs.
// x86: ref, avx2, avx512, avx512bf16. AArch64: ref, neon, neon-dotprod, neon-i8mm (arm/neon/neon.h).
#include <cstdlib>
#include <string>

#include "hearth/core/log.h"
#include "hearth/kernels/cpu_features.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/x86/vector_ops.h"
#if defined(__aarch64__)
#include "hearth/kernels/arm/neon/neon.h"
#endif

namespace hearth::kernels {

#if defined(__x86_64__) || defined(__i386__)
KernelTable make_avx2_kernels();    // x86/avx2/matmul.cpp
KernelTable make_avx512_kernels();  // x86/avx512/matmul.cpp
KernelTable make_avx512bf16_kernels();  // x86/avx512bf16/matmul.cpp
#endif

namespace {

// Fills every null slot of `t` with the ref kernel.
KernelTable complete(KernelTable t) {
  const KernelTable& r = ref_kernels();
  if (!t.matmul) t.matmul = r.matmul;
  if (!t.attention) t.attention = r.attention;
  if (!t.rms_norm) t.rms_norm = r.rms_norm;
  if (!t.layer_norm) t.layer_norm = r.layer_norm;
  if (!t.rope) t.rope = r.rope;
  if (!t.softmax) t.softmax = r.softmax;
  if (!t.swiglu) t.swiglu = r.swiglu;
  if (!t.add) t.add = r.add;
  if (!t.read_sum) t.read_sum = r.read_sum;
  if (!t.scratch_bytes) t.scratch_bytes = r.scratch_bytes;
  return t;
}

// This architecture's tables that the CPU runs, best last (ref is not among them). Each
// table is built on first use only, so no table's code runs on a CPU that lacks its ISA.
#if defined(__x86_64__) || defined(__i386__)
const KernelTable& avx2_table() {
  static const KernelTable t = complete(make_avx2_kernels());
  return t;
}

// The avx512 table also uses VNNI (vpdpbusd); CPUs with AVX-512 but no VNNI get avx2.
bool avx512_ok() { return cpu_features().has_avx512_table() && cpu_features().avx512vnni; }

const KernelTable& avx512_table() {
  static const KernelTable t = complete(make_avx512_kernels());
  return t;
}

// avx512 with F16/BF16 weights on vdpbf16ps, for CPUs with AVX512-BF16.
const KernelTable& avx512bf16_table() {
  static const KernelTable t = complete(make_avx512bf16_kernels());
  return t;
}

std::vector<const KernelTable*> isa_tables() {
  std::vector<const KernelTable*> out;
  if (cpu_features().has_avx2_table()) out.push_back(&avx2_table());
  if (avx512_ok()) out.push_back(&avx512_table());
  if (avx512_ok() && cpu_features().has_avx512bf16_table()) out.push_back(&avx512bf16_table());
  return out;
}
#elif defined(__aarch64__)
// neon on every AArch64 CPU; neon-dotprod with HWCAP ASIMDDP; neon-i8mm with I8MM as well.
std::vector<const KernelTable*> isa_tables() {
  std::vector<const KernelTable*> out;
  const CpuFeatures& f = cpu_features();
  if (f.has_neon_table()) {
    static const KernelTable neon = complete(make_neon_kernels());
    out.push_back(&neon);
  }
  if (f.has_neon_dotprod_table()) {
    static const KernelTable dotprod = complete(make_neon_dotprod_kernels());
    out.push_back(&dotprod);
  }
  if (f.has_neon_i8mm_table()) {
    static const KernelTable i8mm = complete(make_neon_i8mm_kernels());
    out.push_back(&i8mm);
  }
  return out;
}
#else
std::vector<const KernelTable*> isa_tables() { return {}; }
#endif

}  // namespace

// Per thread: ref's n_kv scores, or the fixed tile space of the x86 tables (x86/vector_ops.h),
// so that one scratch buffer serves every table.
size_t attention_scratch_floats(int64_t n_kv, int n_threads) {
  return (static_cast<size_t>(n_kv) + kAttentionTileScratchFloats) * static_cast<size_t>(n_threads > 0 ? n_threads : 1);
}

const KernelTable* kernels_by_name(std::string_view name) {
  for (const KernelTable* t : available_kernels())
    if (t->name == name) return t;
  return nullptr;
}

std::vector<const KernelTable*> available_kernels() {
  std::vector<const KernelTable*> out{&ref_kernels()};
  for (const KernelTable* t : isa_tables()) out.push_back(t);
  return out;
}

const KernelTable& active_kernels() {
  static const KernelTable* table = [] {
    if (const char* env = std::getenv("HEARTH_ISA"); env != nullptr && *env != '\0') {
      if (const KernelTable* t = kernels_by_name(env)) return t;
      log::warn("HEARTH_ISA={} is not available on this build or CPU; using the best available", env);
    }
    return available_kernels().back();
  }();
  return *table;
}

}  // namespace hearth::kernels
