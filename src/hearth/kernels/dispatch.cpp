// Selects the kernel table once: HEARTH_ISA overrides, otherwise the best table this CPU runs.
#include <cstdlib>
#include <string>

#include "hearth/core/log.h"
#include "hearth/kernels/kernel_table.h"

namespace hearth::kernels {

const KernelTable* kernels_by_name(std::string_view name) {
  if (name == "ref") return &ref_kernels();
  return nullptr;
}

const KernelTable& active_kernels() {
  static const KernelTable* table = [] {
    if (const char* env = std::getenv("HEARTH_ISA"); env != nullptr && *env != '\0') {
      if (const KernelTable* t = kernels_by_name(env)) return t;
      log::warn("HEARTH_ISA={} is not available on this build or CPU; using ref", env);
    }
    return &ref_kernels();
  }();
  return *table;
}

}  // namespace hearth::kernels
