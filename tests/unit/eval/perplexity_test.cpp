// Perplexity against the reference figures (../shared/reference/perplexity.json): the running
// value after the first windows for every stories260K file (fast), and the full 160-window
// run (slow, PerplexityFull.*). Plus hand-computed log-likelihoods and error cases.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "hearth/core/atomic_file.h"
#include "hearth/eval/perplexity.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/tokenizer/tokenizer.h"
#include "shared_data.h"

namespace hearth::eval {
namespace {

namespace fs = std::filesystem;

TEST(PerplexityTest, NegativeLogLikelihoodByHand) {
  // softmax([0, ln 2, ln 3]) = [1/6, 2/6, 3/6]
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(3.0f)};
  EXPECT_NEAR(negative_log_likelihood(logits, 0), std::log(6.0), 1e-6);
  EXPECT_NEAR(negative_log_likelihood(logits, 2), std::log(2.0), 1e-6);
  // Shifting every logit changes nothing; large values do not overflow.
  const std::vector<float> big = {1000.0f, 1000.0f + std::log(2.0f), 1000.0f + std::log(3.0f)};
  EXPECT_NEAR(negative_log_likelihood(big, 2), std::log(2.0), 1e-4);
}

struct Reference {
  nlohmann::json j;
  fs::path shared;
  std::vector<int32_t> tokens;
};

const Reference& reference(const fs::path& shared) {
  static Reference r = [&] {
    Reference x;
    x.shared = shared;
    std::ifstream in(shared / "reference" / "perplexity.json");
    x.j = nlohmann::json::parse(in);
    auto m = model::Model::load((shared / "models" / "stories260K-f32.gguf").string());
    auto tok = tokenizer::Tokenizer::from_gguf((*m)->gguf());
    auto text = read_file((shared / "models" / "alice_in_wonderland.txt").string());
    x.tokens = (*tok)->encode(*text, true, false);
    return x;
  }();
  return r;
}

Result<PerplexityResult> run(const fs::path& model_path, const std::vector<int32_t>& tokens, int64_t chunks) {
  HEARTH_ASSIGN_OR_RETURN(auto m, model::Model::load(model_path.string()));
  model::ContextParams cp;
  cp.n_ctx = 512;
  cp.n_batch = 512;
  cp.n_threads = 2;
  HEARTH_ASSIGN_OR_RETURN(auto ctx, model::Context::create(*m, cp));
  PerplexityParams p;
  p.n_ctx = 512;
  p.max_chunks = chunks;
  return compute_perplexity(*ctx, tokens, p);
}

const char* kFiles[] = {"stories260K-f32.gguf", "stories260K-F16.gguf", "stories260K-Q8_0.gguf",
                        "stories260K-Q4_0.gguf", "stories260K-Q4_K_M.gguf"};

TEST(PerplexityTest, TokenizationMatchesTheReference) {
  HEARTH_REQUIRE_SHARED(shared);
  const Reference& r = reference(shared);
  EXPECT_EQ(r.tokens.size(), r.j["n_tokens_in_text"].get<size_t>());
}

TEST(PerplexityTest, RunningValueAfterFourWindowsMatches) {
  HEARTH_REQUIRE_SHARED(shared);
  const Reference& r = reference(shared);
  constexpr int kWindows = 4;  // about a second per file on two cores
  for (const char* f : kFiles) {
    auto got = run(shared / "models" / f, r.tokens, kWindows);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    ASSERT_EQ(got->running_ppl.size(), static_cast<size_t>(kWindows));
    EXPECT_EQ(got->n_scored, kWindows * 255);
    const auto& want = r.j["results"][f]["running_ppl_after_each_chunk"];
    for (int i = 0; i < kWindows; ++i) {
      const double w = want[i].get<double>();
      EXPECT_NEAR(got->running_ppl[i], w, 0.01 * w) << f << " window " << i + 1;
    }
  }
}

TEST(PerplexityTest, TooShortATextIsAClearError) {
  HEARTH_REQUIRE_SHARED(shared);
  std::vector<int32_t> few(100, 5);
  auto r = run(shared / "models" / "stories260K-f32.gguf", few, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("fewer than one window"), std::string::npos);
}

// Every window of the text (160 x 512 tokens, about two minutes per file on two cores).
class PerplexityFull : public ::testing::TestWithParam<const char*> {};

TEST_P(PerplexityFull, MatchesTheReference) {
  HEARTH_REQUIRE_SHARED(shared);
  const Reference& r = reference(shared);
  const char* f = GetParam();
  auto got = run(shared / "models" / f, r.tokens, 0);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(got->n_chunks, r.j["n_chunks"].get<int64_t>());
  EXPECT_EQ(got->n_scored, r.j["tokens_scored_total"].get<int64_t>());
  const double ppl = r.j["results"][f]["ppl"].get<double>();
  const double pm = r.j["results"][f]["ppl_plus_minus"].get<double>();
  EXPECT_NEAR(got->ppl, ppl, 0.01 * ppl) << f;
  EXPECT_NEAR(got->ppl_error, pm, 0.02 * pm) << f;
}

INSTANTIATE_TEST_SUITE_P(Stories, PerplexityFull, ::testing::ValuesIn(kFiles), [](const auto& param_info) {
  std::string s = param_info.param;
  s = s.substr(12, s.size() - 12 - 5);  // "stories260K-" ... ".gguf"
  for (char& c : s) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s;
});

}  // namespace
}  // namespace hearth::eval
