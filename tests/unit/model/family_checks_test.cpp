// Each family's loader refuses inconsistent keys and shapes with a message naming them (the
// "Bad input" list of issue 18). One crafted file per check, written with the GGUF writer;
// each test also loads the corrected file, so the refusal is the check's and not another's.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "hearth/model/model.h"
#include "shared_data.h"
#include "tiny_model.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using testing::TinyModel;

class FamilyChecksTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_temp_dir("hearth-family"); }
  void TearDown() override { fs::remove_all(dir_); }
  Result<std::unique_ptr<model::Model>> load(TinyModel& t, const std::string& name) {
    const std::string path = (dir_ / name).string();
    EXPECT_TRUE(t.w.write(path).ok());
    return model::Model::load(path);
  }
  // `make(bad)` writes the bad (true) or good (false) file.
  void expect_refused(const std::function<void(TinyModel&, bool)>& make, const std::string& arch,
                      const std::string& want) {
    TinyModel bad(arch);
    make(bad, true);
    auto m = load(bad, "bad.gguf");
    ASSERT_FALSE(m.ok()) << "expected: " << want;
    EXPECT_EQ(m.status().code(), ErrorCode::kInvalidArgument) << m.status().to_string();
    EXPECT_NE(m.status().message().find(want), std::string::npos) << m.status().message();
    TinyModel good(arch);
    make(good, false);
    auto ok = load(good, "good.gguf");
    EXPECT_TRUE(ok.ok()) << ok.status().to_string();
  }
  fs::path dir_;
};

// gemma2 / gemma3: the llama layout plus post-norms (and q/k norms for gemma3), a window of 8
// (the default 4096 is over this context of 64) and gemma3's pattern 2 (the default 6 is over
// block_count + 1). Tests overwrite a key to make it bad.
void gemma(TinyModel& t, uint64_t q_norm = 4, uint64_t k_norm = 4) {
  t.llama_layout();
  t.w.set_u32(t.arch + ".attention.sliding_window", 8);
  if (t.arch == "gemma3") t.w.set_u32("gemma3.attention.sliding_window_pattern", 2);
  t.tensor("blk.0.post_attention_norm.weight", {8});
  t.tensor("blk.0.post_ffw_norm.weight", {8});
  if (t.arch == "gemma3") {
    t.tensor("blk.0.attn_q_norm.weight", {q_norm});
    t.tensor("blk.0.attn_k_norm.weight", {k_norm});
  }
}

TEST_F(FamilyChecksTest, Gemma2FinalSoftCapOfZero) {
  expect_refused(
      [](TinyModel& t, bool bad) {
        gemma(t);
        t.w.set_f32("gemma2.final_logit_softcapping", bad ? 0.0f : 30.0f);
      },
      "gemma2", "'gemma2.final_logit_softcapping' = 0 must be a positive number");
}

TEST_F(FamilyChecksTest, Gemma2NegativeAttentionSoftCap) {
  expect_refused(
      [](TinyModel& t, bool bad) {
        gemma(t);
        t.w.set_f32("gemma2.attn_logit_softcapping", bad ? -50.0f : 50.0f);
      },
      "gemma2", "'gemma2.attn_logit_softcapping' = -50 must be a positive number");
}

TEST_F(FamilyChecksTest, Gemma2ZeroSlidingWindow) {
  expect_refused(
      [](TinyModel& t, bool bad) {
        gemma(t);
        t.w.set_u32("gemma2.attention.sliding_window", bad ? 0 : 8);
      },
      "gemma2", "attention.sliding_window 0 must be in [1, context_length 64]");
}

TEST_F(FamilyChecksTest, Gemma3SlidingWindowLargerThanTheContext) {
  expect_refused(
      [](TinyModel& t, bool bad) {
        gemma(t);
        t.w.set_u32("gemma3.attention.sliding_window", bad ? 65 : 64);
      },
      "gemma3", "attention.sliding_window 65 must be in [1, context_length 64]");
}

TEST_F(FamilyChecksTest, Gemma3ZeroSlidingWindowPattern) {
  expect_refused(
      [](TinyModel& t, bool bad) {
        gemma(t);
        t.w.set_u32("gemma3.attention.sliding_window_pattern", bad ? 0 : 2);
      },
      "gemma3", "attention.sliding_window_pattern 0 must be in [1, block_count + 1 = 2]");
}

TEST_F(FamilyChecksTest, Gemma3QNormMustMatchHeadDim) {
  expect_refused([](TinyModel& t, bool bad) { gemma(t, bad ? 8 : 4, 4); }, "gemma3",
                 "'blk.0.attn_q_norm.weight' has shape [8]");
}

TEST_F(FamilyChecksTest, Gemma3KNormMustMatchHeadDim) {
  expect_refused([](TinyModel& t, bool bad) { gemma(t, 4, bad ? 2 : 4); }, "gemma3",
                 "'blk.0.attn_k_norm.weight' has shape [2]");
}

TEST_F(FamilyChecksTest, Gemma3LocalRopeBaseOfZero) {
  expect_refused(
      [](TinyModel& t, bool bad) {
        gemma(t);
        t.w.set_f32("gemma3.rope.freq_base_swa", bad ? 0.0f : 10000.0f);
      },
      "gemma3", "'gemma3.rope.freq_base_swa' = 0 must be a positive number");
}

