// BERT embedding models (arch `bert`) against the reference implementation's embeddings in
// ../shared/reference (README §9): per-token final hidden states (.embd.f32) and the pooled
// sentence vector (.pooled.f32, mean over all tokens, not normalised). The whole prompt is one
// batch with bidirectional attention. Tolerances (README §9), against `exact/` (f32 attention):
//   F32:       max|Δ| <= 1e-3 x max|ref| for the pooled vector and every token row;
//   quantized: max|Δ| <= 3e-2 x max|ref| and cosine >= 0.999.
// The default set (f16 K/V inside attention) is checked with the f16 KV cache at the quantized bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "reference_case.h"
#include "shared_data.h"

namespace hearth {
namespace {

struct BertCase {
  std::vector<int32_t> prompt_ids;
  int64_t n_embd = 0;
  std::vector<float> pooled;  // [n_embd]
  std::vector<float> embd;    // [n_prompt][n_embd]
};

std::vector<float> read_f32(const std::filesystem::path& p, size_t n) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + p.string());
  std::vector<float> v(n);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(float)));
  if (in.gcount() != static_cast<std::streamsize>(n * sizeof(float))) throw std::runtime_error("short " + p.string());
  return v;
}

BertCase load_case(const std::filesystem::path& dir, const std::string& stem) {
  std::ifstream in(dir / (stem + ".json"));
  if (!in) throw std::runtime_error("cannot open " + (dir / (stem + ".json")).string());
  const nlohmann::json j = nlohmann::json::parse(in);
  BertCase c;
  c.prompt_ids = j.at("prompt_ids").get<std::vector<int32_t>>();
  c.n_embd = j.at("n_embd").get<int64_t>();
  const auto n = static_cast<size_t>(c.n_embd);
  c.pooled = read_f32(dir / j.at("pooled_file").get<std::string>(), n);
  c.embd = read_f32(dir / j.at("token_embd_file").get<std::string>(), n * c.prompt_ids.size());
  return c;
}

struct Compare {
  double max_rel = 0.0;  // max|Δ| / max|ref|
  double cosine = 1.0;
};

Compare compare(const float* got, const float* ref, int64_t n) {
  double maxd = 0.0, maxr = 0.0, dot = 0.0, ng = 0.0, nr = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    maxd = std::max(maxd, static_cast<double>(std::fabs(got[i] - ref[i])));
    maxr = std::max(maxr, static_cast<double>(std::fabs(ref[i])));
    dot += static_cast<double>(got[i]) * ref[i];
    ng += static_cast<double>(got[i]) * got[i];
    nr += static_cast<double>(ref[i]) * ref[i];
  }
  return {maxd / std::max(maxr, 1e-30), dot / std::sqrt(std::max(ng * nr, 1e-30))};
}

struct Param {
  std::string model, case_name;
};

class BertReferenceTest : public ::testing::TestWithParam<Param> {};

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  std::string s = info.param.model + "_" + info.param.case_name;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

const model::Model& load_model(const std::filesystem::path& shared, const std::string& stem) {
  static std::map<std::string, std::unique_ptr<model::Model>> cache;
  auto it = cache.find(stem);
  if (it != cache.end()) return *it->second;
  auto m = model::Model::load(testing::model_path(shared, stem).string());
  if (!m.ok()) throw std::runtime_error(m.status().to_string());
  return *cache.emplace(stem, std::move(m).value()).first->second;
}

// The hidden state of every prompt token, the prompt decoded as one batch.
std::vector<float> run(const model::Model& m, const std::vector<int32_t>& ids, kernels::KvType kv) {
  model::ContextParams p;
  p.n_ctx = 512;
  p.kv_type = kv;
  p.n_threads = 2;
  auto c = model::Context::create(m, p);
  if (!c.ok()) throw std::runtime_error(c.status().to_string());
  std::vector<model::BatchToken> batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.push_back({ids[i], static_cast<int32_t>(i), 0, true});
  auto st = (*c)->decode(batch);
  if (!st.ok()) throw std::runtime_error(st.to_string());
  std::vector<float> out;
  for (int i = 0; i < (*c)->n_outputs(); ++i) {
    EXPECT_TRUE((*c)->logits(i).empty()) << "an encoder has no logits";
    auto h = (*c)->hidden(i);
    out.insert(out.end(), h.begin(), h.end());
  }
  return out;
}

