// Model loading must fail cleanly, with a message naming the problem, on bad files; and a
// small random model built with the writer must load and run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "hearth/gguf/gguf_writer.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/quant.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "shared_data.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

// A tiny llama: n_embd 8, 1 layer, 2 heads, 1 kv head, n_ff 16, vocab 10.
struct TinyLlama {
  std::vector<std::vector<float>> storage;
  gguf::GgufWriter w;
  std::mt19937 rng{7};
  std::string arch = "llama";  // general.architecture and the prefix of the hyper-parameter keys

  void tensor(const std::string& name, std::vector<uint64_t> ne) {
    size_t n = 1;
    for (auto d : ne) n *= d;
    std::normal_distribution<float> dist(0.0f, 0.3f);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    storage.push_back(std::move(v));
    auto& s = storage.back();
    ASSERT_TRUE(w.add_tensor(name, TensorType::F32, ne, std::as_bytes(std::span<const float>(s))).ok());
  }

  void build(bool skip_wq = false, uint64_t wk_rows = 4) {
    storage.reserve(32);
    w.set_string("general.architecture", arch);
    w.set_u32(arch + ".context_length", 64);
    w.set_u32(arch + ".embedding_length", 8);
    w.set_u32(arch + ".block_count", 1);
    w.set_u32(arch + ".feed_forward_length", 16);
    w.set_u32(arch + ".attention.head_count", 2);
    w.set_u32(arch + ".attention.head_count_kv", 1);
    w.set_f32(arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
    tensor("token_embd.weight", {8, 10});
    tensor("output_norm.weight", {8});
    tensor("blk.0.attn_norm.weight", {8});
    if (!skip_wq) tensor("blk.0.attn_q.weight", {8, 8});
    tensor("blk.0.attn_k.weight", {8, wk_rows});
    tensor("blk.0.attn_v.weight", {8, 4});
    tensor("blk.0.attn_output.weight", {8, 8});
    tensor("blk.0.ffn_norm.weight", {8});
    tensor("blk.0.ffn_gate.weight", {8, 16});
    tensor("blk.0.ffn_up.weight", {8, 16});
    tensor("blk.0.ffn_down.weight", {16, 8});
  }
};

class ModelLoadTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_temp_dir("hearth-model"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(TinyLlama& t, const std::string& name) {
    std::string p = (dir_ / name).string();
    EXPECT_TRUE(t.w.write(p).ok());
    return p;
  }
  fs::path dir_;
};

TEST_F(ModelLoadTest, TinyModelLoadsAndBatchEqualsSequential) {
  TinyLlama t;
  t.build();
  auto m = model::Model::load(write(t, "tiny.gguf"));
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ((*m)->hparams().n_vocab, 10);
  EXPECT_EQ((*m)->hparams().head_dim, 4);
  model::ContextParams p;
  p.n_ctx = 16;
  p.kv_type = kernels::KvType::kF32;
  auto c1 = model::Context::create(**m, p);
  auto c2 = model::Context::create(**m, p);
  ASSERT_TRUE(c1.ok() && c2.ok());
  std::vector<model::BatchToken> batch;
  const int32_t toks[] = {1, 5, 3, 9, 0};
  for (int i = 0; i < 5; ++i) batch.push_back({toks[i], i, 0, true});
  ASSERT_TRUE((*c1)->decode(batch).ok());
  for (int i = 0; i < 5; ++i) {
    model::BatchToken one{toks[i], i, 0, true};
    ASSERT_TRUE((*c2)->decode({&one, 1}).ok());
    auto a = (*c1)->logits(i);
    auto b = (*c2)->logits(0);
    for (size_t j = 0; j < a.size(); ++j) EXPECT_NEAR(a[j], b[j], 1e-4f) << "pos " << i << " id " << j;
  }
}

// A llama of K-quant-sized rows: attention in Q4_K (packs at about its stored size), the
// feed-forward in Q3_K (its packed layout keeps 3-bit quants in nibbles, so it grows the weights).
std::string write_k_quant_llama(const fs::path& dir) {
  gguf::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.context_length", 64);
  w.set_u32("llama.embedding_length", 256);
  w.set_u32("llama.block_count", 1);
  w.set_u32("llama.feed_forward_length", 512);
  w.set_u32("llama.attention.head_count", 4);
  w.set_u32("llama.attention.head_count_kv", 2);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 0.1f);
  std::vector<std::vector<std::byte>> storage;
  storage.reserve(16);
  auto add = [&](const std::string& name, TensorType type, uint64_t cols, uint64_t rows) {
    std::vector<float> v(cols * rows);
    for (auto& x : v) x = name.find("norm") != std::string::npos ? 1.0f + dist(rng) : dist(rng);
    const size_t rb = *row_bytes(type, cols);
    storage.emplace_back(rb * rows);
    for (uint64_t r = 0; r < rows; ++r) {
      kernels::quantize_row(type, v.data() + r * cols, storage.back().data() + r * rb, static_cast<int64_t>(cols));
    }
    std::vector<uint64_t> ne{cols};
    if (rows > 1) ne.push_back(rows);
    ASSERT_TRUE(w.add_tensor(name, type, ne, storage.back()).ok()) << name;
  };
  add("token_embd.weight", TensorType::F32, 256, 32);
  add("output_norm.weight", TensorType::F32, 256, 1);
  add("output.weight", TensorType::Q4_K, 256, 32);
  add("blk.0.attn_norm.weight", TensorType::F32, 256, 1);
  add("blk.0.attn_q.weight", TensorType::Q4_K, 256, 256);
  add("blk.0.attn_k.weight", TensorType::Q4_K, 256, 128);
  add("blk.0.attn_v.weight", TensorType::Q4_K, 256, 128);
  add("blk.0.attn_output.weight", TensorType::Q4_K, 256, 256);
  add("blk.0.ffn_norm.weight", TensorType::F32, 256, 1);
  add("blk.0.ffn_gate.weight", TensorType::Q3_K, 256, 512);
  add("blk.0.ffn_up.weight", TensorType::Q3_K, 256, 512);
  add("blk.0.ffn_down.weight", TensorType::Q3_K, 512, 256);
  const std::string path = (dir / "kq.gguf").string();
  EXPECT_TRUE(w.write(path).ok());
  return path;
}

