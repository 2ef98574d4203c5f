// `hearth bench` end to end: the JSON report has the keys and sane values the speed issue asks
// for, on a GGUF file written by another tool; it is reproducible; synthetic models that do not
// fit in RAM are refused with the estimate before anything is written; bad arguments give one
// error line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_helpers.h"
#include "shared_data.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

using cli_test::count_error_lines;
using cli_test::ends_with_error_line;
using cli_test::run;

nlohmann::json bench_json(const std::string& args) {
  const auto o = run("bench " + args + " --json");
  EXPECT_EQ(o.exit_code, 0) << o.err;
  auto j = nlohmann::json::parse(o.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not one JSON object: " << o.out;
  return j;
}

TEST(CliBench, JsonReportOnAnotherToolsFile) {
  HEARTH_REQUIRE_SHARED(shared);
  // stories260K-Q4_K_M.gguf was written by the reference implementation's quantizer.
  const fs::path model = shared / "models" / "stories260K-Q4_K_M.gguf";
  const auto j = bench_json(model.string() + " -p 32 -n 16 -r 2 -t 2");
  ASSERT_TRUE(j.is_object());
  for (const char* key :
       {"prefill_tok_s", "decode_tok_s", "decode_gb_s", "isa", "threads", "peak_rss_mb", "logits_checksum",
        "read_bandwidth_gb_s", "decode_bandwidth_fraction", "repacked_mb", "kept_stored_mb"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_GT(j["prefill_tok_s"].get<double>(), 0.0);
  EXPECT_GT(j["decode_tok_s"].get<double>(), 0.0);
  EXPECT_GT(j["decode_gb_s"].get<double>(), 0.0);
  EXPECT_GT(j["read_bandwidth_gb_s"].get<double>(), 0.0);
  EXPECT_EQ(j["threads"].get<int>(), 2);
  EXPECT_EQ(j["reps"].get<int>(), 2);
  const std::string isa = j["isa"];
  EXPECT_TRUE(isa == "ref" || isa == "avx2" || isa == "avx512" || isa == "avx512bf16") << isa;
  // The memory bound: file + KV cache (48 tokens of a 260K model: tiny) + 200 MB.
  const double file_mb = static_cast<double>(fs::file_size(model)) / 1048576.0;
  EXPECT_GT(j["peak_rss_mb"].get<double>(), file_mb);
  EXPECT_LT(j["peak_rss_mb"].get<double>(), file_mb + 200.0);
  const std::string sum = j["logits_checksum"];
  EXPECT_EQ(sum.size(), 16u);
  EXPECT_EQ(sum.find_first_not_of("0123456789abcdef"), std::string::npos) << sum;
  // The same file, arguments and ISA give the same greedy tokens: the checksum is reproducible.
  const auto again = bench_json(model.string() + " -p 32 -n 16 -r 1 -t 1 --no-bandwidth");
  EXPECT_EQ(again["logits_checksum"], j["logits_checksum"]);
  EXPECT_EQ(again["threads"].get<int>(), 1);
}

TEST(CliBench, SyntheticModelThatDoesNotFitIsRefusedWithTheEstimate) {
  // 8x7b in F16 is about 46.7e9 weights x 2 bytes = 87 GiB: more than this test's machines
  // have (CI has 24 GiB). Above 128 GiB of RAM it would be built, so the check cannot run.
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  const double ram_gib = static_cast<double>(pages) * static_cast<double>(page) / (1024.0 * 1024 * 1024);
  if (ram_gib > 128.0) GTEST_SKIP() << "this machine has " << ram_gib << " GiB: an 8x7b F16 model would fit";
  const fs::path cache = testing::make_temp_dir("hearth-bench-cache");
  ASSERT_EQ(setenv("XDG_CACHE_HOME", cache.c_str(), 1), 0);
  const auto o = run("bench --synthetic 8x7b --type f16 --no-bandwidth");
  unsetenv("XDG_CACHE_HOME");
  EXPECT_NE(o.exit_code, 0);
  EXPECT_TRUE(ends_with_error_line(o.err)) << o.err;
  EXPECT_NE(o.err.find("does not fit"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("MiB"), std::string::npos) << o.err;
  // Nothing was written to the cache.
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::recursive_directory_iterator(cache)) ++files;
  EXPECT_EQ(files, 0u);
  fs::remove_all(cache);
}

TEST(CliBench, BadArgumentsGiveOneErrorLine) {
  for (const char* args : {"bench --synthetic 13b", "bench --synthetic 1b --type q9_9", "bench /nonexistent/m.gguf"}) {
    const auto o = run(args);
    EXPECT_NE(o.exit_code, 0) << args;
    EXPECT_EQ(count_error_lines(o.err), 1) << args << ": " << o.err;
  }
}

}  // namespace
}  // namespace hearth
