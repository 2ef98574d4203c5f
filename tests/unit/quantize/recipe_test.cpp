// Recipe rules: each expectation is the ecosystem's rule (llama.cpp llama-quant.cpp) applied by
// hand to the shape in the test, and, for the shared models, the tensor types that the
// reference quantizer actually stored in ../shared/models.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "hearth/gguf/gguf.h"
#include "hearth/quantize/quantize_model.h"
#include "hearth/quantize/recipe.h"
#include "shared_data.h"

namespace hearth::quantize {
namespace {

// A 32-layer llama with grouped-query attention: n_head 32, n_head_kv 8 (n_gqa 4).
ModelFacts llama32() { return {"llama", 32, 32, 8, 0, true}; }

TensorType pick(FileType ft, const std::string& name, uint64_t ne0, uint64_t ne1, const ModelFacts& m,
                uint64_t ne2 = 1) {
  Recipe r;
  r.ftype = ft;
  TensorShape t{name, ne2 > 1 ? 3u : 2u, {ne0, ne1, ne2, 1}};
  auto c = choose_type(r, t, TensorType::F32, m);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? c->type : TensorType::F32;
}

std::string blk(int i, const char* what) { return "blk." + std::to_string(i) + "." + what; }

TEST(RecipeTest, ParsesFileTypes) {
  EXPECT_EQ(parse_file_type("q4_k_m"), FileType::kQ4_K_M);
  EXPECT_EQ(parse_file_type("Q4_K"), FileType::kQ4_K_M);  // alias, as the ecosystem's tool
  EXPECT_EQ(parse_file_type("Q3_K"), FileType::kQ3_K_M);
  EXPECT_EQ(parse_file_type("15"), FileType::kQ4_K_M);  // LLAMA_FTYPE_MOSTLY_Q4_K_M
  EXPECT_EQ(parse_file_type("7"), FileType::kQ8_0);     // LLAMA_FTYPE_MOSTLY_Q8_0
  EXPECT_EQ(static_cast<uint32_t>(FileType::kQ6_K), 18u);
  EXPECT_EQ(static_cast<uint32_t>(FileType::kQ2_K), 10u);
  EXPECT_EQ(parse_file_type("iq4_nl"), FileType::kIQ4_NL);
  EXPECT_EQ(parse_file_type("25"), FileType::kIQ4_NL);  // LLAMA_FTYPE_MOSTLY_IQ4_NL
  EXPECT_EQ(parse_file_type("IQ4_XS"), FileType::kIQ4_XS);
  EXPECT_EQ(parse_file_type("30"), FileType::kIQ4_XS);  // LLAMA_FTYPE_MOSTLY_IQ4_XS
  EXPECT_FALSE(parse_file_type("Q7_K").has_value());
  EXPECT_FALSE(parse_file_type("").has_value());
  EXPECT_FALSE(parse_file_type("4").has_value());  // id 4 (Q4_1_SOME_F16) is not produced
}

TEST(RecipeTest, UseMoreBitsLayersOf32) {
  // i < 4 || i >= 28 || (i - 4) % 3 == 2, written out for n_layers = 32.
  const std::set<int> expected = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  for (int i = 0; i < 32; ++i) EXPECT_EQ(use_more_bits(i, 32), expected.count(i) == 1) << i;
}

TEST(RecipeTest, Q4KMGivesQ6KToSomeAttnVAndFfnDown) {
  const std::set<int> more = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  for (int i = 0; i < 32; ++i) {
    const TensorType want = more.count(i) ? TensorType::Q6_K : TensorType::Q4_K;
    EXPECT_EQ(pick(FileType::kQ4_K_M, blk(i, "attn_v.weight"), 4096, 1024, llama32()), want) << i;
    EXPECT_EQ(pick(FileType::kQ4_K_M, blk(i, "ffn_down.weight"), 14336, 4096, llama32()), want) << i;
    EXPECT_EQ(pick(FileType::kQ4_K_M, blk(i, "attn_q.weight"), 4096, 4096, llama32()), TensorType::Q4_K);
    EXPECT_EQ(pick(FileType::kQ4_K_M, blk(i, "ffn_up.weight"), 4096, 14336, llama32()), TensorType::Q4_K);
  }
  EXPECT_EQ(pick(FileType::kQ4_K_M, "output.weight", 4096, 128256, llama32()), TensorType::Q6_K);
  EXPECT_EQ(pick(FileType::kQ4_K_M, "token_embd.weight", 4096, 128256, llama32()), TensorType::Q4_K);
}

TEST(RecipeTest, SmallAndLargeKQuantMixes) {
  const ModelFacts m = llama32();
  // Q2_K: attn_v Q4_K when n_gqa >= 4 (else Q3_K), ffn_down Q3_K, attn_output Q3_K.
  EXPECT_EQ(pick(FileType::kQ2_K, blk(5, "attn_v.weight"), 4096, 1024, m), TensorType::Q4_K);
  ModelFacts mha = m;
  mha.n_head_kv = 32;
  EXPECT_EQ(pick(FileType::kQ2_K, blk(5, "attn_v.weight"), 4096, 4096, mha), TensorType::Q3_K);
  EXPECT_EQ(pick(FileType::kQ2_K, blk(5, "ffn_down.weight"), 14336, 4096, m), TensorType::Q3_K);
  EXPECT_EQ(pick(FileType::kQ2_K, blk(5, "attn_output.weight"), 4096, 4096, m), TensorType::Q3_K);
  EXPECT_EQ(pick(FileType::kQ2_K, blk(5, "ffn_gate.weight"), 4096, 14336, m), TensorType::Q2_K);
  // Q3_K_M: attn_v Q5_K in the first two layers then Q4_K; ffn_down Q5_K below n/16 = 2, then
  // Q4_K (not falcon); attn_output Q4_K.
  EXPECT_EQ(pick(FileType::kQ3_K_M, blk(1, "attn_v.weight"), 4096, 1024, m), TensorType::Q5_K);
  EXPECT_EQ(pick(FileType::kQ3_K_M, blk(2, "attn_v.weight"), 4096, 1024, m), TensorType::Q4_K);
  EXPECT_EQ(pick(FileType::kQ3_K_M, blk(1, "ffn_down.weight"), 14336, 4096, m), TensorType::Q5_K);
  EXPECT_EQ(pick(FileType::kQ3_K_M, blk(2, "ffn_down.weight"), 14336, 4096, m), TensorType::Q4_K);
  EXPECT_EQ(pick(FileType::kQ3_K_M, blk(2, "attn_output.weight"), 4096, 4096, m), TensorType::Q4_K);
  EXPECT_EQ(pick(FileType::kQ3_K_M, blk(2, "attn_q.weight"), 4096, 4096, m), TensorType::Q3_K);
  // Q3_K_L: attn_v, ffn_down and attn_output Q5_K. Q3_K_S: plain Q3_K.
  EXPECT_EQ(pick(FileType::kQ3_K_L, blk(9, "attn_v.weight"), 4096, 1024, m), TensorType::Q5_K);
  EXPECT_EQ(pick(FileType::kQ3_K_L, blk(9, "ffn_down.weight"), 14336, 4096, m), TensorType::Q5_K);
  EXPECT_EQ(pick(FileType::kQ3_K_L, blk(9, "attn_output.weight"), 4096, 4096, m), TensorType::Q5_K);
  EXPECT_EQ(pick(FileType::kQ3_K_S, blk(9, "attn_v.weight"), 4096, 1024, m), TensorType::Q3_K);
  // Q4_K_S: attn_v Q5_K in layers 0..3, ffn_down Q5_K below n/8 = 4.
  EXPECT_EQ(pick(FileType::kQ4_K_S, blk(3, "attn_v.weight"), 4096, 1024, m), TensorType::Q5_K);
  EXPECT_EQ(pick(FileType::kQ4_K_S, blk(4, "attn_v.weight"), 4096, 1024, m), TensorType::Q4_K);
  EXPECT_EQ(pick(FileType::kQ4_K_S, blk(3, "ffn_down.weight"), 14336, 4096, m), TensorType::Q5_K);
  EXPECT_EQ(pick(FileType::kQ4_K_S, blk(4, "ffn_down.weight"), 14336, 4096, m), TensorType::Q4_K);
  // Q5_K_M like Q4_K_M; Q5_K_S and Q6_K plain; Q8_0 keeps output at Q8_0.
  EXPECT_EQ(pick(FileType::kQ5_K_M, blk(6, "attn_v.weight"), 4096, 1024, m), TensorType::Q6_K);
  EXPECT_EQ(pick(FileType::kQ5_K_M, blk(7, "attn_v.weight"), 4096, 1024, m), TensorType::Q5_K);
  EXPECT_EQ(pick(FileType::kQ5_K_S, blk(6, "attn_v.weight"), 4096, 1024, m), TensorType::Q5_K);
  EXPECT_EQ(pick(FileType::kQ6_K, blk(6, "ffn_down.weight"), 14336, 4096, m), TensorType::Q6_K);
  EXPECT_EQ(pick(FileType::kQ8_0, "output.weight", 4096, 32000, m), TensorType::Q8_0);
  EXPECT_EQ(pick(FileType::kQ4_0, "output.weight", 4096, 32000, m), TensorType::Q6_K);
  EXPECT_EQ(pick(FileType::kQ4_0, blk(0, "ffn_down.weight"), 14336, 4096, m), TensorType::Q4_0);
}

TEST(RecipeTest, TiedEmbeddingsTakeTheOutputType) {
  ModelFacts m = llama32();
  m.has_output = false;
  EXPECT_EQ(pick(FileType::kQ4_K_M, "token_embd.weight", 4096, 151936, m), TensorType::Q6_K);
}

TEST(RecipeTest, EightExpertRules) {
  ModelFacts m{"llama", 32, 32, 8, 8, true};
  EXPECT_EQ(pick(FileType::kQ4_K_M, blk(0, "attn_v.weight"), 4096, 1024, m), TensorType::Q8_0);
  EXPECT_EQ(pick(FileType::kQ4_K_M, blk(0, "attn_k.weight"), 4096, 1024, m), TensorType::Q8_0);
  EXPECT_EQ(pick(FileType::kQ4_K_M, blk(0, "attn_output.weight"), 4096, 4096, m), TensorType::Q5_K);
  EXPECT_EQ(pick(FileType::kQ5_K_M, blk(0, "attn_output.weight"), 4096, 4096, m), TensorType::Q5_K);
  // ffn_down_exps: layer from the name; layer 6 gets more bits, layer 7 does not.
  EXPECT_EQ(pick(FileType::kQ4_K_M, blk(6, "ffn_down_exps.weight"), 14336, 4096, m, 8), TensorType::Q6_K);
  EXPECT_EQ(pick(FileType::kQ4_K_M, blk(7, "ffn_down_exps.weight"), 14336, 4096, m, 8), TensorType::Q4_K);
  // Four experts: no special rule.
  ModelFacts m4{"llama", 32, 32, 8, 4, true};
  EXPECT_EQ(pick(FileType::kQ4_K_M, blk(7, "attn_k.weight"), 4096, 1024, m4), TensorType::Q4_K);
}

TEST(RecipeTest, IQ4KeepsMoreBitsInAttnVAndTheFirstFfnDown) {
  for (FileType ft : {FileType::kIQ4_NL, FileType::kIQ4_XS}) {
    const TensorType base = base_type(ft);
    for (int i = 0; i < 32; ++i) {
      // attn_v: Q5_K with n_gqa >= 4; ffn_down: Q5_K in the first eighth (without an imatrix).
      EXPECT_EQ(pick(ft, blk(i, "attn_v.weight"), 4096, 1024, llama32()), TensorType::Q5_K) << i;
      EXPECT_EQ(pick(ft, blk(i, "ffn_down.weight"), 14336, 4096, llama32()), i < 4 ? TensorType::Q5_K : base) << i;
      EXPECT_EQ(pick(ft, blk(i, "attn_q.weight"), 4096, 4096, llama32()), base) << i;
    }
    EXPECT_EQ(pick(ft, "output.weight", 4096, 128256, llama32()), TensorType::Q6_K);
    EXPECT_EQ(pick(ft, "token_embd.weight", 4096, 128256, llama32()), base);
    // Without grouped-query attention attn_v keeps the base type.
    const ModelFacts mha{"llama", 32, 32, 32, 0, true};
    EXPECT_EQ(pick(ft, blk(0, "attn_v.weight"), 4096, 4096, mha), base);
    // 8 experts: attn_output Q5_K, attn_v Q8_0.
    const ModelFacts moe{"llama", 32, 32, 8, 8, true};
    EXPECT_EQ(pick(ft, blk(9, "attn_output.weight"), 4096, 4096, moe), TensorType::Q5_K);
    EXPECT_EQ(pick(ft, blk(9, "attn_v.weight"), 4096, 1024, moe), TensorType::Q8_0);
  }
  // With an imatrix the first ffn_down layers stay at the base type.
  Recipe r;
  r.ftype = FileType::kIQ4_XS;
  r.has_imatrix = true;
  TensorShape t{"blk.0.ffn_down.weight", 2, {14336, 4096, 1, 1}};
  EXPECT_EQ(choose_type(r, t, TensorType::F32, llama32())->type, TensorType::IQ4_XS);
}

TEST(RecipeTest, FallbacksWhenRowsDoNotFit) {
  const ModelFacts m = llama32();
  Recipe r;
  auto fb = [&](FileType ft, const std::string& name, uint64_t ne0) {
    r.ftype = ft;
    TensorShape t{name, 2, {ne0, 64, 1, 1}};
    auto c = choose_type(r, t, TensorType::F32, m);
    EXPECT_TRUE(c.ok());
    EXPECT_TRUE(c->fallback) << name;
    EXPECT_FALSE(c->note.empty());
    return c->type;
  };
  EXPECT_EQ(fb(FileType::kQ4_K_S, blk(9, "attn_q.weight"), 64), TensorType::Q5_0);  // q4_k -> q5_0
  EXPECT_EQ(fb(FileType::kQ5_K_S, blk(9, "attn_q.weight"), 96), TensorType::Q5_1);  // q5_k -> q5_1
  EXPECT_EQ(fb(FileType::kQ6_K, blk(9, "attn_q.weight"), 96), TensorType::Q8_0);    // q6_k -> q8_0
  EXPECT_EQ(fb(FileType::kQ2_K, blk(9, "attn_q.weight"), 64), TensorType::Q4_0);    // q2_k -> q4_0
  EXPECT_EQ(fb(FileType::kQ3_K_S, blk(9, "attn_q.weight"), 64), TensorType::Q4_0);  // q3_k -> q4_0
  EXPECT_EQ(fb(FileType::kQ4_K_M, blk(9, "attn_q.weight"), 172), TensorType::F16);  // fits nothing
  EXPECT_EQ(fb(FileType::kQ4_0, blk(9, "attn_q.weight"), 172), TensorType::F16);
  EXPECT_EQ(fb(FileType::kIQ4_XS, blk(9, "attn_q.weight"), 96), TensorType::IQ4_NL);  // iq4_xs -> iq4_nl
  EXPECT_EQ(fb(FileType::kIQ4_NL, blk(9, "attn_q.weight"), 172), TensorType::F16);
  // The output's own rule: a row that does not fit the K block gives Q8_0 directly.
  r.ftype = FileType::kQ4_K_M;
  TensorShape out{"output.weight", 2, {64, 512, 1, 1}};
  auto c = choose_type(r, out, TensorType::F32, m);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->type, TensorType::Q8_0);
}

TEST(RecipeTest, TensorsThatStayAsTheyAre) {
  const ModelFacts m = llama32();
  Recipe r;
  for (const char* name : {"blk.0.attn_norm.weight", "output_norm.weight", "blk.0.ffn_gate_inp.weight",
                           "blk.0.attn_q.bias", "rope_freqs.weight"}) {
    const bool two_d = std::string(name).find("gate_inp") != std::string::npos;
    TensorShape t{name, two_d ? 2u : 1u, {4096, two_d ? 8u : 1u, 1, 1}};
    auto c = choose_type(r, t, TensorType::F32, m);
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->quantized) << name;
    EXPECT_EQ(c->type, TensorType::F32) << name;
  }
}