std::vector<float> last_logits(const model::Model& m) {
  model::ContextParams p;
  p.n_ctx = 16;
  p.kv_type = kernels::KvType::kF32;
  auto c = model::Context::create(m, p);
  EXPECT_TRUE(c.ok());
  std::vector<model::BatchToken> batch;
  for (int i = 0; i < 6; ++i) batch.push_back({(i * 7) % 32, i, 0, i == 5});
  EXPECT_TRUE((*c)->decode(batch).ok());
  auto l = (*c)->logits(0);
  return {l.begin(), l.end()};
}

TEST_F(ModelLoadTest, RepackingGrowsTheWeightsOnlyWithinTheBudget) {
  const kernels::KernelTable& kt = kernels::active_kernels();
  if (kt.pack == nullptr || kt.packed_bytes(TensorType::Q3_K, 512, 256) == 0) {
    GTEST_SKIP() << "the " << kt.name << " table does not repack Q3_K";
  }
  const std::string path = write_k_quant_llama(dir_);
  const uint64_t grown_stored = 2 * 512 * *row_bytes(TensorType::Q3_K, 256) + 256 * *row_bytes(TensorType::Q3_K, 512);
  ASSERT_GT(kt.packed_bytes(TensorType::Q3_K, 512, 256), 512 * *row_bytes(TensorType::Q3_K, 256))
      << "the premise: Q3_K's packed layout is larger than the stored one";

  auto stored = model::Model::load(path, nullptr);
  auto none = model::Model::load(path, &kt, 0);
  auto one = model::Model::load(path, &kt,
                                kt.packed_bytes(TensorType::Q3_K, 512, 256) - 512 * *row_bytes(TensorType::Q3_K, 256));
  auto all = model::Model::load(path, &kt, UINT64_MAX);
  ASSERT_TRUE(stored.ok() && none.ok() && one.ok() && all.ok());
  EXPECT_EQ((*stored)->packed_bytes(), 0u);
  // Budget 0: the Q4_K weights are repacked (no growth), every Q3_K one stays as stored.
  EXPECT_GT((*none)->packed_bytes(), 0u);
  EXPECT_EQ((*none)->kept_stored_bytes(), grown_stored);
  EXPECT_FALSE((*none)->weights().layers[0].ffn_up.packed);
  EXPECT_TRUE((*none)->weights().layers[0].wq.packed);
  // A budget of one gate/up matrix's growth takes exactly one of the three.
  EXPECT_EQ((*one)->kept_stored_bytes(), grown_stored - 512 * *row_bytes(TensorType::Q3_K, 256));
  EXPECT_EQ((*all)->kept_stored_bytes(), 0u);
  EXPECT_TRUE((*all)->weights().layers[0].ffn_up.packed);
  // Whatever the split, the numbers are the same model's.
  const auto ref = last_logits(**stored);
  for (auto* m : {&none, &one, &all}) {
    const auto got = last_logits(***m);
    ASSERT_EQ(got.size(), ref.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      num += (got[i] - ref[i]) * (got[i] - ref[i]);
      den += ref[i] * ref[i];
    }
    EXPECT_LT(std::sqrt(num / den), 1e-4) << "kept " << (**m)->kept_stored_bytes();
  }
}

