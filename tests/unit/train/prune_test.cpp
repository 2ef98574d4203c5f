// Pruning: removing nothing changes nothing; 30% of stories260K's FFN neurons (by activation
// statistics on hearth's generated stories) keeps its held-out perplexity within 3x, and the
// smaller model loads in hearth; activation statistics given from outside (as from an imatrix)
// that equal the measured ones give the same model, without a calibration pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "hearth/core/atomic_file.h"
#include "hearth/gguf/gguf.h"
#include "hearth/model/model.h"
#include "hearth/tokenizer/tokenizer.h"
#include "hearth/tokenizer/vocab_gguf.h"
#include "hearth/train/corpus.h"
#include "hearth/train/gguf_export.h"
#include "hearth/train/llama_graph.h"
#include "hearth/train/prune.h"
#include "hearth/train/story_grammar.h"
#include "shared_data.h"

namespace hearth::train {
namespace {

TEST(Prune, NothingRemovedIsTheSameModelAndBadArgumentsAreRefused) {
  LlamaShape s;
  s.n_vocab = 300, s.n_ctx = 16, s.n_embd = 16, s.n_layer = 2, s.n_head = 2, s.n_head_kv = 1, s.n_ff = 24;
  BaseModel b{s, {}};
  init_params(LlamaParams(s), b.w, 4);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 80; ++i) tokens.push_back(20 + (i * 7) % 31);
  PruneOptions o;
  o.ffn_frac = 0.0, o.seq_len = 16;
  auto r = prune_llama(b, tokens, tokens, o, 1);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->model.w, b.w);
  EXPECT_DOUBLE_EQ(r->ppl_after, r->ppl_before);
  o.ffn_frac = 0.5, o.drop_layers = 1;
  r = prune_llama(b, tokens, tokens, o, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->model.shape.n_ff, 12);
  EXPECT_EQ(r->model.shape.n_layer, 1);
  EXPECT_EQ(r->model.w.size(), LlamaParams(r->model.shape).n_params());
  o.drop_layers = 2;
  EXPECT_FALSE(prune_llama(b, tokens, tokens, o, 1).ok());
  o.drop_layers = 0, o.ffn_frac = 1.0;
  EXPECT_FALSE(prune_llama(b, tokens, tokens, o, 1).ok());
}

TEST(Prune, GivenActivationStatisticsReplaceTheCalibrationPass) {
  LlamaShape s;
  s.n_vocab = 300, s.n_ctx = 16, s.n_embd = 16, s.n_layer = 2, s.n_head = 2, s.n_head_kv = 1, s.n_ff = 24;
  BaseModel b{s, {}};
  init_params(LlamaParams(s), b.w, 4);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 80; ++i) tokens.push_back(20 + (i * 7) % 31);
  PruneOptions o;
  o.ffn_frac = 0.5, o.seq_len = 16;
  auto measured = prune_llama(b, tokens, tokens, o, 1);
  ASSERT_TRUE(measured.ok()) << measured.status().message();
  // The same statistic (sum of |silu(gate) * up| over the same windows), computed here.
  ThreadPool pool(1);
  Ops ops(kernels::active_kernels(), pool);
  const LlamaParams p(s);
  LlamaGraph g(p, ops);
  std::vector<double> act(static_cast<size_t>(s.n_layer * s.n_ff), 0.0);
  for (int64_t i = 0; i < std::min<int64_t>(o.max_windows, (80 - 1) / 16); ++i) {
    g.forward(b.w.data(), tokens.data() + i * 16, 1, 16);
    for (int64_t il = 0; il < s.n_layer; ++il) {
      const auto& h = g.ffn_activation(il);
      for (int64_t t = 0; t < 16; ++t) {
        for (int64_t j = 0; j < s.n_ff; ++j) act[static_cast<size_t>(il * s.n_ff + j)] += std::fabs(h[t * s.n_ff + j]);
      }
    }
  }
  o.ffn_activation = act;
  auto given = prune_llama(b, {}, tokens, o, 1);  // no calibration tokens needed
  ASSERT_TRUE(given.ok()) << given.status().message();
  EXPECT_EQ(given->model.w, measured->model.w);
  // Another statistic keeps other neurons.
  for (double& v : o.ffn_activation) v = 1.0 / (v + 1e-3);
  auto reversed = prune_llama(b, {}, tokens, o, 1);
  ASSERT_TRUE(reversed.ok());
  EXPECT_NE(reversed->model.w, measured->model.w);
  // A statistic of the wrong size, or dropping layers without calibration text: refused.
  o.ffn_activation.pop_back();
  EXPECT_FALSE(prune_llama(b, tokens, tokens, o, 1).ok());
  o.ffn_activation = act, o.drop_layers = 1;
  EXPECT_FALSE(prune_llama(b, {}, tokens, o, 1).ok());
  EXPECT_TRUE(prune_llama(b, tokens, tokens, o, 1).ok());
}

TEST(Prune, ThirtyPercentOfStories260KFfnKeepsPerplexityWithin3x) {
  HEARTH_REQUIRE_SHARED(shared);
  auto bytes = read_file((shared / "models" / "stories260K-f32.gguf").string());
  ASSERT_TRUE(bytes.ok());
  auto f = gguf::parse_gguf({reinterpret_cast<const std::byte*>(bytes->data()), bytes->size()}, "stories260K");
  ASSERT_TRUE(f.ok());
  auto tok = tokenizer::Tokenizer::from_gguf(*f);
  ASSERT_TRUE(tok.ok());
  auto base = read_base_model(*f, 128);
  ASSERT_TRUE(base.ok()) << base.status().message();
  std::string calib, eval;
  int64_t counter = 0;
  split_document(generate_stories(200, 3), 0.2, counter, calib, eval);
  PruneOptions o;
  o.ffn_frac = 0.3, o.seq_len = 128, o.max_windows = 8;
  auto r = prune_llama(*base, tokenize_documents(**tok, {calib}), tokenize_documents(**tok, {eval}), o, 2);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->model.shape.n_ff, 120);  // 172 - round(0.3 * 172)
  EXPECT_LT(r->ppl_after, 3.0 * r->ppl_before) << "before " << r->ppl_before;
  EXPECT_GT(r->ppl_after, r->ppl_before * 0.999);

  auto vocab = tokenizer::vocab_spec_from_gguf(*f);
  ASSERT_TRUE(vocab.ok());
  const auto dir = testing::make_temp_dir("hearth-prune");
  const std::string out = (dir / "pruned.gguf").string();
  ASSERT_TRUE(export_gguf(out, LlamaParams(r->model.shape), r->model.w.data(), *vocab, TensorType::F32, "p").ok());
  auto m = model::Model::load(out);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ((*m)->hparams().n_ff, 120);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hearth::train
