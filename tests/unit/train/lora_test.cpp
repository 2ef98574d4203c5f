// LoRA finetuning: it lowers the held-out loss of the new text, the adapter file has the GGUF
// LoRA layout, and base + (alpha/rank) B A from that file equals the merged model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hearth/core/atomic_file.h"
#include "hearth/gguf/gguf.h"
#include "hearth/tokenizer/tokenizer.h"
#include "hearth/train/bpe_trainer.h"
#include "hearth/train/corpus.h"
#include "hearth/train/gguf_export.h"
#include "hearth/train/lora.h"
#include "hearth/train/trainer.h"
#include "shared_data.h"

namespace hearth::train {
namespace {

const std::string kBaseText =
    "the old map showed a river, a hill and a forest. the river ran past the hill and into the forest.\n\n";
const std::string kNewText =
    "a small boat sailed on the lake every morning, and the boat came back to the shore at night.\n\n";

std::vector<float> read_f32(const gguf::GgufFile& f, const std::string& name) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  EXPECT_NE(t, nullptr) << name;
  if (t == nullptr) return {};
  std::vector<float> v(t->n_elements);
  std::memcpy(v.data(), t->data.data(), v.size() * sizeof(float));
  return v;
}

TEST(Lora, LowersHeldOutLossAndTheAdapterEqualsTheMergedModel) {
  std::string corpus;
  for (int i = 0; i < 8; ++i) corpus += kBaseText + kNewText;
  auto vocab = train_bpe({corpus}, BpeOptions{320});
  ASSERT_TRUE(vocab.ok());
  auto tok = tokenizer::Tokenizer::create(*vocab);
  ASSERT_TRUE(tok.ok());

  // A base model trained briefly on other text, exported as F16 and read back through the base
  // reader (dequantized).
  TrainOptions bo;
  LlamaShape& s = bo.shape;
  s.n_vocab = (*tok)->n_vocab(), s.n_ctx = 32, s.n_embd = 32, s.n_layer = 2, s.n_head = 4, s.n_head_kv = 2, s.n_ff = 64;
  bo.batch = 4, bo.seq_len = 24, bo.adamw.lr = 1e-2f, bo.adamw.total_steps = 30;
  std::string base_text;
  for (int i = 0; i < 6; ++i) base_text += kBaseText;
  auto bt = Trainer::create(bo, tokenize_documents(**tok, {base_text}), {}, 2);
  ASSERT_TRUE(bt.ok()) << bt.status().message();
  for (int i = 0; i < 30; ++i) (*bt)->train_step();
  const auto dir = testing::make_temp_dir("hearth-lora");
  const std::string base_path = (dir / "base.gguf").string();
  ASSERT_TRUE(export_gguf(base_path, (*bt)->params(), (*bt)->state().w.data(), *vocab, TensorType::F16, "base").ok());
  auto bytes = read_file(base_path);
  ASSERT_TRUE(bytes.ok());
  auto file = gguf::parse_gguf({reinterpret_cast<const std::byte*>(bytes->data()), bytes->size()}, base_path);
  ASSERT_TRUE(file.ok());
  auto base = read_base_model(*file, 32);
  ASSERT_TRUE(base.ok()) << base.status().message();
  const std::vector<float> base_w = base->w;

  std::string train_text, eval_text;
  for (int i = 0; i < 6; ++i) train_text += kNewText;
  eval_text = kNewText + kNewText;
  LoraOptions o;
  o.rank = 4, o.alpha = 8.0f, o.batch = 4, o.seq_len = 24;
  o.adamw.lr = 1e-2f, o.adamw.total_steps = 40, o.adamw.warmup_steps = 5;
  auto t = LoraTrainer::create(std::move(*base), o, tokenize_documents(**tok, {train_text}),
                               tokenize_documents(**tok, {eval_text}), 2);
  ASSERT_TRUE(t.ok()) << t.status().message();
  const double before = (*t)->eval_loss();
  for (int i = 0; i < 40; ++i) (*t)->train_step();
  const double after = (*t)->eval_loss();
  EXPECT_LT(after, before - 1.0) << "before " << before;

  // The adapter file: the ecosystem's layout and shapes.
  const std::string adapter = (dir / "adapter.gguf").string();
  ASSERT_TRUE((*t)->write_adapter(adapter, "base").ok());
  auto abytes = read_file(adapter);
  ASSERT_TRUE(abytes.ok());
  auto af = gguf::parse_gguf({reinterpret_cast<const std::byte*>(abytes->data()), abytes->size()}, adapter);
  ASSERT_TRUE(af.ok());
  EXPECT_EQ(*af->get_string("general.type"), "adapter");
  EXPECT_EQ(*af->get_string("adapter.type"), "lora");
  EXPECT_EQ(*af->get_f32("adapter.lora.alpha"), 8.0f);
  EXPECT_EQ(af->tensors().size(), 2u * 7u * 2u);  // 7 targets x 2 layers, A and B each
  const gguf::TensorInfo* a = af->find_tensor("blk.1.ffn_down.weight.lora_a");
  const gguf::TensorInfo* b = af->find_tensor("blk.1.ffn_down.weight.lora_b");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->ne[0], 64u);  // the base's ne[0] (ffn_down reads n_ff)
  EXPECT_EQ(a->ne[1], 4u);
  EXPECT_EQ(b->ne[0], 4u);
  EXPECT_EQ(b->ne[1], 32u);  // the base's ne[1]