TEST_F(ModelLoadTest, RepackedBytesDoNotDependOnTheThreadCount) {
  const kernels::KernelTable& kt = kernels::active_kernels();
  if (kt.pack == nullptr) GTEST_SKIP() << "the " << kt.name << " table does not repack";
  const std::string path = write_k_quant_llama(dir_);
  std::vector<std::unique_ptr<model::Model>> models;
  for (int threads : {1, 2, 3}) {
    auto m = model::Model::load(path, &kt, UINT64_MAX, model::LoadOptions{.n_threads = threads});
    ASSERT_TRUE(m.ok()) << m.status().message();
    ASSERT_GT((*m)->packed_bytes(), 0u);
    models.push_back(std::move(*m));
  }
  const auto views = [](const model::Model& m) {
    std::vector<const model::TensorView*> v;
    for (const auto& l : m.weights().layers) {
      for (const model::TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down})
        v.push_back(t);
    }
    return v;
  };
  const auto ref = views(*models[0]);
  int compared = 0;
  for (size_t k = 1; k < models.size(); ++k) {
    EXPECT_EQ(models[k]->packed_bytes(), models[0]->packed_bytes());
    const auto got = views(*models[k]);
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_EQ(got[i]->packed == nullptr, ref[i]->packed == nullptr) << "weight " << i;
      if (ref[i]->packed == nullptr) continue;
      ASSERT_EQ(got[i]->packed_nb2, ref[i]->packed_nb2);
      const uint64_t n = kt.packed_bytes(ref[i]->type, ref[i]->ne[1], ref[i]->ne[0]);
      ASSERT_GT(n, 0u);
      EXPECT_EQ(std::memcmp(got[i]->packed, ref[i]->packed, n), 0) << "weight " << i << ", " << k + 1 << " threads";
      ++compared;
    }
  }
  EXPECT_GT(compared, 0);
}

TEST_F(ModelLoadTest, MissingTensorIsNamed) {
  TinyLlama t;
  t.build(/*skip_wq=*/true);
  auto m = model::Model::load(write(t, "missing.gguf"));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("blk.0.attn_q.weight"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("missing"), std::string::npos);
}

TEST_F(ModelLoadTest, WrongShapeIsNamed) {
  TinyLlama t;
  t.build(false, /*wk_rows=*/5);
  auto m = model::Model::load(write(t, "shape.gguf"));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("blk.0.attn_k.weight"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("[8, 5]"), std::string::npos) << m.status().message();
}

TEST_F(ModelLoadTest, UnknownArchitecture) {
  TinyLlama t;
  t.build();
  t.w.set_string("general.architecture", "gpt-j");
  auto m = model::Model::load(write(t, "arch.gguf"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), ErrorCode::kUnimplemented);
  EXPECT_NE(m.status().message().find("gpt-j"), std::string::npos);
}

