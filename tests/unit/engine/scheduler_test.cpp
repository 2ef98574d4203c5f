// The scheduler on the shared stories260K model: greedy output against the reference, batching
// across slots, prefix reuse, cancellation, constrained output and embeddings.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "hearth/engine/json_constraint.h"
#include "hearth/engine/speculative.h"
#include "hearth/gguf/gguf.h"
#include "hearth/model/context.h"
#include "hearth/engine/scheduler.h"
#include "shared_data.h"

namespace hearth::engine {
namespace {

// shared/README.md: the reference implementation's greedy continuation of "Once upon a time".
const std::string kReference64 =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. "
    "She wanted to play with it, but it was too high.\nLily's mom said";

// {"name": string of at most 10 characters, "ok": boolean}, both required, nothing else.
std::shared_ptr<JsonSchema> name_ok_schema() {
  auto schema = std::make_shared<JsonSchema>();
  JsonSchemaNode name;
  name.types = json_type::kString;
  name.max_length = 10;
  JsonSchemaNode flag;
  flag.types = json_type::kBoolean;
  schema->nodes.push_back(name);
  schema->nodes.push_back(flag);
  JsonSchemaNode obj;
  obj.types = json_type::kObject;
  obj.properties = {{"name", 1}, {"ok", 2}};
  obj.required = {"name", "ok"};
  obj.additional_properties = false;
  schema->nodes.push_back(obj);
  schema->root = 3;
  return schema;
}

struct Outcome {
  std::string text;
  FinishReason finish = FinishReason::kError;
  int64_t n_generated = 0, n_cached = 0;
  std::vector<float> embedding;
};

Outcome drain(RequestChannel& ch) {
  Outcome o;
  std::vector<GenerationEvent> events;
  for (;;) {
    events.clear();
    ch.wait(events, std::chrono::milliseconds(100));
    for (auto& e : events) {
      if (e.kind == GenerationEvent::Kind::kDelta) o.text += e.text;
      if (e.kind == GenerationEvent::Kind::kEmbedding) {
        o.embedding = e.embedding;
        o.finish = FinishReason::kStop;
        return o;
      }
      if (e.kind == GenerationEvent::Kind::kFinish) {
        o.finish = e.finish;
        o.n_generated = e.n_generated;
        o.n_cached = e.n_cached;
        return o;
      }
    }
  }
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HEARTH_REQUIRE_SHARED(shared);
    auto m = model::Model::load((shared / "models" / "stories260K-f32.gguf").string());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    model_ = std::move(m).value();
    auto t = tokenizer::Tokenizer::from_gguf(model_->gguf());
    ASSERT_TRUE(t.ok());
    tok_ = std::move(t).value();
    SchedulerParams p;
    p.n_slots = 4;
    p.n_ctx = 512;
    p.n_threads = 1;
    p.max_queue = 8;
    auto s = Scheduler::create(*model_, *tok_, p);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    sched_ = std::move(s).value();
  }

  std::shared_ptr<GenerationParams> greedy(const std::string& prompt, int64_t max_tokens) {
    auto p = std::make_shared<GenerationParams>();
    p->prompt = tok_->encode(prompt, true, false);
    p->sampler.temperature = 0;
    p->max_tokens = max_tokens;
    return p;
  }

