// Test helpers for data in ../shared (beside the repo root): models, references, vectors.
// Under CI=true a missing ../shared is a failure; elsewhere the test is skipped with a message.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>

namespace hearth::testing {

// $HEARTH_SHARED, else <source dir>/../shared; nullopt if it does not exist.
std::optional<std::filesystem::path> shared_dir();
bool running_in_ci();
// A fresh temporary directory, removed by the caller (or left in /tmp).
std::filesystem::path make_temp_dir(const std::string& prefix);
// A whole file's bytes ("" when it cannot be read: the comparison that follows fails).
std::string read_text(const std::filesystem::path& path);

}  // namespace hearth::testing

// Binds `var` to the shared directory, or skips (fails under CI=true) the current test.
#define HEARTH_REQUIRE_SHARED(var)                                                 \
  auto hearth_shared_opt_ = ::hearth::testing::shared_dir();                       \
  if (!hearth_shared_opt_) {                                                       \
    if (::hearth::testing::running_in_ci()) {                                      \
      FAIL() << "../shared is missing; it is required under CI=true";              \
    }                                                                              \
    GTEST_SKIP() << "../shared not found (set HEARTH_SHARED); skipping data test"; \
  }                                                                                \
  const std::filesystem::path var = *hearth_shared_opt_