TEST_F(ModelLoadTest, MissingHyperParameter) {
  TinyLlama t;
  t.build();
  t.w.remove_key("llama.block_count");
  auto m = model::Model::load(write(t, "hp.gguf"));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("llama.block_count"), std::string::npos) << m.status().message();
}

TEST_F(ModelLoadTest, InconsistentHeads) {
  TinyLlama t;
  t.build();
  t.w.set_u32("llama.attention.head_count_kv", 3);
  auto m = model::Model::load(write(t, "heads.gguf"));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("head_count_kv"), std::string::npos) << m.status().message();
}

TEST_F(ModelLoadTest, KvCacheOverLimitIsAnError) {
  TinyLlama t;
  t.build();
  auto m = model::Model::load(write(t, "kv.gguf"));
  ASSERT_TRUE(m.ok());
  model::ContextParams p;
  p.n_ctx = 64;
  p.kv_limit_bytes = 1000;  // 2 x 1 layer x 64 x 4 x 2 bytes = 1024 > 1000
  auto c = model::Context::create(**m, p);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("limit"), std::string::npos);
}

// A quantized KV type needs cache rows of whole 32-element blocks: the tiny llama's rows are
// 1 KV head x head_dim 4, so q8_0 for V is refused at context creation, naming the head dim.
TEST_F(ModelLoadTest, QuantizedKvCacheNeedsRowsOfWholeBlocks) {
  TinyLlama t;
  t.build();
  auto m = model::Model::load(write(t, "kvq.gguf"));
  ASSERT_TRUE(m.ok());
  model::ContextParams p;
  p.n_ctx = 16;
  p.kv_type = kernels::KvTypes(kernels::KvType::kF16, kernels::KvType::kQ8_0);
  auto c = model::Context::create(**m, p);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("q8_0 for V needs rows of a multiple of 32 elements"), std::string::npos)
      << c.status().message();
  EXPECT_NE(c.status().message().find("n_head_kv 1 x head_dim 4 = 4"), std::string::npos) << c.status().message();
}

// Bytes per cache row are the types' real sizes: f16 2 per element, Q8_0 34 and Q4_0 18 per 32.
TEST(KvCacheBytes, UsesEachTypesRowSize) {
  model::HParams hp;
  hp.n_layer = 3;
  hp.n_head_kv = 2;
  hp.head_dim = 64;  // rows of 128 elements: 4 blocks
  using kernels::KvType;
  EXPECT_EQ(model::KvCache::bytes_needed(hp, 100, 2, KvType::kF16), 3u * 2 * 100 * (256 + 256));
  EXPECT_EQ(model::KvCache::bytes_needed(hp, 100, 2, kernels::KvTypes(KvType::kQ8_0, KvType::kQ4_0)),
            3u * 2 * 100 * (4 * 34 + 4 * 18));
  EXPECT_EQ(model::KvCache::bytes_needed(hp, 100, 2, KvType::kF32), 3u * 2 * 100 * (512 + 512));
}

TEST_F(ModelLoadTest, BadTokenAndPositionRejected) {
  TinyLlama t;
  t.build();
  auto m = model::Model::load(write(t, "tok.gguf"));
  ASSERT_TRUE(m.ok());
  model::ContextParams p;
  p.n_ctx = 8;
  auto c = model::Context::create(**m, p);
  ASSERT_TRUE(c.ok());
  model::BatchToken bad_tok{10, 0, 0, true};
  EXPECT_EQ((*c)->decode({&bad_tok, 1}).code(), ErrorCode::kInvalidArgument);
  model::BatchToken bad_pos{1, 8, 0, true};
  EXPECT_EQ((*c)->decode({&bad_pos, 1}).code(), ErrorCode::kOutOfRange);
}