  std::unique_ptr<model::Model> model_;
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(SchedulerTest, GreedyMatchesTheReference) {
  auto ch = sched_->submit(greedy("Once upon a time", 64));
  ASSERT_TRUE(ch.ok());
  Outcome o = drain(**ch);
  EXPECT_EQ(o.text, kReference64);
  EXPECT_EQ(o.finish, FinishReason::kLength);
  EXPECT_EQ(o.n_generated, 64);
}

TEST_F(SchedulerTest, BatchedSlotsGiveTheSameOutputAsOneAlone) {
  // Six requests on four slots: all run batched (two wait in the queue), each as if alone.
  std::vector<std::shared_ptr<RequestChannel>> chans;
  for (int i = 0; i < 6; ++i) {
    auto ch = sched_->submit(greedy(i % 2 ? "Once upon a time" : "The cat sat", 40));
    ASSERT_TRUE(ch.ok());
    chans.push_back(*ch);
  }
  auto alone = sched_->submit(greedy("The cat sat", 40));
  ASSERT_TRUE(alone.ok());
  const std::string cat = drain(**alone).text;
  for (int i = 0; i < 6; ++i) {
    Outcome o = drain(*chans[static_cast<size_t>(i)]);
    EXPECT_EQ(o.text, i % 2 ? kReference64.substr(0, o.text.size()) : cat) << i;
    EXPECT_EQ(o.n_generated, 40);
  }
}

TEST_F(SchedulerTest, ReusesTheCachedPrefix) {
  auto first = sched_->submit(greedy("Once upon a time there was a dog", 8));
  ASSERT_TRUE(first.ok());
  Outcome a = drain(**first);
  EXPECT_EQ(a.n_cached, 0);
  auto p = greedy("Once upon a time there was a dog", 8);
  const size_t n = p->prompt.size();
  auto second = sched_->submit(p);
  Outcome b = drain(**second);
  EXPECT_EQ(static_cast<size_t>(b.n_cached), n - 1);  // all but the last prompt token
  EXPECT_EQ(b.text, a.text);
}

TEST_F(SchedulerTest, StopStringsAndCancellation) {
  auto p = greedy("Once upon a time", 64);
  p->stop = {"Lily"};
  auto ch = sched_->submit(p);
  Outcome o = drain(**ch);
  EXPECT_EQ(o.text, ", there was a little girl named ");
  EXPECT_EQ(o.finish, FinishReason::kStop);

  auto long_run = sched_->submit(greedy("Once upon a time", 400));
  ASSERT_TRUE(long_run.ok());
  (*long_run)->cancel();
  Outcome c = drain(**long_run);
  EXPECT_EQ(c.finish, FinishReason::kCancelled);
  EXPECT_LT(c.n_generated, 400);
}

TEST_F(SchedulerTest, RejectsBadPromptsAndAFullQueue) {
  auto empty = std::make_shared<GenerationParams>();
  EXPECT_EQ(sched_->submit(empty).status().code(), ErrorCode::kInvalidArgument);
  auto too_long = greedy("x", 1);
  too_long->prompt.assign(600, 5);
  EXPECT_EQ(sched_->submit(too_long).status().code(), ErrorCode::kOutOfRange);
  auto bad_id = greedy("x", 1);
  bad_id->prompt.push_back(100000);
  EXPECT_EQ(sched_->submit(bad_id).status().code(), ErrorCode::kInvalidArgument);
  // 4 slots + 8 queued = 12 accepted; more is refused until they drain.
  std::vector<std::shared_ptr<RequestChannel>> chans;
  Status refused;
  for (int i = 0; i < 20 && refused.ok(); ++i) {
    auto ch = sched_->submit(greedy("Once upon a time", 200));
    if (ch.ok())
      chans.push_back(*ch);
    else
      refused = ch.status();
  }
  EXPECT_EQ(refused.code(), ErrorCode::kResourceExhausted);
  EXPECT_LE(chans.size(), 12u);
  for (auto& c : chans) c->cancel();
  for (auto& c : chans) drain(*c);
}

TEST_F(SchedulerTest, JsonSchemaOutputIsValid) {
  auto schema = name_ok_schema();
  for (float temp : {0.0f, 1.0f}) {
    auto p = greedy("Once upon a time", 200);
    p->sampler.temperature = temp;
    p->sampler.seed = 11;
    p->json_schema = schema;
    Outcome o = drain(**sched_->submit(p));
    ASSERT_EQ(o.finish, FinishReason::kStop) << o.text;
    // Independent check: the whole text is accepted and complete under the schema.
    auto check = JsonConstraint::create(schema);
    ASSERT_TRUE(check.ok());
    EXPECT_TRUE(check->advance(o.text)) << o.text;
    EXPECT_TRUE(check->must_end()) << o.text;
    EXPECT_NE(o.text.find("\"name\""), std::string::npos);
    EXPECT_NE(o.text.find("\"ok\""), std::string::npos);
  }
}

TEST_F(SchedulerTest, EmbeddingsAreNormalisedAndDeterministic) {
  auto p = std::make_shared<GenerationParams>();
  p->prompt = tok_->encode("a cat", true, false);
  p->embedding = true;
  Outcome a = drain(**sched_->submit(p));
  Outcome b = drain(**sched_->submit(p));
  ASSERT_EQ(a.embedding.size(), 64u);
  double norm = 0;
  for (float v : a.embedding) norm += static_cast<double>(v) * v;
  EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-4);
  EXPECT_EQ(a.embedding, b.embedding);
}

// An encoder (bert) sees each input whole: a long input (past the 64-token embedding chunk),
// queued behind others, gives the mean of the token states that one forward pass of the whole
// input gives (the pass that bert_reference_test checks against the reference). Generation is
// refused, and an input longer than the batch too.
TEST(SchedulerEncoder, EvaluatesEachInputWholeAndRefusesGeneration) {
  HEARTH_REQUIRE_SHARED(shared);
  auto m = model::Model::load((shared / "models" / "synth" / "synth-bert-f32.gguf").string());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto tok = tokenizer::Tokenizer::from_gguf((*m)->gguf());
  ASSERT_TRUE(tok.ok());
  std::string text;
  for (int i = 0; i < 12; ++i) text += "Lily and Ben went to the park with their dog and a big red ball. ";
  const std::vector<int32_t> ids = (*tok)->encode(text, true, false);
  ASSERT_GT(ids.size(), 150u);
  // The oracle: one pass over the whole input, mean of the rows, L2-normalised.
  model::ContextParams cp;
  cp.n_ctx = 512;
  cp.n_threads = 1;
  auto ctx = model::Context::create(**m, cp);
  ASSERT_TRUE(ctx.ok());
  std::vector<model::BatchToken> batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.push_back({ids[i], static_cast<int32_t>(i), 0, true});
  ASSERT_TRUE((*ctx)->decode(batch).ok());
  std::vector<double> mean(128, 0.0);
  for (int r = 0; r < (*ctx)->n_outputs(); ++r) {
    auto h = (*ctx)->hidden(r);
    for (size_t j = 0; j < mean.size(); ++j) mean[j] += h[j] / static_cast<double>(ids.size());
  }
  double norm = 0;
  for (double v : mean) norm += v * v;
  norm = std::sqrt(norm);

  SchedulerParams p;
  p.n_slots = 2;
  p.n_ctx = 512;
  p.n_threads = 1;
  auto s = Scheduler::create(**m, **tok, p);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  auto embed = [&](std::vector<int32_t> prompt) {
    auto g = std::make_shared<GenerationParams>();
    g->prompt = std::move(prompt);
    g->embedding = true;
    return g;
  };
  auto chans = (*s)->submit_all({embed((*tok)->encode("a short one", true, false)), embed(ids), embed(ids)});
  ASSERT_TRUE(chans.ok()) << chans.status().to_string();
  drain(*(*chans)[0]);
  for (size_t c = 1; c < 3; ++c) {
    Outcome o = drain(*(*chans)[c]);
    ASSERT_EQ(o.embedding.size(), 128u);
    for (size_t j = 0; j < 128; ++j) EXPECT_NEAR(o.embedding[j], mean[j] / norm, 1e-5) << c << " " << j;
  }
  auto gen = std::make_shared<GenerationParams>();
  gen->prompt = ids;
  auto refused = (*s)->submit(gen);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("embedding model"), std::string::npos);
  SchedulerParams small = p;
  small.n_batch = 64;
  auto s64 = Scheduler::create(**m, **tok, small);
  ASSERT_TRUE(s64.ok());
  auto too_long = (*s64)->submit(embed(ids));
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("at most 64 per input"), std::string::npos) << too_long.status().message();
}

