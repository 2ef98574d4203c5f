// Checkpoints: a run stopped and resumed from its checkpoint equals the uninterrupted run, bit
// for bit (weights, both AdamW moments, step and data position).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "hearth/train/bpe_trainer.h"
#include "hearth/train/checkpoint.h"
#include "hearth/train/gguf_export.h"
#include "shared_data.h"

namespace hearth::train {
namespace {

const std::string kText =
    "a checkpoint keeps the weights, the optimizer moments, the step and the data position, so "
    "that a run that stops can go on as if nothing had happened. ";

std::vector<int32_t> byte_tokens(const std::string& text) {
  std::vector<int32_t> out;
  for (unsigned char c : text) out.push_back(static_cast<int32_t>(c) + 3);  // the <0xXX> tokens
  return out;
}

bool same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(Checkpoint, ResumeIsBitIdenticalToAnUninterruptedRun) {
  auto vocab = train_bpe({kText}, BpeOptions{300});
  ASSERT_TRUE(vocab.ok());
  TrainOptions o;
  o.shape.n_vocab = static_cast<int64_t>(vocab->tokens.size()), o.shape.n_ctx = 16, o.shape.n_embd = 32;
  o.shape.n_layer = 2, o.shape.n_head = 4, o.shape.n_head_kv = 2, o.shape.n_ff = 64;
  o.batch = 3, o.accum = 2, o.seq_len = 16, o.seed = 11;  // 9 windows: the data wraps to a new epoch
  o.adamw.warmup_steps = 2, o.adamw.total_steps = 8;
  const std::string text = kText + kText;

  auto full = Trainer::create(o, byte_tokens(text), {}, 2);
  ASSERT_TRUE(full.ok()) << full.status().message();
  for (int i = 0; i < 8; ++i) (*full)->train_step();

  auto first = Trainer::create(o, byte_tokens(text), {}, 2);
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 3; ++i) (*first)->train_step();
  const auto dir = testing::make_temp_dir("hearth-ckpt");
  const std::string path = (dir / "run.ckpt.gguf").string();
  ASSERT_TRUE(save_checkpoint(path, o, (*first)->params(), (*first)->state(), *vocab).ok());
  first->reset();

  auto ck = load_checkpoint(path);
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  EXPECT_EQ(ck->state.adamw.step, 3);
  EXPECT_EQ(ck->vocab.tokens, vocab->tokens);
  auto resumed = Trainer::create(ck->options, byte_tokens(text), {}, 2);
  ASSERT_TRUE(resumed.ok());
  ASSERT_TRUE((*resumed)->set_state(std::move(ck->state)).ok());
  for (int i = 3; i < 8; ++i) (*resumed)->train_step();

  const TrainState& a = (*full)->state();
  const TrainState& b = (*resumed)->state();
  EXPECT_EQ(a.adamw.step, b.adamw.step);
  EXPECT_EQ(a.data.epoch, b.data.epoch);
  EXPECT_GE(a.data.epoch, 1);
  EXPECT_EQ(a.data.cursor, b.data.cursor);
  EXPECT_TRUE(same(a.w, b.w));
  EXPECT_TRUE(same(a.adamw.m, b.adamw.m));
  EXPECT_TRUE(same(a.adamw.v, b.adamw.v));
  std::filesystem::remove_all(dir);
}

TEST(Checkpoint, RefusesAModelFileAndATruncatedCheckpoint) {
  auto vocab = train_bpe({kText}, BpeOptions{300});
  ASSERT_TRUE(vocab.ok());
  TrainOptions o;
  o.shape.n_vocab = static_cast<int64_t>(vocab->tokens.size()), o.shape.n_ctx = 8, o.shape.n_embd = 8;
  o.shape.n_layer = 1, o.shape.n_head = 2, o.shape.n_head_kv = 1, o.shape.n_ff = 16;
  o.batch = 1, o.seq_len = 8;
  auto t = Trainer::create(o, byte_tokens(kText), {}, 1);
  ASSERT_TRUE(t.ok());
  const auto dir = testing::make_temp_dir("hearth-ckpt");
  const std::string model = (dir / "m.gguf").string(), ckpt = (dir / "c.gguf").string();
  ASSERT_TRUE(export_gguf(model, (*t)->params(), (*t)->state().w.data(), *vocab, TensorType::F32, "m").ok());
  auto r = load_checkpoint(model);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a hearth training checkpoint"), std::string::npos);
  ASSERT_TRUE(save_checkpoint(ckpt, o, (*t)->params(), (*t)->state(), *vocab).ok());
  std::filesystem::resize_file(ckpt, std::filesystem::file_size(ckpt) - 100);
  EXPECT_FALSE(load_checkpoint(ckpt).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hearth::train