// A vocabulary smaller than token_embd's rows leaves ids that sampling can pick but nothing
// can decode: refused at load (it used to load).
TEST_F(ModelLoadTest, VocabSmallerThanEmbeddingRowsIsRefused) {
  auto with_tokens = [&](size_t n, const std::string& name) {
    TinyLlama t;
    t.build();
    std::vector<std::string> toks;
    for (size_t i = 0; i < n; ++i) toks.push_back("t" + std::to_string(i));
    t.w.set_string("tokenizer.ggml.model", "llama");
    t.w.set_array_strings("tokenizer.ggml.tokens", toks);
    return model::Model::load(write(t, name));
  };
  auto small = with_tokens(8, "small.gguf");
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(small.status().message().find("8 tokens but token_embd.weight has 10 rows"), std::string::npos)
      << small.status().message();
  EXPECT_FALSE(with_tokens(11, "large.gguf").ok());
  auto exact = with_tokens(10, "exact.gguf");
  EXPECT_TRUE(exact.ok()) << exact.status().message();
}

// qwen3: the per-head q/k norms must be [head_dim] (4 here).
TEST_F(ModelLoadTest, Qwen3QkNormMustMatchHeadDim) {
  auto with_q_norm = [&](uint64_t n, const std::string& name) {
    TinyLlama t;
    t.arch = "qwen3";
    t.build();
    t.tensor("blk.0.attn_q_norm.weight", {n});
    t.tensor("blk.0.attn_k_norm.weight", {4});
    return model::Model::load(write(t, name));
  };
  auto bad = with_q_norm(8, "bad.gguf");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'blk.0.attn_q_norm.weight' has shape [8]"), std::string::npos)
      << bad.status().message();
  auto good = with_q_norm(4, "good.gguf");
  EXPECT_TRUE(good.ok()) << good.status().message();
}

