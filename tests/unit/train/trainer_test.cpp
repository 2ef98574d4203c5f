// The training loop: a tiny model memorizes a short text; runs are reproducible.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "hearth/train/trainer.h"

namespace hearth::train {
namespace {

// Bytes as tokens (ids 4..259), enough for these tests without a tokenizer.
std::vector<int32_t> byte_tokens(const std::string& text) {
  std::vector<int32_t> out;
  for (unsigned char c : text) out.push_back(static_cast<int32_t>(c) + 4);
  return out;
}

TrainOptions small_options() {
  TrainOptions o;
  o.shape.n_vocab = 260, o.shape.n_ctx = 32, o.shape.n_embd = 48, o.shape.n_layer = 2;
  o.shape.n_head = 4, o.shape.n_head_kv = 2, o.shape.n_ff = 128;
  o.batch = 4, o.seq_len = 32, o.seed = 5;
  o.adamw.lr = 1e-2f, o.adamw.warmup_steps = 10, o.adamw.total_steps = 150, o.adamw.weight_decay = 0.0f;
  return o;
}

const std::string kText =
    "hearth trains small models on the machines you own. a model that has seen this sentence many "
    "times can say it back, word for word, without a single mistake.";

TEST(Trainer, TinyModelOverfitsShortText) {
  const TrainOptions o = small_options();
  auto t = Trainer::create(o, byte_tokens(kText), byte_tokens(kText), 1);
  ASSERT_TRUE(t.ok()) << t.status().message();
  const double start = (*t)->eval_loss();
  double loss = 0.0;
  for (int i = 0; i < 150; ++i) loss = (*t)->train_step();
  EXPECT_GT(start, 4.0);  // about log(260) at init
  EXPECT_LT(loss, 0.05) << "the model did not memorize the text";
  EXPECT_LT((*t)->eval_loss(), 0.05);
}

TEST(Trainer, SameSeedSameThreadsIsBitIdentical) {
  TrainOptions o = small_options();
  o.accum = 2;
  auto a = Trainer::create(o, byte_tokens(kText), {}, 2);
  auto b = Trainer::create(o, byte_tokens(kText), {}, 2);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < 6; ++i) {
    const double la = (*a)->train_step(), lb = (*b)->train_step();
    ASSERT_EQ(std::memcmp(&la, &lb, sizeof la), 0) << "step " << i;
  }
  const auto& wa = (*a)->state().w;
  const auto& wb = (*b)->state().w;
  ASSERT_EQ(wa.size(), wb.size());
  EXPECT_EQ(std::memcmp(wa.data(), wb.data(), wa.size() * sizeof(float)), 0);
  // A different seed gives a different run.
  o.seed = 6;
  auto c = Trainer::create(o, byte_tokens(kText), {}, 2);
  ASSERT_TRUE(c.ok());
  (*c)->train_step();
  EXPECT_NE(std::memcmp((*c)->state().w.data(), wa.data(), wa.size() * sizeof(float)), 0);
}

TEST(Trainer, DistillationPullsTheStudentTowardsTheTeacher) {
  TrainOptions o = small_options();
  o.adamw.total_steps = 40;
  // The teacher: a differently seeded model with sharper (larger) weights.
  LlamaParams tp(o.shape);
  std::vector<float> tw;
  init_params(tp, tw, 99);
  SplitMix64 rng{3};
  for (float& x : tw) x += static_cast<float>(0.1 * rng.normal());
  ThreadPool pool(1);
  Ops ops(kernels::active_kernels(), pool);
  LlamaGraph teacher(tp, ops);
  auto teacher_fn = [&](const int32_t* windows, int64_t n_seq, int64_t len, std::vector<float>& logits) {
    std::vector<int32_t> in;
    for (int64_t b = 0; b < n_seq; ++b) in.insert(in.end(), windows + b * (len + 1), windows + b * (len + 1) + len);
    teacher.forward(tw.data(), in.data(), n_seq, len);
    logits = teacher.logits();
    return ok_status();
  };
  auto t = Trainer::create(o, byte_tokens(kText), {}, 1);
  ASSERT_TRUE(t.ok());
  (*t)->set_teacher(teacher_fn, 1.0f, 1.0f);  // pure distillation: the loss is the KL
  const double first = (*t)->train_step();
  double last = first;
  for (int i = 1; i < 40; ++i) last = (*t)->train_step();
  ASSERT_TRUE((*t)->teacher_status().ok());
  EXPECT_LT(last, 0.5 * first) << "first " << first;
}

TEST(Trainer, CorpusSmallerThanOneBatchIsRefused) {
  TrainOptions o = small_options();
  o.batch = 64;
  auto t = Trainer::create(o, byte_tokens(kText), {}, 1);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("fewer than one batch"), std::string::npos) << t.status().message();
}

}  // namespace
}  // namespace hearth::train