// A sliding-window model (synth-gemma3, window 16) whose rings hold 16 + n_batch 8 rows: a slot
// that generated far past its prompt no longer holds the rows the same prompt's last token
// needs, so the scheduler evaluates it again (no cached tokens) instead of failing; a slot that
// stopped right after the prompt is reused. Every output equals a fresh scheduler's.
TEST(SchedulerSlidingWindow, ReusesOnlyPrefixesTheRingStillHolds) {
  HEARTH_REQUIRE_SHARED(shared);
  auto m = model::Model::load((shared / "models" / "synth" / "synth-gemma3-f32.gguf").string());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto tok = tokenizer::Tokenizer::from_gguf((*m)->gguf());
  ASSERT_TRUE(tok.ok());
  SchedulerParams p;
  p.n_slots = 1;
  p.n_ctx = 512;
  p.n_batch = 8;
  p.n_threads = 1;
  auto make = [&] {
    auto s = Scheduler::create(**m, **tok, p);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return std::move(s).value();
  };
  auto request = [&](const std::string& text, int64_t max_tokens) {
    auto g = std::make_shared<GenerationParams>();
    g->prompt = (*tok)->encode(text, true, false);
    g->sampler.temperature = 0;
    g->max_tokens = max_tokens;
    return g;
  };
  const std::string prompt = "Lily and Ben went to the park. They saw a big dog and a small cat";
  auto alone = [&](int64_t max_tokens) {
    auto fresh = make();
    auto ch = fresh->submit(request(prompt, max_tokens));
    EXPECT_TRUE(ch.ok());
    return drain(**ch);
  };
  auto s = make();
  const size_t n = request(prompt, 1)->prompt.size();
  ASSERT_GT(n, 16u);
  Outcome long_run = drain(**s->submit(request(prompt, 60)));
  EXPECT_EQ(long_run.finish, FinishReason::kLength);
  Outcome again = drain(**s->submit(request(prompt, 2)));  // 60 positions on: the ring moved on
  EXPECT_EQ(again.finish, FinishReason::kLength);
  EXPECT_EQ(again.n_cached, 0);
  EXPECT_EQ(again.text, alone(2).text);
  Outcome reused = drain(**s->submit(request(prompt, 2)));  // 2 positions on: still held
  EXPECT_EQ(static_cast<size_t>(reused.n_cached), n - 1);
  EXPECT_EQ(reused.text, again.text);
  EXPECT_EQ(long_run.text, alone(60).text);
}