// gemma2: a soft-cap must be positive and the sliding window must fit the context (64 here).
TEST_F(ModelLoadTest, Gemma2SoftCapAndSlidingWindowAreChecked) {
  auto gemma2 = [&](float attn_cap, uint32_t window, const std::string& name) {
    TinyLlama t;
    t.arch = "gemma2";
    t.build();
    t.tensor("blk.0.post_attention_norm.weight", {8});
    t.tensor("blk.0.post_ffw_norm.weight", {8});
    t.w.set_f32("gemma2.attn_logit_softcapping", attn_cap);
    t.w.set_f32("gemma2.final_logit_softcapping", 30.0f);
    t.w.set_u32("gemma2.attention.sliding_window", window);
    return model::Model::load(write(t, name));
  };
  auto zero_cap = gemma2(0.0f, 16, "cap.gguf");
  ASSERT_FALSE(zero_cap.ok());
  EXPECT_EQ(zero_cap.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(zero_cap.status().message().find("'gemma2.attn_logit_softcapping' = 0 must be a positive number"),
            std::string::npos)
      << zero_cap.status().message();
  auto wide = gemma2(50.0f, 128, "window.gguf");
  ASSERT_FALSE(wide.ok());
  EXPECT_NE(wide.status().message().find("sliding_window 128 must be in [1, context_length 64]"), std::string::npos)
      << wide.status().message();
  auto good = gemma2(50.0f, 16, "good.gguf");
  EXPECT_TRUE(good.ok()) << good.status().message();
}

// Sliding-window attention (window 3 on layer 0) with and without gemma2's soft-cap: two
// sequences interleaved in one batch give the logits of the same tokens fed one at a time.
TEST_F(ModelLoadTest, SlidingWindowBatchEqualsSequential) {
  for (const std::string arch : {"gemma2", "gemma3"}) {
    SCOPED_TRACE(arch);
    TinyLlama t;
    t.arch = arch;
    t.build();
    t.tensor("blk.0.post_attention_norm.weight", {8});
    t.tensor("blk.0.post_ffw_norm.weight", {8});
    t.w.set_u32(arch + ".attention.sliding_window", 3);
    if (arch == "gemma3") {
      t.tensor("blk.0.attn_q_norm.weight", {4});
      t.tensor("blk.0.attn_k_norm.weight", {4});
      t.w.set_u32("gemma3.attention.sliding_window_pattern", 2);
    }
    auto m = model::Model::load(write(t, arch + ".gguf"));
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    ASSERT_TRUE((*m)->hparams().is_swa(0));
    model::ContextParams p;
    p.n_ctx = 16;
    p.n_seq = 2;
    p.kv_type = kernels::KvType::kF32;
    auto c1 = model::Context::create(**m, p);
    auto c2 = model::Context::create(**m, p);
    ASSERT_TRUE(c1.ok() && c2.ok());
    std::vector<model::BatchToken> batch;
    for (int i = 0; i < 16; ++i) batch.push_back({(i * 7 + 3) % 10, i / 2, i % 2, true});
    ASSERT_TRUE((*c1)->decode(batch).ok());
    for (int i = 0; i < 16; ++i) {
      ASSERT_TRUE((*c2)->decode({&batch[static_cast<size_t>(i)], 1}).ok());
      auto a = (*c1)->logits(i);
      auto b = (*c2)->logits(0);
      for (size_t j = 0; j < a.size(); ++j) EXPECT_NEAR(a[j], b[j], 1e-4f) << "token " << i << " id " << j;
    }
  }
}

// A ring of window + n_batch = 3 + 2 rows for the sliding layer: decoding far past a position
// overwrites the rows its window needs, so going back there is refused (and reusable_prefix
// says 0), while a prefix whose window is still held is kept, copied to another sequence and
// continued there with the logits of a context that keeps every position.
TEST_F(ModelLoadTest, SlidingWindowRingRefusesOverwrittenPrefixes) {
  TinyLlama t;
  t.arch = "gemma2";
  t.build();
  t.tensor("blk.0.post_attention_norm.weight", {8});
  t.tensor("blk.0.post_ffw_norm.weight", {8});
  t.w.set_u32("gemma2.attention.sliding_window", 3);
  auto m = model::Model::load(write(t, "ring.gguf"));
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto context = [&](bool full) {
    model::ContextParams p;
    p.n_ctx = 16;
    p.n_seq = 2;
    p.n_batch = 2;
    p.kv_type = kernels::KvType::kF32;
    p.swa_full_cache = full;
    auto c = model::Context::create(**m, p);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return std::move(c).value();
  };
  auto ring = context(false);
  auto full = context(true);
  ASSERT_EQ(ring->kv_cache().ring(), 5);
  EXPECT_EQ(ring->kv_cache().rows(0), 5);
  EXPECT_EQ(full->kv_cache().rows(0), 16);
  // One layer, 1 KV head of 4 f32: 16 rows x 2 seqs x (16 + 16) bytes full, 5 rows in the ring.
  EXPECT_EQ(full->kv_cache().bytes(), 16u * 2 * 32);
  EXPECT_EQ(ring->kv_cache().bytes(), 5u * 2 * 32);
  std::vector<model::BatchToken> batch;
  for (int i = 0; i < 12; ++i) batch.push_back({(i * 7 + 3) % 10, i, 0, i == 11});
  ASSERT_TRUE(ring->decode(batch).ok());
  ASSERT_TRUE(full->decode(batch).ok());
  // Positions up to 11 written into 5 rows: 7..11 are held; position 9's window (7, 8) is.
  EXPECT_EQ(ring->reusable_prefix(0, 12), 12);
  EXPECT_EQ(ring->reusable_prefix(0, 9), 9);
  EXPECT_EQ(ring->reusable_prefix(0, 5), 0);  // needs positions 3, 4
  EXPECT_EQ(ring->reusable_prefix(0, 1), 0);  // needs position 0
  EXPECT_EQ(ring->reusable_prefix(0, 0), 0);
  model::BatchToken back{4, 5, 0, true};
  const Status st = ring->decode({&back, 1});
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("no longer holds positions 3..6"), std::string::npos) << st.message();
  EXPECT_EQ(full->reusable_prefix(0, 5), 5);
  // Keep 9 positions, on sequence 1 (a copy) and on 0 itself (a rollback): both continue as the
  // full cache does.
  ring->kv_cache().copy_prefix(0, 1, 9);
  full->kv_cache().copy_prefix(0, 1, 9);
  for (int seq : {1, 0}) {
    for (int i = 9; i < 16; ++i) {
      model::BatchToken tok{(i * 5 + 1) % 10, i, seq, true};
      ASSERT_TRUE(ring->decode({&tok, 1}).ok()) << "seq " << seq << " pos " << i;
      ASSERT_TRUE(full->decode({&tok, 1}).ok());
      auto a = ring->logits(0);
      auto b = full->logits(0);
      for (size_t j = 0; j < a.size(); ++j) EXPECT_NEAR(a[j], b[j], 1e-5f) << "seq " << seq << " pos " << i;
    }
  }
}

