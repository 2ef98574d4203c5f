// The neon tables are offered exactly when HWCAP lists their features, and HEARTH_ISA picks
// the table the engine uses. The expected list comes from the caller, who knows the CPU:
// scripts/arm64.sh runs this under qemu-aarch64 -cpu <model> with HEARTH_EXPECT_TABLES set from
// the model's documented features (cortex-a53: ARMv8.0, no dotprod; cortex-a76: dotprod, no
// i8mm; max: both). Without HEARTH_EXPECT_TABLES only the always-true properties are checked.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "hearth/kernels/cpu_features.h"
#include "hearth/kernels/kernel_table.h"

namespace hearth::kernels {
namespace {

std::string table_names() {
  std::string s;
  for (const KernelTable* t : available_kernels()) s += (s.empty() ? "" : ",") + std::string(t->name);
  return s;
}

TEST(Arm64Tables, RefAndNeonAlwaysOffered) {
  EXPECT_TRUE(cpu_features().asimd) << cpu_features().describe();
  ASSERT_NE(kernels_by_name("ref"), nullptr);
  ASSERT_NE(kernels_by_name("neon"), nullptr);
  EXPECT_EQ(kernels_by_name("avx2"), nullptr);
  EXPECT_EQ(available_kernels().front()->name, "ref");
}

TEST(Arm64Tables, OfferedTablesFollowHwcap) {
  const char* want = std::getenv("HEARTH_EXPECT_TABLES");
  if (want == nullptr) GTEST_SKIP() << "HEARTH_EXPECT_TABLES not set (scripts/arm64.sh test sets it per CPU model)";
  EXPECT_EQ(table_names(), want) << "cpu features: " << cpu_features().describe();
  // A table the CPU lacks is never offered by name either.
  EXPECT_EQ(kernels_by_name("neon-i8mm") != nullptr, cpu_features().asimddp && cpu_features().i8mm);
  EXPECT_EQ(kernels_by_name("neon-dotprod") != nullptr, cpu_features().asimddp);
}

TEST(Arm64Tables, HearthIsaSelectsTheTable) {
  const char* isa = std::getenv("HEARTH_ISA");
  if (isa == nullptr || *isa == '\0') {
    EXPECT_EQ(active_kernels().name, available_kernels().back()->name);  // the best one
  } else if (kernels_by_name(isa) != nullptr) {
    EXPECT_EQ(active_kernels().name, isa);
  } else {
    EXPECT_EQ(active_kernels().name, available_kernels().back()->name);  // unavailable: best, with a warning
  }
}

}  // namespace
}  // namespace hearth::kernels
