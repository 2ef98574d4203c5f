#include "shared_data.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <random>

namespace hearth::testing {

std::optional<std::filesystem::path> shared_dir() {
  std::filesystem::path p;
  if (const char* env = std::getenv("HEARTH_SHARED"); env != nullptr && *env != '\0') {
    p = env;
  } else {
    p = std::filesystem::path(HEARTH_SOURCE_DIR) / ".." / "shared";
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(p / "models", ec)) return std::nullopt;
  return std::filesystem::weakly_canonical(p, ec);
}

bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::filesystem::path make_temp_dir(const std::string& prefix) {
  std::random_device rd;
  for (int i = 0; i < 100; ++i) {
    auto p = std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(rd()));
    std::error_code ec;
    if (std::filesystem::create_directory(p, ec)) return p;
  }
  return std::filesystem::temp_directory_path();
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace hearth::testing