// qwen3moe needs its experts' width (expert_feed_forward_length) and an expert count.
TEST_F(ModelLoadTest, Qwen3MoeKeysAreChecked) {
  auto qwen3moe = [&](bool experts, const std::string& name) {
    TinyLlama t;
    t.arch = "qwen3moe";
    t.build();
    if (experts) {
      t.w.set_u32("qwen3moe.expert_count", 2);
      t.w.set_u32("qwen3moe.expert_used_count", 1);
    }
    return model::Model::load(write(t, name));
  };
  auto no_width = qwen3moe(true, "width.gguf");
  ASSERT_FALSE(no_width.ok());
  EXPECT_NE(no_width.status().message().find("'qwen3moe.expert_feed_forward_length' is missing"), std::string::npos)
      << no_width.status().message();
  auto dense = qwen3moe(false, "dense.gguf");
  ASSERT_FALSE(dense.ok());
  EXPECT_NE(dense.status().message().find("'qwen3moe.expert_count' is missing or 0"), std::string::npos)
      << dense.status().message();
}

// phi3: hearth reads the fused attn_qkv; separate q/k/v tensors are a clear error.
TEST_F(ModelLoadTest, Phi3NeedsFusedQkv) {
  TinyLlama t;
  t.arch = "phi3";
  t.build();
  auto m = model::Model::load(write(t, "phi3.gguf"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), ErrorCode::kUnimplemented);
  EXPECT_NE(m.status().message().find("hearth reads the fused blk.0.attn_qkv.weight"), std::string::npos)
      << m.status().message();
}

// A tiny bert encoder: n_embd 8, 1 layer, 2 heads, n_ff 16, vocab 10, 2 token types,
// 64 positions. `skip` leaves one tensor out; `pos_rows` sizes position_embd.
void build_bert(TinyLlama& t, const std::string& skip = "", uint64_t pos_rows = 64) {
  t.storage.reserve(32);
  t.arch = "bert";
  t.w.set_string("general.architecture", "bert");
  t.w.set_u32("bert.context_length", 64);
  t.w.set_u32("bert.embedding_length", 8);
  t.w.set_u32("bert.block_count", 1);
  t.w.set_u32("bert.feed_forward_length", 16);
  t.w.set_u32("bert.attention.head_count", 2);
  t.w.set_f32("bert.attention.layer_norm_epsilon", 1e-12f);
  const std::vector<std::pair<std::string, std::vector<uint64_t>>> tensors = {
      {"token_embd.weight", {8, 10}},
      {"token_types.weight", {8, 2}},
      {"position_embd.weight", {8, pos_rows}},
      {"token_embd_norm.weight", {8}},
      {"token_embd_norm.bias", {8}},
      {"blk.0.attn_q.weight", {8, 8}},
      {"blk.0.attn_q.bias", {8}},
      {"blk.0.attn_k.weight", {8, 8}},
      {"blk.0.attn_k.bias", {8}},
      {"blk.0.attn_v.weight", {8, 8}},
      {"blk.0.attn_v.bias", {8}},
      {"blk.0.attn_output.weight", {8, 8}},
      {"blk.0.attn_output.bias", {8}},
      {"blk.0.attn_output_norm.weight", {8}},
      {"blk.0.attn_output_norm.bias", {8}},
      {"blk.0.ffn_up.weight", {8, 16}},
      {"blk.0.ffn_up.bias", {16}},
      {"blk.0.ffn_down.weight", {16, 8}},
      {"blk.0.ffn_down.bias", {8}},
      {"blk.0.layer_output_norm.weight", {8}},
      {"blk.0.layer_output_norm.bias", {8}},
  };
  for (const auto& [name, ne] : tensors) {
    if (name != skip) t.tensor(name, ne);
  }
}