// Drafts on a sliding-window model (window 16, rings of 16 + n_batch 8 rows): the guesses a slot
// writes past its accepted length stay within the batch, so rolling back never leaves the next
// position's window outside the ring; the output equals the one without drafts.
TEST(SchedulerSlidingWindow, DraftsRollBackInsideTheRing) {
  HEARTH_REQUIRE_SHARED(shared);
  auto m = model::Model::load((shared / "models" / "synth" / "synth-gemma3-f32.gguf").string());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto tok = tokenizer::Tokenizer::from_gguf((*m)->gguf());
  ASSERT_TRUE(tok.ok());
  auto generate = [&](bool draft, const std::string& text) {
    SchedulerParams p;
    p.n_slots = 1;
    p.n_ctx = 512;
    p.n_batch = 8;
    p.n_threads = 1;
    p.draft_ngram = draft;
    auto s = Scheduler::create(**m, **tok, p);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    auto g = std::make_shared<GenerationParams>();
    g->prompt = (*tok)->encode(text, true, false);
    g->sampler.temperature = 0;
    g->max_tokens = 120;
    Outcome o = drain(**(*s)->submit(g));
    for (int i = 0; i < 1000 && (*s)->stats().active_slots > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return std::make_pair(o, (*s)->stats());
  };
  const std::string prompt = "the dog and the cat and the dog and the cat and the dog and the cat and the dog and the";
  auto [plain, plain_stats] = generate(false, prompt);
  auto [drafted, stats] = generate(true, prompt);
  EXPECT_EQ(drafted.text, plain.text);
  EXPECT_EQ(drafted.finish, plain.finish);
  EXPECT_EQ(drafted.n_generated, plain.n_generated);
  EXPECT_GT(stats.draft_proposed, 0u);
}

// A draft must have the model's vocabulary: GPT-2's tokens under another pre-tokenizer are the
// same vocabulary; Llama's SPM vocabulary is not.
TEST(DraftVocabulary, SameTokensOrRefused) {
  HEARTH_REQUIRE_SHARED(shared);
  auto load = [&](const char* name) {
    auto f = gguf::GgufModelFile::open((shared / "tokenizer-vectors" / name).string());
    EXPECT_TRUE(f.ok());
    auto t = tokenizer::Tokenizer::from_gguf((*f)->file());
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    return std::move(t).value();
  };
  auto gpt2 = load("ggml-vocab-gpt-2.gguf");
  auto llama_bpe = load("ggml-vocab-gpt2-pre-llama-bpe.gguf");
  auto spm = load("ggml-vocab-llama-spm.gguf");
  EXPECT_TRUE(check_draft_vocabulary(*gpt2, *llama_bpe).ok());
  Status st = check_draft_vocabulary(*gpt2, *spm);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "the draft's vocabulary has 32000 tokens, the model's 50257");
}

// Prompt lookup proposes what followed the latest earlier occurrence of the last tokens.
TEST(DraftVocabulary, NgramDrafterLooksUpTheLatestOccurrence) {
  NgramDrafter d;
  auto g = d.propose({1, 2, 3, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3}, 3);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g, (std::vector<int32_t>{7, 8, 5}));
  EXPECT_EQ(*d.propose({4, 5, 6}, 3), std::vector<int32_t>{});
  EXPECT_EQ(*d.propose({4, 5, 4}, 2), (std::vector<int32_t>{5, 4}));  // n = 1: "4" was followed by 5, 4
}