  // merged = base + (alpha / rank) B A, recomputed here from the file for every target.
  const auto& merged = (*t)->merged();
  for (const ParamTensor& pt : (*t)->params().tensors()) {
    const bool adapted = af->find_tensor(pt.name + ".lora_a") != nullptr;
    const int64_t cols = pt.ne[0], rows = pt.ne.size() > 1 ? pt.ne[1] : 1;
    std::vector<float> A, B;
    if (adapted) A = read_f32(*af, pt.name + ".lora_a"), B = read_f32(*af, pt.name + ".lora_b");
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        double want = base_w[pt.offset + r * cols + c];
        if (adapted) {
          double d = 0.0;
          for (int64_t k = 0; k < 4; ++k) d += double(B[r * 4 + k]) * A[k * cols + c];
          want += 2.0 * d;
        }
        ASSERT_NEAR(merged[pt.offset + r * cols + c], want, 1e-5) << pt.name;
      }
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(Lora, MaskedTokensAreNeverTargets) {
  LlamaShape s;
  s.n_vocab = 300, s.n_ctx = 8, s.n_embd = 16, s.n_layer = 1, s.n_head = 2, s.n_head_kv = 1, s.n_ff = 32;
  LlamaParams p(s);
  BaseModel b{s, {}};
  init_params(p, b.w, 3);
  const std::vector<float> base_w = b.w;
  std::vector<int32_t> tokens;
  for (int i = 0; i < 64; ++i) tokens.push_back(10 + i % 7);
  std::vector<uint8_t> none(tokens.size(), 0), half(tokens.size(), 0);
  for (size_t i = 0; i < half.size(); i += 2) half[i] = 1;
  LoraOptions o;
  o.rank = 2, o.batch = 2, o.seq_len = 8, o.adamw.lr = 1e-2f;
  auto t = LoraTrainer::create(b, o, tokens, tokens, 1, none, half);
  ASSERT_TRUE(t.ok()) << t.status().message();
  int64_t scored = 0;
  (*t)->eval_loss(4, &scored);
  EXPECT_EQ(scored, 16);  // 4 windows of 8 targets, every other one counted
  for (int i = 0; i < 3; ++i) (*t)->train_step();
  // Nothing was a target: no gradient reached the adapter, and the model is the base.
  const auto& merged = (*t)->merged();
  for (size_t i = 0; i < merged.size(); ++i) ASSERT_EQ(merged[i], base_w[i]) << i;
  EXPECT_FALSE(LoraTrainer::create(b, o, tokens, tokens, 1, std::vector<uint8_t>(3, 1)).ok());
}

// The LoRA-native backward (u = x A^T, dB = s dy^T u, dA = s (dy B)^T x; no weight gradient)
// gives the gradient of the exact path through the full dL/dW', on random shapes, with B
// non-zero (after a few steps) so that both factors' gradients are exercised.
TEST(Lora, NativeGradientsEqualTheFullWeightGradientPath) {
  SplitMix64 shapes{77};
  for (int trial = 0; trial < 4; ++trial) {
    LlamaShape s;
    s.n_vocab = 40 + static_cast<int64_t>(shapes.next() % 60);
    s.n_head = 2 + static_cast<int64_t>(shapes.next() % 2);
    s.n_head_kv = s.n_head == 2 ? 1 : 3;
    s.n_embd = s.n_head * (4 + 2 * static_cast<int64_t>(shapes.next() % 3));
    s.n_ff = 8 + static_cast<int64_t>(shapes.next() % 24);
    s.n_layer = 1 + static_cast<int64_t>(shapes.next() % 2);
    s.n_ctx = 16;
    BaseModel b{s, {}};
    init_params(LlamaParams(s), b.w, 10 + trial);
    std::vector<int32_t> tokens;
    for (int i = 0; i < 200; ++i) tokens.push_back(static_cast<int32_t>(shapes.next() % s.n_vocab));
    LoraOptions o;
    o.rank = 1 + static_cast<int64_t>(shapes.next() % 5);
    o.alpha = 3.0f;
    o.batch = 2, o.seq_len = 5 + static_cast<int64_t>(shapes.next() % 8);
    o.adamw.lr = 5e-2f;
    auto t = LoraTrainer::create(b, o, tokens, tokens, 2);
    ASSERT_TRUE(t.ok()) << t.status().message();
    for (int i = 0; i < 3; ++i) (*t)->train_step();
    const std::vector<size_t> starts = {3, 40, 101};
    const std::vector<float> native = (*t)->lora_gradient(starts, false);
    const std::vector<float> exact = (*t)->lora_gradient(starts, true);
    ASSERT_EQ(native.size(), exact.size());
    double norm = 0.0, nonzero_b = 0.0;
    for (float g : exact) norm = std::max(norm, std::abs(static_cast<double>(g)));
    ASSERT_GT(norm, 0.0);
    for (size_t i = 0; i < native.size(); ++i) {
      ASSERT_NEAR(native[i], exact[i], 1e-4 * norm + 1e-7) << "trial " << trial << " element " << i;
      nonzero_b += std::abs(native[i]);
    }
    EXPECT_GT(nonzero_b, 0.0);
  }
}

TEST(Lora, RefusesUnknownTargetsAndNonLlamaBases) {
  LlamaShape s;
  s.n_vocab = 300, s.n_ctx = 8, s.n_embd = 8, s.n_layer = 1, s.n_head = 2, s.n_head_kv = 1, s.n_ff = 16;
  BaseModel b{s, std::vector<float>(LlamaParams(s).n_params(), 0.0f)};
  LoraOptions o;
  o.targets = {"q", "attn"};
  o.seq_len = 4;
  auto t = LoraTrainer::create(b, o, std::vector<int32_t>(64, 5), {}, 1);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("unknown LoRA target 'attn'"), std::string::npos);
}

