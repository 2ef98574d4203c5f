// A fixed-seed run on real text (../shared's Alice in Wonderland) must get well below a unigram
// model's held-out loss.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "hearth/tokenizer/tokenizer.h"
#include "hearth/train/bpe_trainer.h"
#include "hearth/train/corpus.h"
#include "hearth/train/trainer.h"
#include "shared_data.h"

namespace hearth::train {
namespace {

TEST(TrainOnRealText, AliceReachesAnEvalLossBound) {
  HEARTH_REQUIRE_SHARED(shared);
  std::ifstream in(shared / "models" / "alice_in_wonderland.txt", std::ios::binary);
  ASSERT_TRUE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string train_text, eval_text;
  int64_t counter = 0;
  split_document(ss.str(), 0.05, counter, train_text, eval_text);
  auto vocab = train_bpe({train_text}, BpeOptions{512});
  ASSERT_TRUE(vocab.ok());
  auto tok = tokenizer::Tokenizer::create(*vocab);
  ASSERT_TRUE(tok.ok());
  const auto train_ids = tokenize_documents(**tok, {train_text});
  const auto eval_ids = tokenize_documents(**tok, {eval_text});

  TrainOptions o;
  o.shape.n_vocab = (*tok)->n_vocab(), o.shape.n_ctx = 64, o.shape.n_embd = 64, o.shape.n_layer = 2;
  o.shape.n_head = 4, o.shape.n_head_kv = 2, o.shape.n_ff = 192;
  o.batch = 16, o.seq_len = 64, o.seed = 1, o.max_eval_windows = 64;
  o.adamw.lr = 3e-3f, o.adamw.warmup_steps = 10, o.adamw.total_steps = 120;
  auto t = Trainer::create(o, train_ids, eval_ids, 2);
  ASSERT_TRUE(t.ok()) << t.status().message();
  for (int i = 0; i < 120; ++i) (*t)->train_step();
  int64_t n_scored = 0;
  const double loss = (*t)->eval_loss(0, &n_scored);
  const std::vector<int32_t> scored(eval_ids.begin(), eval_ids.begin() + n_scored + 1);
  const double unigram = std::log(unigram_perplexity(train_ids, scored, o.shape.n_vocab));
  RecordProperty("eval_loss", std::to_string(loss));
  RecordProperty("unigram_loss", std::to_string(unigram));
  EXPECT_LT(loss, 4.5) << "unigram " << unigram;
  EXPECT_LT(loss, unigram - 0.5);
}

}  // namespace
}  // namespace hearth::train
