// The trained tokenizer and the exported GGUF, read back by hearth's own tokenizer and loader.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "hearth/gguf/gguf.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/tokenizer/tokenizer.h"
#include "hearth/train/bpe_trainer.h"
#include "hearth/train/gguf_export.h"
#include "hearth/train/llama_graph.h"
#include "shared_data.h"

namespace hearth::train {
namespace {

const std::string kCorpus =
    "The little dog ran to the park. The little dog saw a cat.\n"
    "The cat ran up the tree, and the dog sat under the tree all day.\n"
    "At night the dog went home to sleep. The cat came down from the tree.\n";

tokenizer::VocabSpec trained_vocab(int64_t size) {
  auto spec = train_bpe({kCorpus, kCorpus}, BpeOptions{size});
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  return *spec;
}

TEST(BpeTrainer, LlamaLayoutWithByteFallback) {
  const tokenizer::VocabSpec spec = trained_vocab(300);
  ASSERT_EQ(spec.model, "llama");
  ASSERT_GT(spec.tokens.size(), 259u);
  EXPECT_LE(spec.tokens.size(), 300u);
  EXPECT_EQ(spec.tokens[0], "<unk>");
  EXPECT_EQ(spec.tokens[1], "<s>");
  EXPECT_EQ(spec.tokens[2], "</s>");
  EXPECT_EQ(spec.tokens[3], "<0x00>");
  EXPECT_EQ(spec.tokens[258], "<0xFF>");
  // A frequent word became one piece.
  EXPECT_NE(std::find(spec.tokens.begin(), spec.tokens.end(),
                      "\xE2\x96\x81"
                      "the"),
            spec.tokens.end());
}

TEST(BpeTrainer, HearthTokenizerRoundTripsAnyText) {
  auto tok = tokenizer::Tokenizer::create(trained_vocab(300));
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  for (const std::string& text : {kCorpus, std::string("The dog saw naïve café owners ✓ 日本 \x01 tabs\there"),
                                  std::string("  two  spaces and\n\nblank lines\n")}) {
    const auto ids = (*tok)->encode(text, /*add_special=*/true, /*parse_special=*/false);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids[0], 1);                                        // BOS
    EXPECT_EQ((*tok)->decode(std::span(ids).subspan(1)), text);  // without the BOS
  }
  // Merges compress the text they were learned on (bytes per token).
  auto big = tokenizer::Tokenizer::create(trained_vocab(400));
  ASSERT_TRUE(big.ok());
  const auto ids = (*big)->encode(kCorpus, false, false);
  EXPECT_LT(ids.size() * 3, kCorpus.size()) << ids.size() << " tokens";
}

TEST(BpeTrainer, RefusesEmptyTextAndTooSmallVocab) {
  EXPECT_FALSE(train_bpe({""}, BpeOptions{300}).ok());
  EXPECT_FALSE(train_bpe({kCorpus}, BpeOptions{259}).ok());
}

// A small random model: exported, loaded by model::Model, its logits equal the trainer's.
void check_export(TensorType type, float tol) {
  const tokenizer::VocabSpec vocab = trained_vocab(300);
  LlamaShape s;
  s.n_vocab = static_cast<int64_t>(vocab.tokens.size()), s.n_ctx = 16, s.n_embd = 32, s.n_layer = 2;
  s.n_head = 4, s.n_head_kv = 2, s.n_ff = 64, s.tied_output = type == TensorType::F32;
  LlamaParams p(s);
  std::vector<float> w;
  init_params(p, w, 3);
  SplitMix64 rng{9};
  for (float& x : w) x += static_cast<float>(0.2 * rng.normal());

  const auto dir = testing::make_temp_dir("hearth-train-export");
  const std::string path = (dir / "m.gguf").string();
  ASSERT_TRUE(export_gguf(path, p, w.data(), vocab, type, "test").ok());

  auto model = model::Model::load(path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ((*model)->hparams().n_vocab, s.n_vocab);
  auto tok = tokenizer::Tokenizer::from_gguf((*model)->gguf());
  ASSERT_TRUE(tok.ok());
  const auto ids = (*tok)->encode("The dog sat under the tree.", true, false);
  ASSERT_LE(ids.size(), 16u);

  model::ContextParams cp;
  cp.n_ctx = 16, cp.n_threads = 1, cp.kv_type = kernels::KvType::kF32;
  auto ctx = model::Context::create(**model, cp);
  ASSERT_TRUE(ctx.ok());
  std::vector<model::BatchToken> batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.push_back({ids[i], static_cast<int32_t>(i), 0, true});
  ASSERT_TRUE((*ctx)->decode(batch).ok());

  ThreadPool pool(1);
  Ops ops(kernels::active_kernels(), pool);
  LlamaGraph g(p, ops);
  g.forward(w.data(), ids.data(), 1, static_cast<int64_t>(ids.size()));
  double max_diff = 0.0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto got = (*ctx)->logits(static_cast<int>(i));
    for (int64_t v = 0; v < s.n_vocab; ++v) {
      max_diff = std::max(max_diff, std::fabs(double(got[v]) - g.logits()[i * s.n_vocab + v]));
    }
  }
  EXPECT_LT(max_diff, tol) << type_name(type);
  std::filesystem::remove_all(dir);
}

TEST(GgufExport, F32LogitsEqualTrainerLogits) { check_export(TensorType::F32, 1e-4); }
TEST(GgufExport, F16LogitsCloseToTrainerLogits) { check_export(TensorType::F16, 2e-2); }

}  // namespace
}  // namespace hearth::train