// The case: a quantized base (../shared's stories260K, Q4_K_M) takes an adapter.
TEST(Lora, TrainsOnAQuantizedBase) {
  HEARTH_REQUIRE_SHARED(shared);
  auto bytes = read_file((shared / "models" / "stories260K-Q4_K_M.gguf").string());
  ASSERT_TRUE(bytes.ok());
  auto f = gguf::parse_gguf({reinterpret_cast<const std::byte*>(bytes->data()), bytes->size()}, "q4km");
  ASSERT_TRUE(f.ok());
  auto tok = tokenizer::Tokenizer::from_gguf(*f);
  ASSERT_TRUE(tok.ok());
  auto base = read_base_model(*f, 64);
  ASSERT_TRUE(base.ok()) << base.status().message();
  const std::string text = "Tim had a red kite. Tim and his dog ran to the hill to fly the red kite. ";
  std::string train_text;
  for (int i = 0; i < 10; ++i) train_text += text;
  LoraOptions o;
  o.batch = 4, o.seq_len = 32, o.adamw.lr = 1e-2f, o.adamw.total_steps = 25, o.adamw.warmup_steps = 3;
  auto t = LoraTrainer::create(std::move(*base), o, tokenize_documents(**tok, {train_text}),
                               tokenize_documents(**tok, {text + text + text}), 2);
  ASSERT_TRUE(t.ok()) << t.status().message();
  const double before = (*t)->eval_loss();
  for (int i = 0; i < 25; ++i) (*t)->train_step();
  EXPECT_LT((*t)->eval_loss(), before - 0.5) << "before " << before;
}

}  // namespace
}  // namespace hearth::train