TEST_F(FamilyChecksTest, Qwen3KNormMustMatchHeadDim) {
  expect_refused(
      [](TinyModel& t, bool bad) {
        t.llama_layout();
        t.tensor("blk.0.attn_q_norm.weight", {4});
        t.tensor("blk.0.attn_k_norm.weight", {bad ? 8u : 4u});
      },
      "qwen3", "'blk.0.attn_k_norm.weight' has shape [8]");
}

TEST_F(FamilyChecksTest, Qwen3MissingQNorm) {
  TinyModel t("qwen3");
  t.llama_layout();
  t.tensor("blk.0.attn_k_norm.weight", {4});
  auto m = load(t, "noqnorm.gguf");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("blk.0.attn_q_norm.weight"), std::string::npos) << m.status().message();
}

// phi3: the keys of the llama layout with fused attn_qkv [n_embd, q + 2 kv = 16] and ffn_up
// [n_embd, 2 n_ff = 32].
void phi3(TinyModel& t, uint64_t qkv_rows, uint64_t up_rows) {
  t.keys();
  t.tensor("token_embd.weight", {8, 10});
  t.tensor("output_norm.weight", {8});
  t.tensor("blk.0.attn_norm.weight", {8});
  t.tensor("blk.0.attn_qkv.weight", {8, qkv_rows});
  t.tensor("blk.0.attn_output.weight", {8, 8});
  t.tensor("blk.0.ffn_norm.weight", {8});
  t.tensor("blk.0.ffn_up.weight", {8, up_rows});
  t.tensor("blk.0.ffn_down.weight", {16, 8});
}

TEST_F(FamilyChecksTest, Phi3FusedQkvWithWrongRowCount) {
  // 24 rows would be q | k | v with as many kv heads as query heads; the file says 1 kv head.
  expect_refused([](TinyModel& t, bool bad) { phi3(t, bad ? 24 : 16, 32); }, "phi3",
                 "'blk.0.attn_qkv.weight' has shape [8, 24]");
}

TEST_F(FamilyChecksTest, Phi3FusedGateUpWithWrongRowCount) {
  expect_refused([](TinyModel& t, bool bad) { phi3(t, 16, bad ? 16 : 32); }, "phi3",
                 "'blk.0.ffn_up.weight' has shape [8, 16]");
}

// bert: the tiny encoder of load_test (2 heads of 4, n_ff 16, 64 positions, 2 token types).
void bert(TinyModel& t, const std::string& skip = "") {
  t.w.set_string("general.architecture", "bert");
  t.w.set_u32("bert.context_length", 64);
  t.w.set_u32("bert.embedding_length", 8);
  t.w.set_u32("bert.block_count", 1);
  t.w.set_u32("bert.feed_forward_length", 16);
  t.w.set_u32("bert.attention.head_count", 2);
  t.w.set_f32("bert.attention.layer_norm_epsilon", 1e-12f);
  const std::vector<std::pair<std::string, std::vector<uint64_t>>> tensors = {
      {"token_embd.weight", {8, 10}}, {"token_types.weight", {8, 2}}, {"position_embd.weight", {8, 64}},
      {"token_embd_norm.weight", {8}}, {"token_embd_norm.bias", {8}}, {"blk.0.attn_q.weight", {8, 8}},
      {"blk.0.attn_q.bias", {8}}, {"blk.0.attn_k.weight", {8, 8}}, {"blk.0.attn_k.bias", {8}},
      {"blk.0.attn_v.weight", {8, 8}}, {"blk.0.attn_v.bias", {8}}, {"blk.0.attn_output.weight", {8, 8}},
      {"blk.0.attn_output.bias", {8}}, {"blk.0.attn_output_norm.weight", {8}},
      {"blk.0.attn_output_norm.bias", {8}}, {"blk.0.ffn_up.weight", {8, 16}}, {"blk.0.ffn_up.bias", {16}},
      {"blk.0.ffn_down.weight", {16, 8}}, {"blk.0.ffn_down.bias", {8}}, {"blk.0.layer_output_norm.weight", {8}},
      {"blk.0.layer_output_norm.bias", {8}},
  };
  for (const auto& [name, ne] : tensors) {
    if (name != skip) t.tensor(name, ne);
  }
}

TEST_F(FamilyChecksTest, BertMissingPositionEmbeddings) {
  expect_refused([](TinyModel& t, bool bad) { bert(t, bad ? "position_embd.weight" : ""); }, "bert",
                 "position_embd.weight");
}

TEST_F(FamilyChecksTest, BertPoolingTypeOutOfRange) {
  TinyModel t("bert");
  bert(t);
  t.w.set_u32("bert.pooling_type", 7);
  auto m = load(t, "pool.gguf");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("bert.pooling_type 7 is not supported (0 none, 1 mean, 2 cls, 3 last are)"),
            std::string::npos)
      << m.status().message();
}

TEST_F(FamilyChecksTest, BertPoolingTypeOfTheWrongKind) {
  expect_refused(
      [](TinyModel& t, bool bad) {
        bert(t);
        if (bad) {
          t.w.set_string("bert.pooling_type", "mean");
        } else {
          t.w.set_u32("bert.pooling_type", 2);
        }
      },
      "bert", "bert.pooling_type");
}

}  // namespace
}  // namespace hearth
