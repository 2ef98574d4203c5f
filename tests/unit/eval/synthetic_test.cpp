// Synthetic presets: each preset's file loads through its family's own loader and generates.
// The presets are 1-4 GB, so the test writes each one's miniature() (the same architecture,
// tensors and keys, a few MB) with the Q4_K_M recipe, and checks the real shapes' numbers
// against the models' published config.json values separately.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "hearth/eval/synthetic.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/quantize/quantize_model.h"
#include "shared_data.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

// config.json values of the real models (hidden_size, num_hidden_layers, num_attention_heads,
// num_key_value_heads, head_dim, intermediate_size, vocab_size, rope_theta, tie_word_embeddings).
struct Published {
  const char* preset;
  const char* arch;
  int64_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab;
  float rope_base;
  bool tied;
};
constexpr Published kPublished[] = {
    {"qwen3-1.7b", "qwen3", 2048, 28, 16, 8, 128, 6144, 151936, 1e6f, true},
    {"gemma3-1b", "gemma3", 1152, 26, 4, 1, 256, 6912, 262144, 1e6f, true},
    {"phi3-mini", "phi3", 3072, 32, 32, 32, 96, 8192, 32064, 1e4f, false},
    {"llama3.2-1b", "llama", 2048, 16, 32, 8, 64, 8192, 128256, 5e5f, true},
};

TEST(SyntheticPresets, HaveThePublishedShapes) {
  for (const auto& want : kPublished) {
    SCOPED_TRACE(want.preset);
    const auto* p = eval::find_preset(want.preset);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->arch, want.arch);
    EXPECT_EQ(p->n_embd, want.n_embd);
    EXPECT_EQ(p->n_layer, want.n_layer);
    EXPECT_EQ(p->n_head, want.n_head);
    EXPECT_EQ(p->n_head_kv, want.n_head_kv);
    EXPECT_EQ(p->head_dim, want.head_dim);
    EXPECT_EQ(p->n_ff, want.n_ff);
    EXPECT_EQ(p->n_vocab, want.n_vocab);
    EXPECT_EQ(p->rope_base, want.rope_base);
    EXPECT_EQ(p->tied_output, want.tied);
  }
  const auto* g = eval::find_preset("gemma3-1b");  // sliding_window 512, pattern 6, rope_local_base_freq 1e4
  EXPECT_EQ(g->n_swa, 512);
  EXPECT_EQ(g->swa_pattern, 6);
  EXPECT_EQ(g->rope_base_swa, 10000.0f);
  EXPECT_EQ(eval::find_preset("llama3.2-1b")->llama3_rope_factor, 32.0f);  // rope_scaling.factor
}

class SyntheticModelTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { dir_ = testing::make_temp_dir("hearth-synthetic"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_P(SyntheticModelTest, MiniatureLoadsAndGenerates) {
  const auto* preset = eval::find_preset(GetParam());
  ASSERT_NE(preset, nullptr);
  const eval::SyntheticPreset p = eval::miniature(*preset);
  auto recipe = quantize::synthetic_recipe("q4_k_m", p);
  ASSERT_TRUE(recipe.ok()) << recipe.status().to_string();
  const std::string path = (dir_ / "mini.gguf").string();
  ASSERT_TRUE(eval::write_synthetic_model(p, path, recipe->choose, 2).ok());

  auto m = model::Model::load(path);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const model::HParams& hp = (*m)->hparams();
  EXPECT_EQ(hp.arch, preset->arch);
  EXPECT_EQ(hp.n_layer, p.n_layer);
  EXPECT_EQ(hp.head_dim, 32);
  EXPECT_EQ(hp.n_head / hp.n_head_kv, preset->n_head / preset->n_head_kv);
  EXPECT_EQ(hp.n_vocab, 512);
  EXPECT_EQ(hp.n_expert, p.n_expert);
  const model::ModelWeights& w = (*m)->weights();
  EXPECT_EQ(w.output.data == w.token_embd.data, preset->tied_output);
  EXPECT_EQ(w.rope_freqs.valid(), preset->llama3_rope_factor > 0.0f);
  EXPECT_EQ(w.layers[0].attn_q_norm.valid(), preset->arch == "qwen3" || preset->arch == "gemma3");
  EXPECT_EQ(w.layers[0].wqkv.valid(), preset->arch == "phi3");
  if (preset->n_swa > 0) {
    EXPECT_EQ(hp.n_swa, 16);
    EXPECT_EQ(hp.rope_freq_base_swa, preset->rope_base_swa);
    // gemma3's pattern of 6: layers 0-4 slide, 5 is global, 6 slides.
    for (int64_t il = 0; il < hp.n_layer; ++il) EXPECT_EQ(hp.is_swa(il), il % 6 != 5) << "layer " << il;
  }

  model::ContextParams cp;
  cp.n_ctx = 32;
  cp.n_threads = 2;
  auto c = model::Context::create(**m, cp);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  std::vector<model::BatchToken> prompt;
  for (int i = 0; i < 5; ++i) prompt.push_back({(i * 37 + 11) % 512, i, 0, i == 4});
  ASSERT_TRUE((*c)->decode(prompt).ok());
  int32_t pos = 5;
  for (int step = 0; step < 4; ++step) {
    auto logits = (*c)->logits(0);
    ASSERT_EQ(logits.size(), 512u);
    int32_t best = 0;
    for (size_t j = 0; j < logits.size(); ++j) {
      ASSERT_TRUE(std::isfinite(logits[j])) << "step " << step << " id " << j;
      if (logits[j] > logits[static_cast<size_t>(best)]) best = static_cast<int32_t>(j);
    }
    model::BatchToken next{best, pos++, 0, true};
    ASSERT_TRUE((*c)->decode({&next, 1}).ok());
  }
}

INSTANTIATE_TEST_SUITE_P(AllPresets, SyntheticModelTest,
                         ::testing::Values("1b", "3b", "7b", "8x7b", "qwen3-1.7b", "gemma3-1b", "phi3-mini",
                                           "llama3.2-1b"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (auto& ch : n)
                             if (ch == '.' || ch == '-') ch = '_';
                           return "p" + n;
                         });

}  // namespace
}  // namespace hearth