TEST(RecipeTest, PureAndExplicitTypes) {
  const ModelFacts m = llama32();
  Recipe r;
  r.ftype = FileType::kQ4_K_M;
  r.pure = true;
  TensorShape v{"blk.0.attn_v.weight", 2, {4096, 1024, 1, 1}};
  EXPECT_EQ(choose_type(r, v, TensorType::F32, m)->type, TensorType::Q4_K);
  r.pure = false;
  r.output_type = TensorType::Q8_0;
  r.token_embedding_type = TensorType::Q4_0;
  TensorShape out{"output.weight", 2, {4096, 32000, 1, 1}};
  TensorShape emb{"token_embd.weight", 2, {4096, 32000, 1, 1}};
  EXPECT_EQ(choose_type(r, out, TensorType::F32, m)->type, TensorType::Q8_0);
  EXPECT_EQ(choose_type(r, emb, TensorType::F32, m)->type, TensorType::Q4_0);
  // An explicit type that the row does not fit is an error, not a silent fallback.
  r.output_type = TensorType::Q6_K;
  TensorShape small{"output.weight", 2, {64, 512, 1, 1}};
  auto c = choose_type(r, small, TensorType::F32, m);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("output.weight"), std::string::npos);
}

// The recipe must reproduce the tensor types that the reference quantizer chose for the shared
// files (their f32 sources are in the same folder).
void expect_same_plan(const std::filesystem::path& f32, const std::filesystem::path& ref, FileType ft) {
  auto src = gguf::GgufModelFile::open(f32.string());
  auto dst = gguf::GgufModelFile::open(ref.string());
  ASSERT_TRUE(src.ok() && dst.ok());
  QuantizeParams p;
  p.recipe.ftype = ft;
  auto plan = plan_quantization((*src)->file(), p);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  ASSERT_EQ(plan->size(), (*dst)->file().tensors().size());
  for (const TensorPlan& t : *plan) {
    const gguf::TensorInfo* r = (*dst)->file().find_tensor(t.name);
    ASSERT_NE(r, nullptr) << t.name;
    EXPECT_EQ(t.to, r->type) << ref.filename() << ": " << t.name << " hearth " << type_name(t.to) << ", reference "
                             << type_name(r->type);
  }
}

