// LoRA adapters at inference: scale 0 is the base model bit for bit; scale s equals a model whose
// weights were merged explicitly; sequences with different adapters in one batch equal each run
// alone; and a catalogue of hostile adapter files, each refused with an error naming the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "hearth/model/context.h"
#include "hearth/model/lora_adapter.h"
#include "hearth/model/model.h"
#include "lora_fixture.h"
#include "shared_data.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using testing::LoraBase;
using testing::LoraFile;

const int32_t kPrompt[] = {3, 17, 5, 9, 22, 1, 12};
constexpr int kN = 7;

class LoraTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("hearth-lora-model");
    ASSERT_TRUE(base_.write(path("base.gguf")));
    auto m = model::Model::load(path("base.gguf"));
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    model_ = std::move(*m);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::shared_ptr<const model::LoraAdapter> adapter(const LoraFile& f, const std::string& name) {
    EXPECT_TRUE(f.write(path(name)));
    auto a = model::LoraAdapter::load(path(name), *model_);
    EXPECT_TRUE(a.ok()) << a.status().to_string();
    return a.ok() ? *a : nullptr;
  }

  static std::unique_ptr<model::Context> context(const model::Model& m, int n_seq = 1) {
    model::ContextParams p;
    p.n_ctx = 32;
    p.n_seq = n_seq;
    p.n_threads = 2;
    p.kv_type = kernels::KvType::kF32;
    auto c = model::Context::create(m, p);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // Logits of every prompt position, as one batch of sequence `seq`.
  static std::vector<float> logits(model::Context& c, int seq = 0) {
    std::vector<model::BatchToken> batch;
    for (int i = 0; i < kN; ++i) batch.push_back({kPrompt[i], i, seq, true});
    EXPECT_TRUE(c.decode(batch).ok());
    std::vector<float> out;
    for (int i = 0; i < c.n_outputs(); ++i) out.insert(out.end(), c.logits(i).begin(), c.logits(i).end());
    return out;
  }

  fs::path dir_;
  LoraBase base_;
  std::unique_ptr<model::Model> model_;
};

TEST_F(LoraTest, ScaleZeroAndClearedAdaptersGiveTheBaseLogitsExactly) {
  LoraFile f(base_, testing::all_lora_targets(), 4, 1);
  auto a = adapter(f, "a.gguf");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->weights().size(), testing::all_lora_targets().size());
  auto c = context(*model_);
  const std::vector<float> base = logits(*c);
  ASSERT_TRUE(c->set_adapters(0, {{a, 0.0f}}).ok());
  EXPECT_EQ(logits(*c), base);  // bit for bit
  ASSERT_TRUE(c->set_adapters(0, {{a, 1.0f}}).ok());
  EXPECT_NE(logits(*c), base);
  ASSERT_TRUE(c->set_adapters(0, {}).ok());
  EXPECT_EQ(logits(*c), base);
}

// Tolerance: the adapted path computes W x + s B (A x) where the merged model computes
// (W + s B A) x, i.e. the same sums reassociated, each of at most 32 f32 products of size ~0.1;
// the rounding differences (~1e-6 relative) pass through two layers and the head. Logits are
// O(1), so 1e-4 absolute is ~100x the expected error and far below the adapters' effect (>0.1).
constexpr float kTol = 1e-4f;

void expect_near_all(const std::vector<float>& a, const std::vector<float>& b, float tol, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LE(worst, tol) << what;
}

TEST_F(LoraTest, AdaptedLogitsEqualTheExplicitlyMergedModel) {
  // Two adapters on overlapping weights, of different ranks, one stored as F16.
  LoraFile f1(base_, testing::all_lora_targets(), 4, 1);
  std::vector<std::string> some = {"blk.0.attn_q.weight", "blk.1.ffn_down.weight", "blk.1.attn_v.weight"};
  LoraFile f2(base_, some, 2, 2, 3.0f);
  for (auto& fac : f2.factors) {
    fac.type = TensorType::F16;
    for (auto& x : fac.v) x = kernels::fp16_to_fp32(kernels::fp32_to_fp16(x));  // the oracle sees what loads
  }
  auto a1 = adapter(f1, "a1.gguf");
  auto a2 = adapter(f2, "a2.gguf");
  ASSERT_TRUE(a1 && a2);
  const float s1 = 0.7f, s2 = -1.5f;
  auto merged_values = testing::merge_explicitly(base_, {{&f1, s1}, {&f2, s2}});
  ASSERT_TRUE(base_.write(path("merged.gguf"), &merged_values));
  auto merged = model::Model::load(path("merged.gguf"));
  ASSERT_TRUE(merged.ok()) << merged.status().to_string();

  auto c = context(*model_);
  const std::vector<float> base = logits(*c);
  ASSERT_TRUE(c->set_adapters(0, {{a1, s1}, {a2, s2}}).ok());
  const std::vector<float> adapted = logits(*c);
  auto cm = context(**merged);
  const std::vector<float> want = logits(*cm);
  expect_near_all(adapted, want, kTol, "adapted vs merged");
  float effect = 0.0f;
  for (size_t i = 0; i < base.size(); ++i) effect = std::max(effect, std::fabs(base[i] - want[i]));
  EXPECT_GT(effect, 0.1f) << "the adapters should change the logits";
}