// bert: every key and tensor is checked with a message naming it; a loaded encoder attends
// both ways (the first token's state depends on the last token) and has no logits.
TEST_F(ModelLoadTest, BertKeysAndShapesAreChecked) {
  {
    TinyLlama t;
    build_bert(t);
    t.w.set_u32("bert.pooling_type", 1);
    auto m = model::Model::load(write(t, "bert.gguf"));
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_FALSE((*m)->hparams().causal);
    EXPECT_EQ((*m)->hparams().pooling, model::PoolingType::kMean);
    model::ContextParams p;
    p.n_ctx = 16;
    p.n_threads = 1;
    p.kv_type = kernels::KvType::kF32;
    auto c = model::Context::create(**m, p);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    auto first_state = [&](int32_t last_token) {
      std::vector<model::BatchToken> batch = {{1, 0, 0, true}, {2, 1, 0, false}, {last_token, 2, 0, false}};
      EXPECT_TRUE((*c)->decode(batch).ok());
      EXPECT_EQ((*c)->n_outputs(), 1);
      EXPECT_TRUE((*c)->logits(0).empty());
      auto h = (*c)->hidden(0);
      return std::vector<float>(h.begin(), h.end());
    };
    const auto a = first_state(3), b = first_state(7), a2 = first_state(3);
    EXPECT_EQ(a, a2);
    EXPECT_NE(a, b) << "the first token must see the last one (bidirectional attention)";
    p.n_ctx = 65;  // one more than the 64 position embeddings
    auto too_long = model::Context::create(**m, p);
    ASSERT_FALSE(too_long.ok());
    EXPECT_NE(too_long.status().message().find("position embeddings end there"), std::string::npos)
        << too_long.status().message();
  }
  auto refused = [&](TinyLlama& t, const std::string& name, const std::string& want) {
    auto m = model::Model::load(write(t, name));
    ASSERT_FALSE(m.ok()) << name;
    EXPECT_NE(m.status().message().find(want), std::string::npos) << m.status().message();
  };
  {
    TinyLlama t;
    build_bert(t, "blk.0.ffn_up.bias");
    refused(t, "bias.gguf", "blk.0.ffn_up.bias");
  }
  {
    TinyLlama t;
    build_bert(t, "token_types.weight");
    refused(t, "types.gguf", "'token_types.weight' is missing");
  }
  {
    TinyLlama t;
    build_bert(t, "", /*pos_rows=*/32);
    refused(t, "pos.gguf", "position_embd.weight");
  }
  {
    TinyLlama t;
    build_bert(t, "blk.0.layer_output_norm.weight");
    refused(t, "norm.gguf", "blk.0.layer_output_norm.weight");
  }
  {
    TinyLlama t;
    build_bert(t);
    t.w.set_bool("bert.attention.causal", true);
    refused(t, "causal.gguf", "bert.attention.causal = true is not supported");
  }
  {
    TinyLlama t;
    build_bert(t);
    t.w.set_u32("bert.pooling_type", 4);
    refused(t, "rank.gguf", "bert.pooling_type 4 is not supported");
  }
  {
    TinyLlama u;  // the epsilon key is required
    u.storage.reserve(32);
    u.w.set_string("general.architecture", "bert");
    u.w.set_u32("bert.context_length", 64);
    u.w.set_u32("bert.embedding_length", 8);
    u.w.set_u32("bert.block_count", 1);
    u.w.set_u32("bert.feed_forward_length", 16);
    u.w.set_u32("bert.attention.head_count", 2);
    u.tensor("token_embd.weight", {8, 10});
    refused(u, "eps.gguf", "bert.attention.layer_norm_epsilon");
  }
}

TEST(ModelLoad, VocabOnlyFileIsRefused) {
  HEARTH_REQUIRE_SHARED(shared);
  auto m = model::Model::load((shared / "tokenizer-vectors" / "ggml-vocab-llama-spm.gguf").string());
  ASSERT_FALSE(m.ok());
}

TEST(ModelLoad, MissingFile) {
  auto m = model::Model::load("/nonexistent/model.gguf");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace hearth