TEST(RecipeTest, MatchesTheReferenceFilesTensorTypes) {
  HEARTH_REQUIRE_SHARED(shared);
  const auto m = shared / "models";
  expect_same_plan(m / "stories260K-f32.gguf", m / "stories260K-Q8_0.gguf", FileType::kQ8_0);
  expect_same_plan(m / "stories260K-f32.gguf", m / "stories260K-Q4_0.gguf", FileType::kQ4_0);
  expect_same_plan(m / "stories260K-f32.gguf", m / "stories260K-Q4_K_M.gguf", FileType::kQ4_K_M);
  for (const char* s : {"synth-llama", "synth-llama-moe", "synth-qwen2", "synth-stablelm"}) {
    const auto d = m / "synth";
    expect_same_plan(d / (std::string(s) + "-f32.gguf"), d / (std::string(s) + "-Q8_0.gguf"), FileType::kQ8_0);
    expect_same_plan(d / (std::string(s) + "-f32.gguf"), d / (std::string(s) + "-Q4_K_M.gguf"), FileType::kQ4_K_M);
  }
  expect_same_plan(m / "synth/synth-llama-f32.gguf", m / "synth/synth-llama-IQ4_NL.gguf", FileType::kIQ4_NL);
  expect_same_plan(m / "synth/synth-llama-f32.gguf", m / "synth/synth-llama-IQ4_XS.gguf", FileType::kIQ4_XS);
}

}  // namespace
}  // namespace hearth::quantize