std::vector<float> mean_rows(const std::vector<float>& rows, int64_t n_embd) {
  std::vector<float> mean(static_cast<size_t>(n_embd), 0.0f);
  const int64_t n_rows = static_cast<int64_t>(rows.size()) / n_embd;
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t i = 0; i < n_embd; ++i) mean[i] += rows[r * n_embd + i];
  for (float& x : mean) x /= static_cast<float>(n_rows);
  return mean;
}

void check(const std::vector<float>& rows, const BertCase& rc, double tol, double min_cos, const char* set) {
  const int64_t ne = rc.n_embd;
  ASSERT_EQ(rows.size(), rc.embd.size()) << set;
  for (size_t t = 0; t < rc.prompt_ids.size(); ++t) {
    const Compare r = compare(rows.data() + t * ne, rc.embd.data() + t * ne, ne);
    EXPECT_LE(r.max_rel, tol) << set << ": token row " << t;
    EXPECT_GE(r.cosine, min_cos) << set << ": token row " << t;
  }
  const std::vector<float> pooled = mean_rows(rows, ne);
  const Compare p = compare(pooled.data(), rc.pooled.data(), ne);
  EXPECT_LE(p.max_rel, tol) << set << ": pooled";
  EXPECT_GE(p.cosine, min_cos) << set << ": pooled";
  if (std::getenv("HEARTH_TEST_VERBOSE")) {
    std::printf("%s: pooled max|d|/max|ref| %.3g cosine 1-%.3g\n", set, p.max_rel, 1.0 - p.cosine);
  }
}

TEST_P(BertReferenceTest, MatchesReferenceEmbeddings) {
  HEARTH_REQUIRE_SHARED(shared);
  const Param& prm = GetParam();
  const std::string stem = prm.model + "__" + prm.case_name;
  const model::Model& m = load_model(shared, prm.model);
  ASSERT_EQ(m.hparams().arch, "bert");
  ASSERT_FALSE(m.hparams().causal);
  ASSERT_EQ(m.hparams().pooling, model::PoolingType::kMean);
  const bool f32 = prm.model.size() > 4 && prm.model.substr(prm.model.size() - 4) == "-f32";
  {
    const BertCase exact = load_case(shared / "reference" / "exact", stem);
    const auto rows = run(m, exact.prompt_ids, kernels::KvType::kF32);
    check(rows, exact, f32 ? 1e-3 : 3e-2, f32 ? 0.99999 : 0.999, "exact set");
  }
  {
    const BertCase def = load_case(shared / "reference", stem);
    const auto rows = run(m, def.prompt_ids, kernels::KvType::kF16);
    check(rows, def, f32 ? 5e-3 : 3e-2, 0.999, "default set");
  }
}

std::vector<Param> all_params() {
  std::vector<Param> out;
  for (const char* m : {"synth-bert-f32", "synth-bert-Q8_0", "synth-bert-Q4_K_M"})
    for (const char* c : {"once-upon-a-time", "little-dog-happy", "lily-and-ben"}) out.push_back({m, c});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shared, BertReferenceTest, ::testing::ValuesIn(all_params()), param_name);

// A sequence longer than n_batch would be cut in halves that cannot see each other: refused.
TEST(BertContext, SequenceLongerThanBatchIsRefused) {
  HEARTH_REQUIRE_SHARED(shared);
  const model::Model& m = load_model(shared, "synth-bert-f32");
  model::ContextParams p;
  p.n_ctx = 64;
  p.n_batch = 8;
  p.n_threads = 1;
  auto c = model::Context::create(m, p);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  std::vector<model::BatchToken> batch;
  for (int32_t i = 0; i < 9; ++i) batch.push_back({101, i, 0, true});
  auto st = (*c)->decode(batch);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("larger than n_batch 8"), std::string::npos) << st.to_string();
}

}  // namespace
}  // namespace hearth
