// Runs the `hearth inspect` binary on shared files: text and --json output, and a missing file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "run_command.h"
#include "shared_data.h"

namespace {

struct RunResult {
  int exit_code = -1;
  std::string out;
};

RunResult run(const std::string& args) {
  auto c = hearth::testing::run_command(std::string(HEARTH_CLI_PATH) + " " + args + " 2>/dev/null");
  return {c.exit_code, std::move(c.out)};
}

TEST(InspectCli, TextOutput) {
  HEARTH_REQUIRE_SHARED(shared);
  auto r = run("inspect " + (shared / "models" / "stories260K-Q8_0.gguf").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("llama.embedding_length"), std::string::npos);
  EXPECT_NE(r.out.find("[string x 512]"), std::string::npos);  // the vocab is abbreviated
  EXPECT_NE(r.out.find("blk.0.ffn_down.weight"), std::string::npos);
  EXPECT_NE(r.out.find("48 tensors"), std::string::npos);
}

TEST(InspectCli, JsonOutputParses) {
  HEARTH_REQUIRE_SHARED(shared);
  auto r = run("inspect --json " + (shared / "models" / "stories260K-Q8_0.gguf").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(r.out)) << r.out.substr(0, 400);
  EXPECT_EQ(j["metadata"]["llama.block_count"]["value"], 5);
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["count"], 512);
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.tokens"]["elem_type"], "string");
  EXPECT_LE(j["metadata"]["tokenizer.ggml.tokens"]["head"].size(), 8u);
  ASSERT_EQ(j["tensors"].size(), 48u);
  EXPECT_EQ(j["totals"]["n_tensors"], 48);
  bool found = false;
  for (const auto& t : j["tensors"]) {
    if (t["name"] == "blk.0.ffn_down.weight") {
      found = true;
      EXPECT_EQ(t["type"], "f16");
      EXPECT_EQ(t["shape"], nlohmann::json::array({172, 64}));
      EXPECT_EQ(t["bytes"], 172 * 64 * 2);
    }
  }
  EXPECT_TRUE(found);
}

TEST(InspectCli, VocabOnlyFile) {
  HEARTH_REQUIRE_SHARED(shared);
  auto r = run("inspect --json " + (shared / "tokenizer-vectors" / "ggml-vocab-gpt-2.gguf").string());
  ASSERT_EQ(r.exit_code, 0);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tensors"].size(), 0u);
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.model"]["value"], "gpt2");
  auto text = run("inspect " + (shared / "tokenizer-vectors" / "ggml-vocab-gpt-2.gguf").string());
  EXPECT_EQ(text.exit_code, 0);
}

TEST(InspectCli, MissingFileFails) {
  auto r = run("inspect /nonexistent/model.gguf");
  EXPECT_NE(r.exit_code, 0);
}

}  // namespace