// bench --synthetic takes its types from the same recipes as `hearth quantize` (an F16 source).
// Expected types follow the ecosystem's Q4_K_M rule: output -> Q6_K; attn_v and ffn_down get
// Q6_K in use_more_bits layers (first and last eighth, every third in between: for 22 layers
// 0, 1, 4, 7, ..., 19, 20, 21); 8-expert models keep attn_v at Q8_0; norms and router F32.
TEST(SyntheticRecipe, FollowsTheQuantizeRecipes) {
  using hearth::TensorType;
  const auto* p1 = hearth::eval::find_preset("1b");
  ASSERT_NE(p1, nullptr);
  auto r = hearth::quantize::synthetic_recipe("q4_k", *p1);  // the ecosystem's alias of Q4_K_M
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->label, "q4_k_m");
  const std::vector<uint64_t> mat{2048, 2048}, kv{2048, 256}, down{5632, 2048}, norm{2048};
  EXPECT_EQ(*r->choose("output.weight", {2048, 32000}), TensorType::Q6_K);
  EXPECT_EQ(*r->choose("token_embd.weight", {2048, 32000}), TensorType::Q4_K);
  EXPECT_EQ(*r->choose("blk.0.attn_v.weight", kv), TensorType::Q6_K);
  EXPECT_EQ(*r->choose("blk.3.attn_v.weight", kv), TensorType::Q4_K);
  EXPECT_EQ(*r->choose("blk.4.attn_v.weight", kv), TensorType::Q6_K);
  EXPECT_EQ(*r->choose("blk.21.ffn_down.weight", down), TensorType::Q6_K);
  EXPECT_EQ(*r->choose("blk.5.ffn_down.weight", down), TensorType::Q4_K);
  EXPECT_EQ(*r->choose("blk.5.attn_q.weight", mat), TensorType::Q4_K);
  EXPECT_EQ(*r->choose("blk.5.attn_norm.weight", norm), TensorType::F32);
  auto f16 = hearth::quantize::synthetic_recipe("F16", *p1);
  ASSERT_TRUE(f16.ok());
  EXPECT_EQ(*f16->choose("output.weight", {2048, 32000}), TensorType::F16);
  EXPECT_EQ(*f16->choose("blk.0.ffn_norm.weight", norm), TensorType::F32);
  const auto* moe = hearth::eval::find_preset("8x7b");
  ASSERT_NE(moe, nullptr);
  auto m = hearth::quantize::synthetic_recipe("Q4_K_M", *moe);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m->choose("blk.3.attn_v.weight", {4096, 1024}), TensorType::Q8_0);
  EXPECT_EQ(*m->choose("blk.3.ffn_gate_inp.weight", {4096, 8}), TensorType::F32);
  auto bad = hearth::quantize::synthetic_recipe("q9_9", *p1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().to_string().find("q9_9"), std::string::npos);
}
