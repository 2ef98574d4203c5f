// Embedding pooling of an encoder behind the scheduler: CLS (the first token's final hidden
// state) and last (the last token's), L2-normalised. The model is ../shared's synthetic bert
// (pooling mean) copied with bert.pooling_type = 2 or 3; the expected vectors are the rows of
// one direct pass over the same tokens (Context::hidden), picked and normalised here.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "hearth/engine/scheduler.h"
#include "hearth/gguf/gguf.h"
#include "hearth/gguf/gguf_writer.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/tokenizer/tokenizer.h"
#include "shared_data.h"

namespace hearth::engine {
namespace {

namespace fs = std::filesystem;

std::vector<float> wait_embedding(RequestChannel& ch) {
  std::vector<GenerationEvent> events;
  for (;;) {
    events.clear();
    ch.wait(events, std::chrono::milliseconds(100));
    for (auto& e : events) {
      if (e.kind == GenerationEvent::Kind::kEmbedding) return e.embedding;
      if (e.kind == GenerationEvent::Kind::kFinish) return {};
    }
  }
}

// `src` with bert.pooling_type replaced, written to `dst`.
void copy_with_pooling(const model::Model& src, uint32_t pooling, const std::string& dst) {
  gguf::GgufWriter w;
  for (const gguf::KeyValue& kv : src.gguf().metadata()) {
    if (kv.key != "bert.pooling_type") w.copy_kv(kv);
  }
  w.set_u32("bert.pooling_type", pooling);
  for (const gguf::TensorInfo& t : src.gguf().tensors()) {
    ASSERT_TRUE(w.add_tensor(std::string(t.name), t.type, std::vector<uint64_t>(t.ne, t.ne + t.n_dims), t.data).ok());
  }
  ASSERT_TRUE(w.write(dst).ok());
}

class PoolingTest : public ::testing::TestWithParam<model::PoolingType> {};

TEST_P(PoolingTest, EncoderPoolsTheRowTheFileNames) {
  HEARTH_REQUIRE_SHARED(shared);
  const model::PoolingType pooling = GetParam();
  auto base = model::Model::load((shared / "models" / "synth" / "synth-bert-f32.gguf").string());
  ASSERT_TRUE(base.ok()) << base.status().to_string();
  const fs::path dir = hearth::testing::make_temp_dir("hearth-pooling");
  const std::string path = (dir / "bert.gguf").string();
  copy_with_pooling(**base, static_cast<uint32_t>(pooling), path);
  auto m = model::Model::load(path);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  ASSERT_EQ((*m)->hparams().pooling, pooling);
  auto tok = tokenizer::Tokenizer::from_gguf((*m)->gguf());
  ASSERT_TRUE(tok.ok());
  const int64_t n_embd = (*m)->hparams().n_embd;

  const std::vector<std::string> texts = {"Lily and Ben went to the park.", "A big red ball rolled down the hill, fast."};
  std::vector<std::vector<int32_t>> inputs;
  std::vector<std::vector<double>> want;
  for (const auto& text : texts) {
    inputs.push_back((*tok)->encode(text, true, false));
    const auto& ids = inputs.back();
    ASSERT_GT(ids.size(), 3u);
    model::ContextParams cp;
    cp.n_ctx = 128;
    cp.n_threads = 1;
    auto ctx = model::Context::create(**m, cp);
    ASSERT_TRUE(ctx.ok());
    std::vector<model::BatchToken> batch;
    for (size_t i = 0; i < ids.size(); ++i) batch.push_back({ids[i], static_cast<int32_t>(i), 0, true});
    ASSERT_TRUE((*ctx)->decode(batch).ok());
    ASSERT_EQ((*ctx)->n_outputs(), static_cast<int64_t>(ids.size()));
    const int row = pooling == model::PoolingType::kCls ? 0 : static_cast<int>(ids.size()) - 1;
    auto h = (*ctx)->hidden(row);
    std::vector<double> v(h.begin(), h.begin() + n_embd);
    double norm = 0;
    for (double x : v) norm += x * x;
    for (double& x : v) x /= std::sqrt(norm);
    // The picked row is far from the mean pooling, so the check below tells them apart.
    std::vector<double> mean(static_cast<size_t>(n_embd), 0.0);
    for (int r = 0; r < (*ctx)->n_outputs(); ++r) {
      auto hr = (*ctx)->hidden(r);
      for (int64_t j = 0; j < n_embd; ++j) mean[static_cast<size_t>(j)] += hr[static_cast<size_t>(j)];
    }
    double mean_norm = 0, max_diff = 0;
    for (double x : mean) mean_norm += x * x;
    for (int64_t j = 0; j < n_embd; ++j) {
      const size_t k = static_cast<size_t>(j);
      max_diff = std::max(max_diff, std::abs(mean[k] / std::sqrt(mean_norm) - v[k]));
    }
    EXPECT_GT(max_diff, 1e-2);
    want.push_back(std::move(v));
  }

  SchedulerParams p;
  p.n_slots = 2;
  p.n_ctx = 256;
  p.n_threads = 1;
  auto s = Scheduler::create(**m, **tok, p);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  std::vector<std::shared_ptr<const GenerationParams>> reqs;
  for (const auto& ids : inputs) {
    auto g = std::make_shared<GenerationParams>();
    g->prompt = ids;
    g->embedding = true;
    reqs.push_back(g);
  }
  auto chans = (*s)->submit_all(reqs);
  ASSERT_TRUE(chans.ok()) << chans.status().to_string();
  for (size_t c = 0; c < inputs.size(); ++c) {
    const auto got = wait_embedding(*(*chans)[c]);
    ASSERT_EQ(got.size(), static_cast<size_t>(n_embd)) << c;
    for (int64_t j = 0; j < n_embd; ++j) {
      EXPECT_NEAR(got[static_cast<size_t>(j)], want[c][static_cast<size_t>(j)], 1e-5) << "input " << c << " dim " << j;
    }
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(ClsAndLast, PoolingTest,
                         ::testing::Values(model::PoolingType::kCls, model::PoolingType::kLast),
                         [](const auto& param_info) {
                           return param_info.param == model::PoolingType::kCls ? std::string("cls") : std::string("last");
                         });

}  // namespace
}  // namespace hearth::engine