TEST_F(LoraTest, SequencesWithDifferentAdaptersInOneBatchEqualEachAlone) {
  LoraFile f1(base_, testing::all_lora_targets(), 4, 1);
  LoraFile f2(base_, {"blk.0.ffn_up.weight", "blk.1.attn_output.weight"}, 3, 9);
  auto a1 = adapter(f1, "a1.gguf");
  auto a2 = adapter(f2, "a2.gguf");
  ASSERT_TRUE(a1 && a2);
  const std::vector<std::vector<model::LoraUse>> sets = {{{a1, 1.0f}}, {}, {{a2, 2.0f}, {a1, 0.5f}}};

  std::vector<std::vector<float>> alone;
  for (const auto& s : sets) {
    auto c = context(*model_);
    ASSERT_TRUE(c->set_adapters(0, s).ok());
    alone.push_back(logits(*c));
  }
  auto c = context(*model_, 3);
  for (int s = 0; s < 3; ++s) ASSERT_TRUE(c->set_adapters(s, sets[static_cast<size_t>(s)]).ok());
  std::vector<model::BatchToken> batch;
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < kN; ++i) batch.push_back({kPrompt[i], i, s, true});
  }
  ASSERT_TRUE(c->decode(batch).ok());
  const auto nv = static_cast<size_t>(model_->hparams().n_vocab);
  for (int s = 0; s < 3; ++s) {
    std::vector<float> got;
    for (int i = 0; i < kN; ++i) {
      auto l = c->logits(s * kN + i);
      got.insert(got.end(), l.begin(), l.end());
    }
    ASSERT_EQ(got.size(), kN * nv);
    // Same arithmetic per row; only the batch's row count differs (1e-5: kernels may block rows).
    expect_near_all(got, alone[static_cast<size_t>(s)], 1e-5f, ("sequence " + std::to_string(s)).c_str());
  }
  EXPECT_NE(alone[0], alone[1]);
  EXPECT_NE(alone[2], alone[1]);
}

TEST_F(LoraTest, ContextRefusesBadAdapterUses) {
  LoraFile f(base_, {"blk.0.attn_q.weight"}, 2, 1);
  auto a = adapter(f, "a.gguf");
  ASSERT_NE(a, nullptr);
  auto c = context(*model_);
  auto s = c->set_adapters(1, {{a, 1.0f}});
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  s = c->set_adapters(0, {{a, std::numeric_limits<float>::quiet_NaN()}});
  EXPECT_NE(s.message().find("not finite"), std::string::npos) << s.message();
  // An adapter loaded for another model (same file, other Model object).
  auto other = model::Model::load(path("base.gguf"));
  ASSERT_TRUE(other.ok());
  auto c2 = context(**other);
  s = c2->set_adapters(0, {{a, 1.0f}});
  EXPECT_NE(s.message().find("another model"), std::string::npos) << s.message();
}

// The hostile catalogue: each corrupted adapter and the error it must give.
struct HostileCase {
  const char* what;
  std::function<void(LoraFile&)> corrupt;
  ErrorCode code;
  const char* message;
};

