// Importance matrices: accumulation by hand-computed example, the ecosystem's GGUF layout,
// collection over the shared models (row counts follow from the window sizes and the MoE
// top-k), and quantization with an imatrix lowering the importance-weighted error.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "hearth/gguf/gguf.h"
#include "hearth/kernels/quant.h"
#include "hearth/quantize/imatrix.h"
#include "hearth/quantize/imatrix_collector.h"
#include "hearth/quantize/quantize_model.h"
#include "shared_data.h"
#include "test_models.h"

namespace hearth::quantize {
namespace {

namespace fs = std::filesystem;

TEST(ImatrixTest, AccumulatesSumsOfSquaresAndCounts) {
  Imatrix m;
  // Two rows of 3 columns, stride 4: x = [1 2 3 _; -1 0 2 _].
  const float x[] = {1, 2, 3, 99, -1, 0, 2, 99};
  ASSERT_TRUE(m.accumulate("blk.0.attn_q.weight", 0, 1, 3, x, 4, 2).ok());
  const ImatrixEntry* e = m.find("blk.0.attn_q.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->sum2, (std::vector<double>{2, 4, 13}));  // 1+1, 4+0, 9+4
  EXPECT_EQ(e->counts, (std::vector<double>{2}));
  const std::vector<float> imp = m.importance(*e, 0);
  EXPECT_EQ(imp, (std::vector<float>{1, 2, 6.5f}));
  // A second matrix count for an expert weight, and a mismatched shape.
  ASSERT_TRUE(m.accumulate("blk.0.ffn_up_exps.weight", 1, 2, 3, x, 4, 1).ok());
  const ImatrixEntry* ex = m.find("blk.0.ffn_up_exps.weight");
  EXPECT_EQ(ex->counts, (std::vector<double>{0, 1}));
  EXPECT_EQ(m.importance(*ex, 0), (std::vector<float>{1, 1, 1}));  // no rows: all ones
  EXPECT_FALSE(m.accumulate("blk.0.attn_q.weight", 0, 1, 4, x, 4, 1).ok());
}

TEST(ImatrixTest, GgufLayoutRoundTrips) {
  Imatrix m;
  m.datasets = {"alice.txt"};
  m.chunk_count = 3;
  m.chunk_size = 512;
  const float x[] = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(m.accumulate("blk.1.ffn_down.weight", 0, 1, 3, x, 3, 2).ok());
  ASSERT_TRUE(m.accumulate("blk.0.ffn_down_exps.weight", 1, 2, 2, x, 2, 3).ok());
  const fs::path dir = hearth::testing::make_temp_dir("hearth-imatrix");
  const fs::path path = dir / "imatrix.gguf";
  ASSERT_TRUE(m.write(path.string()).ok());

  auto f = gguf::GgufModelFile::open(path.string());
  ASSERT_TRUE(f.ok());
  const gguf::GgufFile& g = (*f)->file();
  EXPECT_EQ(*g.get_string("general.type"), "imatrix");
  EXPECT_EQ(*g.get_u32("imatrix.chunk_count"), 3u);
  EXPECT_EQ(*g.get_u32("imatrix.chunk_size"), 512u);
  ASSERT_EQ((*g.get_array("imatrix.datasets", gguf::ValueType::STRING))->strings.at(0), "alice.txt");
  const gguf::TensorInfo* s = g.find_tensor("blk.0.ffn_down_exps.weight.in_sum2");
  const gguf::TensorInfo* c = g.find_tensor("blk.0.ffn_down_exps.weight.counts");
  ASSERT_TRUE(s && c);
  EXPECT_EQ(s->type, TensorType::F32);
  EXPECT_EQ(s->ne[0], 2u);
  EXPECT_EQ(s->ne[1], 2u);  // [n_cols, n_mat]
  EXPECT_EQ(c->ne[0], 1u);
  EXPECT_EQ(c->ne[1], 2u);  // [1, n_mat]
  // Names sorted, as the ecosystem writes them.
  EXPECT_EQ(g.tensors().front().name, "blk.0.ffn_down_exps.weight.in_sum2");

  auto back = Imatrix::read(path.string());
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->entries().size(), 2u);
  const ImatrixEntry* e = back->find("blk.1.ffn_down.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->sum2, (std::vector<double>{1 + 16, 4 + 25, 9 + 36}));
  EXPECT_EQ(back->find("blk.0.ffn_down_exps.weight")->counts, (std::vector<double>{0, 3}));
  fs::remove_all(dir);
}

TEST(ImatrixTest, RejectsFilesThatAreNotImatrices) {
  HEARTH_REQUIRE_SHARED(shared);
  auto r = Imatrix::read((shared / "models" / "stories260K-f32.gguf").string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
}

Result<ImatrixRun> collect(const fs::path& model_path, const fs::path& text, int64_t n_ctx, int64_t chunks) {
  HEARTH_ASSIGN_OR_RETURN(auto m, model::Model::load(model_path.string()));
  model::ContextParams cp;
  cp.n_ctx = n_ctx;
  cp.n_batch = n_ctx;
  cp.n_threads = 2;
  HEARTH_ASSIGN_OR_RETURN(auto ctx, model::Context::create(*m, cp));
  ImatrixParams p;
  p.n_ctx = n_ctx;
  p.max_chunks = chunks;
  p.dataset = text.filename().string();
  return compute_imatrix(*ctx, testing::tokenize_file(*m, text), p);
}

TEST(ImatrixTest, CollectsEveryLayerWeightOfTheDenseModel) {
  HEARTH_REQUIRE_SHARED(shared);
  auto r = collect(shared / "models/stories260K-f32.gguf", shared / "models/alice_in_wonderland.txt", 128, 2);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // 5 layers x (q, k, v, output, gate, up, down); each saw 2 windows x 128 rows.
  EXPECT_EQ(r->imatrix.entries().size(), 35u);
  EXPECT_EQ(r->imatrix.chunk_count, 2u);
  EXPECT_EQ(r->imatrix.chunk_size, 128u);
  for (const auto& [name, e] : r->imatrix.entries()) {
    EXPECT_EQ(name.substr(0, 4), "blk.");
    EXPECT_EQ(e.counts, (std::vector<double>{256})) << name;
    for (double v : e.sum2) EXPECT_TRUE(std::isfinite(v) && v >= 0) << name;
  }
  EXPECT_EQ(r->imatrix.find("blk.3.ffn_down.weight")->n_cols, 172);
}

TEST(ImatrixTest, ExpertCountsFollowTheRouting) {
  HEARTH_REQUIRE_SHARED(shared);
  auto r = collect(shared / "models/synth/synth-llama-moe-f32.gguf", shared / "models/alice_in_wonderland.txt", 64, 2);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // 2 windows x 64 tokens, each routed to 2 of the 4 experts: 256 expert rows in all.
  for (const char* w : {"blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight", "blk.0.ffn_down_exps.weight"}) {
    const ImatrixEntry* e = r->imatrix.find(w);
    ASSERT_NE(e, nullptr) << w;
    EXPECT_EQ(e->n_mat, 4);
    double total = 0;
    for (double c : e->counts) total += c;
    EXPECT_EQ(total, 256.0) << w;
  }
  EXPECT_EQ(r->imatrix.find("blk.0.ffn_gate_inp.weight")->counts, (std::vector<double>{128}));
}

// sum_j imp_j (w_j - q_j)^2 over a tensor, for the importance of matrix-major rows.
double weighted_error(const gguf::TensorInfo& f32, const gguf::TensorInfo& q, const Imatrix& m, const ImatrixEntry& e) {
  const int64_t ne0 = static_cast<int64_t>(f32.ne[0]), rows = static_cast<int64_t>(f32.n_elements) / ne0;
  std::vector<float> x(f32.n_elements), y(f32.n_elements);
  kernels::dequantize_row(f32.type, f32.data.data(), x.data(), static_cast<int64_t>(f32.n_elements));
  kernels::dequantize_row(q.type, q.data.data(), y.data(), static_cast<int64_t>(q.n_elements));
  double err = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<float> imp = m.importance(e, r / static_cast<int64_t>(f32.ne[1]));
    for (int64_t j = 0; j < ne0; ++j) {
      const double d = x[r * ne0 + j] - y[r * ne0 + j];
      err += imp[j] * d * d;
    }
  }
  return err;
}

TEST(ImatrixTest, QuantizingWithAnImatrixLowersTheWeightedError) {
  HEARTH_REQUIRE_SHARED(shared);
  const fs::path src = shared / "models/synth/synth-llama-f32.gguf";
  auto run = collect(src, shared / "models/alice_in_wonderland.txt", 128, 2);
  ASSERT_TRUE(run.ok());
  const fs::path dir = hearth::testing::make_temp_dir("hearth-imatrix-q");
  QuantizeParams plain;
  plain.recipe.ftype = FileType::kQ4_K_M;
  QuantizeParams with = plain;
  with.imatrix = &run->imatrix;
  with.imatrix_name = "test.imatrix.gguf";
  ASSERT_TRUE(quantize_model(src.string(), (dir / "plain.gguf").string(), plain).ok());
  auto rep = quantize_model(src.string(), (dir / "with.gguf").string(), with);
  ASSERT_TRUE(rep.ok()) << rep.status().to_string();
  auto a = gguf::GgufModelFile::open(src.string());
  auto p = gguf::GgufModelFile::open((dir / "plain.gguf").string());
  auto w = gguf::GgufModelFile::open((dir / "with.gguf").string());
  ASSERT_TRUE(a.ok() && p.ok() && w.ok());
  EXPECT_EQ(*(*w)->file().get_string("quantize.imatrix.file"), "test.imatrix.gguf");
  EXPECT_EQ(*(*w)->file().get_u32("quantize.imatrix.chunks_count"), 2u);
  int used = 0;
  for (const TensorPlan& t : rep->tensors) {
    if (!t.used_imatrix) continue;
    ++used;
    const ImatrixEntry* e = run->imatrix.find(t.name);
    const double ep =
        weighted_error(*(*a)->file().find_tensor(t.name), *(*p)->file().find_tensor(t.name), run->imatrix, *e);
    const double ew =
        weighted_error(*(*a)->file().find_tensor(t.name), *(*w)->file().find_tensor(t.name), run->imatrix, *e);
    EXPECT_LT(ew, ep) << t.name;
  }
  EXPECT_EQ(used, 14);  // 2 layers x 7 matrices
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hearth::quantize