// Speculative decoding in the scheduler (draft_ngram): two concurrent greedy requests give the
// same tokens, finish reason and counts as the same requests on a scheduler without drafts, and
// prompt lookup on a repetitive prompt gets guesses accepted.
class SchedulerDraftTest : public SchedulerTest {
 protected:
  std::unique_ptr<Scheduler> make(bool draft, int64_t n_batch = 512) {
    SchedulerParams p;
    p.n_slots = 2;
    p.n_ctx = 512;
    p.n_batch = n_batch;
    p.n_threads = 1;
    p.draft_ngram = draft;
    p.draft_max = 8;
    auto s = Scheduler::create(*model_, *tok_, p);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return std::move(s).value();
  }
  // Runs the requests two at a time (both slots busy together).
  static std::vector<Outcome> run(Scheduler& s, const std::vector<std::shared_ptr<GenerationParams>>& reqs) {
    std::vector<Outcome> out;
    for (size_t i = 0; i < reqs.size(); i += 2) {
      std::vector<std::shared_ptr<RequestChannel>> chans;
      for (size_t j = i; j < std::min(reqs.size(), i + 2); ++j) {
        auto ch = s.submit(reqs[j]);
        EXPECT_TRUE(ch.ok()) << ch.status().to_string();
        chans.push_back(*ch);
      }
      for (auto& ch : chans) out.push_back(drain(*ch));
    }
    return out;
  }
  // The stats once the scheduler thread has finished its last step (a finish event reaches the
  // reader before that step's counters are added).
  static SchedulerStats settled(const Scheduler& s) {
    for (int i = 0; i < 1000 && s.stats().active_slots > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return s.stats();
  }
  static void expect_same(const std::vector<Outcome>& plain, const std::vector<Outcome>& drafted) {
    ASSERT_EQ(plain.size(), drafted.size());
    for (size_t i = 0; i < plain.size(); ++i) {
      EXPECT_EQ(drafted[i].text, plain[i].text) << i;
      EXPECT_EQ(drafted[i].finish, plain[i].finish) << i;
      EXPECT_EQ(drafted[i].n_generated, plain[i].n_generated) << i;
    }
  }
};

const std::string kRepetitive =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "Once upon a time";
const std::string kRepetitive2 =
    "Tom had a red ball. Tom had a red ball. Tom had a red ball. Tom had a red ball. Tom";

TEST_F(SchedulerDraftTest, GreedyOutputEqualsTheOneWithoutDrafts) {
  auto plain = make(false), drafted = make(true);
  std::vector<std::shared_ptr<GenerationParams>> reqs = {greedy(kRepetitive, 96), greedy(kRepetitive2, 96)};
  const auto want = run(*plain, reqs);
  const auto got = run(*drafted, reqs);
  expect_same(want, got);
  EXPECT_EQ(want[0].finish, FinishReason::kLength);
  const SchedulerStats st = settled(*drafted), plain_st = settled(*plain);
  EXPECT_GT(st.draft_accepted, 0u);
  EXPECT_GE(st.draft_proposed, st.draft_accepted);
  // Every token was still generated and counted: accepted guesses are generated tokens.
  EXPECT_EQ(st.generated_tokens, plain_st.generated_tokens);
  EXPECT_LT(st.steps, plain_st.steps);  // the accepted guesses took no pass of their own
  EXPECT_EQ(plain_st.draft_proposed, 0u);
  // Again on the same slots: the prompts' rows are reused from caches rolled back past refused
  // guesses, and the output is still the same.
  const auto again = run(*drafted, reqs);
  expect_same(want, again);
  EXPECT_GT(again[0].n_cached, 0);
}

// A request that ends inside a run of accepted guesses (a stop string, max_tokens) takes no row
// past its end: the same text, finish reason and token count as without drafts.
TEST_F(SchedulerDraftTest, StopStringsAndMaxTokensInsideAcceptedRuns) {
  auto plain = make(false), drafted = make(true);
  std::vector<std::shared_ptr<GenerationParams>> reqs;
  // Every length from 20 to 35: with runs of up to 8 accepted guesses, most end inside one.
  for (int64_t n = 20; n < 36; ++n) reqs.push_back(greedy(kRepetitive, n));
  for (const char* stop : {"park", "girl named", "Lily.", "red"}) {
    auto p = greedy(stop[0] == 'r' ? kRepetitive2 : kRepetitive, 200);
    p->stop = {stop};
    reqs.push_back(p);
  }
  const auto want = run(*plain, reqs);
  const auto got = run(*drafted, reqs);
  expect_same(want, got);
  for (size_t i = 0; i < 16; ++i) EXPECT_EQ(want[i].finish, FinishReason::kLength) << i;
  size_t stopped = 0;
  for (size_t i = 16; i < want.size(); ++i) stopped += want[i].finish == FinishReason::kStop ? 1 : 0;
  EXPECT_GT(stopped, 0u);
  EXPECT_GT(settled(*drafted).draft_accepted, 0u);
}

// Seeded sampling draws one random number per sampled token, with drafts or not, from the same
// logits (up to batched arithmetic): the same seed gives the same text, with guesses accepted
// and penalties applied to the tokens in order.
TEST_F(SchedulerDraftTest, SeededSamplingGivesTheSameText) {
  auto plain = make(false), drafted = make(true);
  std::vector<std::shared_ptr<GenerationParams>> reqs;
  for (uint32_t seed : {1u, 2u, 3u, 4u}) {
    auto p = greedy(seed % 2 ? kRepetitive : kRepetitive2, 80);
    p->sampler.temperature = 0.7f;
    p->sampler.seed = seed;
    p->sampler.repeat_penalty = seed > 2 ? 1.1f : 1.0f;
    reqs.push_back(p);
  }
  expect_same(run(*plain, reqs), run(*drafted, reqs));
  EXPECT_GT(settled(*drafted).draft_accepted, 0u);
}

// The JSON constraint masks each drafted row after the tokens kept before it: the same valid
// object as without drafts, greedy and sampled.
TEST_F(SchedulerDraftTest, JsonConstraintSeesTheTokensInOrder) {
  auto schema = name_ok_schema();
  auto plain = make(false), drafted = make(true);
  std::vector<std::shared_ptr<GenerationParams>> reqs;
  for (float temp : {0.0f, 1.0f}) {
    auto p = greedy("{\"name\": \"Lily\", \"ok\": true}\n{\"name\": \"Lily\", \"ok\": true}\n", 200);
    p->sampler.temperature = temp;
    p->sampler.seed = 11;
    p->json_schema = schema;
    reqs.push_back(p);
  }
  const auto want = run(*plain, reqs);
  const auto got = run(*drafted, reqs);
  expect_same(want, got);
  for (const Outcome& o : got) {
    EXPECT_EQ(o.finish, FinishReason::kStop) << o.text;
    auto check = JsonConstraint::create(schema);
    ASSERT_TRUE(check.ok());
    EXPECT_TRUE(check->advance(o.text)) << o.text;
    EXPECT_TRUE(check->must_end()) << o.text;
  }
  EXPECT_GT(settled(*drafted).draft_proposed, 0u);
}

// n = 2: each choice drafts in its own slot, both at once; both
// give the text of the request without drafts.
TEST_F(SchedulerDraftTest, EachChoiceDraftsInItsOwnSlot) {
  auto plain = make(false), drafted = make(true);
  auto p = greedy(kRepetitive, 64);
  p->n_choices = 2;
  auto collect = [&](Scheduler& s) {
    std::vector<std::string> text(2);
    int finished = 0;
    auto ch = s.submit(p);
    EXPECT_TRUE(ch.ok());
    std::vector<GenerationEvent> events;
    while (finished < 2) {
      events.clear();
      (*ch)->wait(events, std::chrono::milliseconds(100));
      for (auto& e : events) {
        if (e.kind == GenerationEvent::Kind::kDelta) text.at(static_cast<size_t>(e.index)) += e.text;
        if (e.kind == GenerationEvent::Kind::kFinish) ++finished;
      }
    }
    return text;
  };
  const auto want = collect(*plain);
  EXPECT_EQ(want[0], want[1]);
  EXPECT_EQ(collect(*drafted), want);
  EXPECT_GT(settled(*drafted).draft_accepted, 0u);
}

// A small batch (8 tokens for 2 slots) bounds the guesses; the output is still the same.
TEST_F(SchedulerDraftTest, GuessesFitTheBatch) {
  auto plain = make(false, 8), drafted = make(true, 8);
  std::vector<std::shared_ptr<GenerationParams>> reqs = {greedy(kRepetitive, 64), greedy(kRepetitive2, 64)};
  expect_same(run(*plain, reqs), run(*drafted, reqs));
  EXPECT_GT(settled(*drafted).draft_accepted, 0u);
}

}  // namespace
}  // namespace hearth::engine