TEST_F(LoraTest, HostileAdaptersAreRefusedWithNamedErrors) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<HostileCase> cases = {
      {"wrong general.type", [](LoraFile& f) { f.general_type = "model"; }, ErrorCode::kInvalidArgument,
       "general.type is \"model\", not \"adapter\""},
      {"wrong adapter.type", [](LoraFile& f) { f.adapter_type = "ia3"; }, ErrorCode::kInvalidArgument,
       "adapter.type is \"ia3\", not \"lora\""},
      {"NaN alpha", [nan](LoraFile& f) { f.alpha = nan; }, ErrorCode::kInvalidArgument,
       "adapter.lora.alpha is nan; it must be finite and > 0"},
      {"zero alpha", [](LoraFile& f) { f.alpha = 0.0f; }, ErrorCode::kInvalidArgument, "must be finite and > 0"},
      {"missing alpha", [](LoraFile& f) { f.write_alpha = false; }, ErrorCode::kInvalidArgument, "adapter.lora.alpha"},
      {"no tensors", [](LoraFile& f) { f.factors.clear(); }, ErrorCode::kInvalidArgument, "the adapter has no tensors"},
      {"missing pair", [](LoraFile& f) { f.factors.pop_back(); }, ErrorCode::kInvalidArgument,
       "tensor 'blk.1.attn_k.weight.lora_a' has no matching 'blk.1.attn_k.weight.lora_b'"},
      {"not a factor", [](LoraFile& f) { f.factors[0].name = "blk.0.attn_q.weight.lora_c"; },
       ErrorCode::kInvalidArgument, "tensor 'blk.0.attn_q.weight.lora_c' is not a LoRA factor"},
      {"unknown tensor",
       [](LoraFile& f) {
         f.factors[0].name = "blk.7.attn_q.weight.lora_a";
         f.factors[1].name = "blk.7.attn_q.weight.lora_b";
       },
       ErrorCode::kInvalidArgument, "tensor 'blk.7.attn_q.weight.lora_a': the base model"},
      {"a weight hearth does not adapt",
       [](LoraFile& f) {
         f.factors[0].name = "output.weight.lora_a";
         f.factors[1].name = "output.weight.lora_b";
         f.factors[1].ne = {2, 24};
         f.factors[1].v.assign(48, 0.1f);
       },
       ErrorCode::kUnimplemented, "tensor 'output.weight.lora_a': hearth applies adapters to attention"},
      {"wrong A columns",
       [](LoraFile& f) {
         f.factors[0].ne = {8, 4};
         f.factors[0].v.resize(32);
       },
       ErrorCode::kInvalidArgument,
       "tensor 'blk.0.attn_q.weight.lora_a': ne[0] is 8, the base tensor 'blk.0.attn_q.weight' has 16 columns"},
      {"wrong B rows",
       [](LoraFile& f) {
         f.factors[3].ne = {2, 16};
         f.factors[3].v.resize(32);
       },
       ErrorCode::kInvalidArgument,
       "tensor 'blk.1.attn_k.weight.lora_b': ne[1] is 16, the base tensor 'blk.1.attn_k.weight' has 8 rows"},
      {"ranks differ",
       [](LoraFile& f) {
         f.factors[1].ne = {3, 16};
         f.factors[1].v.resize(48);
       },
       ErrorCode::kInvalidArgument, "tensor 'blk.0.attn_q.weight.lora_b': rank 3 differs from the rank 2"},
      {"rank above the bound",
       [](LoraFile& f) {
         f.factors[0].ne = {16, 4097};
         f.factors[0].v.assign(16 * 4097, 0.0f);
         f.factors[1].ne = {4097, 16};
         f.factors[1].v.assign(16 * 4097, 0.0f);
       },
       ErrorCode::kInvalidArgument, "tensor 'blk.0.attn_q.weight.lora_a': rank 4097 is outside [1, 4096]"},
      {"3-D factor",
       [](LoraFile& f) {
         f.factors[0].ne = {16, 1, 2};
       },
       ErrorCode::kInvalidArgument, "tensor 'blk.0.attn_q.weight.lora_a': LoRA factors are 2-D, this one has 3 dims"},
      {"wrong type", [](LoraFile& f) { f.factors[0].type = TensorType::I32; }, ErrorCode::kInvalidArgument,
       "tensor 'blk.0.attn_q.weight.lora_a': type i32 is not supported"},
      {"NaN factor", [nan](LoraFile& f) { f.factors[2].v[5] = nan; }, ErrorCode::kInvalidArgument,
       "tensor 'blk.1.attn_k.weight.lora_a': element 5 is not finite"},
  };
  for (const auto& hc : cases) {
    LoraFile f(base_, {"blk.0.attn_q.weight", "blk.1.attn_k.weight"}, 2, 3);
    hc.corrupt(f);
    const std::string p = path("hostile.gguf");
    if (!f.write(p)) {
      ADD_FAILURE() << hc.what << ": the writer refused the corrupted file";
      continue;
    }
    auto a = model::LoraAdapter::load(p, *model_);
    ASSERT_FALSE(a.ok()) << hc.what;
    EXPECT_EQ(a.status().code(), hc.code) << hc.what << ": " << a.status().message();
    EXPECT_NE(a.status().message().find(hc.message), std::string::npos) << hc.what << ": " << a.status().message();
    EXPECT_NE(a.status().message().find(p), std::string::npos) << hc.what << ": names the file";
  }
}

// Rank 0 cannot be written (the writer refuses an empty dimension), so the file is patched:
// the GGUF parser refuses a zero dimension before the adapter sees it, naming the tensor.
TEST_F(LoraTest, RankZeroIsRefused) {
  LoraFile f(base_, {"blk.0.attn_q.weight"}, 1, 3);
  const std::string p = path("rank0.gguf");
  ASSERT_TRUE(f.write(p));
  std::string bytes;
  {
    std::ifstream in(p, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // Tensor info: name, n_dims (u32), ne[0] (u64) = 16, ne[1] (u64) = rank 1.
  const std::string name = "blk.0.attn_q.weight.lora_a";
  const size_t at = bytes.find(name);
  ASSERT_NE(at, std::string::npos);
  const size_t ne1 = at + name.size() + 4 + 8;
  ASSERT_EQ(bytes[ne1], 1);
  bytes[ne1] = 0;
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  auto a = model::LoraAdapter::load(p, *model_);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find(name), std::string::npos) << a.status().message();
  EXPECT_NE(a.status().message().find("dimension 1 is 0"), std::string::npos) << a.status().message();
}

}  // namespace
}  // namespace hearth
