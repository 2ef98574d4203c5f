// `hearth train`: a Llama model from scratch on your own text. Trains a SentencePiece-style BPE
// tokenizer on the corpus (or, with --teacher, distills a model and takes its tokenizer), then
// the model (AdamW, warmup + cosine), with a progress line, held-out evaluation against a
// unigram baseline, atomic checkpoints (--resume continues bit for bit) and a standard GGUF.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "common_options.h"
#include "hearth/core/process_stats.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/tokenizer/tokenizer.h"
#include "hearth/tokenizer/vocab_gguf.h"
#include "hearth/train/bpe_trainer.h"
#include "hearth/train/checkpoint.h"
#include "hearth/train/corpus.h"
#include "hearth/train/gguf_export.h"
#include "hearth/train/story_grammar.h"
#include "hearth/train/trainer.h"
#include "model_arg.h"

namespace hearth::cli {
namespace {

struct TrainCliOptions {
  std::vector<std::string> corpus;
  std::string out;
  std::string preset = "micro";
  int64_t vocab = 512;
  int64_t steps = 0;
  std::string time;
  int64_t ctx = 256;
  int64_t batch = 0;
  int64_t accum = 1;
  float lr = 0.0f;
  uint64_t seed = 1;
  double eval_frac = 0.05;
  int threads = 0;
  std::string resume;
  std::string checkpoint;
  int64_t checkpoint_every = 0;
  int64_t stop_after = 0;
  std::string type = "f32";
  int64_t stories = 0;
  std::string teacher;
  float distill_temp = 2.0f;
  float distill_alpha = 0.5f;
  bool allow_unsigned = false;
  std::string sample_prompt = "The";
  int sample_tokens = 48;
};

// "90", "90s", "3m", "1h30m" -> seconds.
Result<double> parse_duration(const std::string& s) {
  double total = 0.0, num = 0.0;
  bool have = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      num = num * 10 + (c - '0');
      have = true;
    } else if (have && (c == 's' || c == 'm' || c == 'h')) {
      total += num * (c == 's' ? 1 : c == 'm' ? 60 : 3600);
      num = 0.0;
      have = false;
    } else {
      return make_error(ErrorCode::kInvalidArgument, "--time '{}' is not a duration (e.g. 90s, 3m, 1h)", s);
    }
  }
  total += num;
  if (!(total > 0.0)) return make_error(ErrorCode::kInvalidArgument, "--time must be positive");
  return total;
}

std::string fmt_duration(double s) {
  char b[32];
  if (s < 0 || !std::isfinite(s)) return "?";
  const long t = std::lround(s);
  if (t >= 3600)
    std::snprintf(b, sizeof b, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else if (t >= 60)
    std::snprintf(b, sizeof b, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(b, sizeof b, "%lds", t);
  return b;
}

// Preset defaults: batch (windows per step) and peak learning rate.
void preset_defaults(const std::string& preset, int64_t& batch, float& lr) {
  if (preset == "nano")
    batch = batch ? batch : 16, lr = lr > 0 ? lr : 3e-3f;
  else if (preset == "micro")
    batch = batch ? batch : 16, lr = lr > 0 ? lr : 2e-3f;
  else
    batch = batch ? batch : 16, lr = lr > 0 ? lr : 1e-3f;
}

// A few sampled tokens from the exported model through hearth's inference path (temperature
// 0.8, top-k 40, fixed seed): the sample shown at the end of training.
Result<std::string> sample_text(const std::string& path, const std::string& prompt, int n, int threads) {
  HEARTH_ASSIGN_OR_RETURN(auto model, model::Model::load(path, {.n_threads = threads}));
  HEARTH_ASSIGN_OR_RETURN(auto tok, tokenizer::Tokenizer::from_gguf(model->gguf()));
  model::ContextParams cp;
  cp.n_ctx = model->hparams().n_ctx_train;
  cp.n_threads = threads;
  HEARTH_ASSIGN_OR_RETURN(auto ctx, model::Context::create(*model, cp));
  std::vector<int32_t> ids = tok->encode(prompt, true, false);
  std::vector<model::BatchToken> batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.push_back({ids[i], static_cast<int32_t>(i), 0, i + 1 == ids.size()});
  HEARTH_TRY(ctx->decode(batch));
  train::SplitMix64 rng{1234};
  std::string text = prompt;
  tokenizer::IncrementalDecoder dec(*tok);
  for (int i = 0; i < n && static_cast<int64_t>(ids.size()) < cp.n_ctx; ++i) {
    const auto logits = ctx->logits(0);
    std::vector<std::pair<float, int32_t>> top;
    for (int32_t v = 0; v < static_cast<int32_t>(logits.size()); ++v) top.emplace_back(logits[v], v);
    const size_t k = std::min<size_t>(40, top.size());
    std::partial_sort(top.begin(), top.begin() + k, top.end(), std::greater<>());
    double sum = 0.0;
    std::vector<double> p(k);
    for (size_t j = 0; j < k; ++j) sum += p[j] = std::exp((top[j].first - top[0].first) / 0.8);
    double u = rng.uniform() * sum;
    size_t pick = 0;
    while (pick + 1 < k && (u -= p[pick]) > 0) ++pick;
    const int32_t id = top[pick].second;
    if (tok->is_eog(id)) break;
    text += dec.push(id);
    const model::BatchToken next{id, static_cast<int32_t>(ids.size()), 0, true};
    ids.push_back(id);
    HEARTH_TRY(ctx->decode({&next, 1}));
  }
  return text + dec.flush();
}

Status run(TrainCliOptions o) {
  if (o.out.empty()) return make_error(ErrorCode::kInvalidArgument, "train: give the output file with --out");
  if (o.type != "f32" && o.type != "f16") {
    return make_error(ErrorCode::kInvalidArgument, "--type must be f32 or f16, not '{}'", o.type);
  }
  if (o.steps > 0 && !o.time.empty())
    return make_error(ErrorCode::kInvalidArgument, "give --steps or --time, not both");
  double budget = 0.0;
  if (!o.time.empty()) {
    HEARTH_ASSIGN_OR_RETURN(budget, parse_duration(o.time));
  }
  if (o.checkpoint.empty()) o.checkpoint = o.out + ".ckpt";
  const int threads = o.threads > 0 ? o.threads : physical_core_count();
  const double t_start = now_seconds();

  train::Corpus corpus;
  if (!o.corpus.empty() || o.stories == 0) {
    HEARTH_ASSIGN_OR_RETURN(corpus, train::read_corpus(o.corpus, o.eval_frac));
  }
  if (o.stories > 0) {
    // The project's own text: stories from hearth's grammar (see train/story_grammar.h).
    const std::string text = train::generate_stories(o.stories, o.seed);
    std::string tr, ev;
    int64_t counter = 0;
    train::split_document(text, o.eval_frac, counter, tr, ev);
    corpus.sources.push_back("<generated stories>");
    corpus.train.push_back(std::move(tr));
    corpus.eval.push_back(std::move(ev));
    corpus.bytes += text.size();
  }
  train::TrainOptions topts;
  tokenizer::VocabSpec vocab;
  std::unique_ptr<train::Checkpoint> resumed;
  // Distillation: the student takes the teacher's tokenizer (their logits must line up).
  std::unique_ptr<model::Model> teacher;
  if (!o.teacher.empty()) {
    HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg targ, resolve_model_arg(o.teacher, "train --teacher", o.allow_unsigned));
    HEARTH_ASSIGN_OR_RETURN(teacher, load_model(targ, {.n_threads = threads}));
    HEARTH_ASSIGN_OR_RETURN(vocab, tokenizer::vocab_spec_from_gguf(teacher->gguf()));
  }
  if (!o.resume.empty()) {
    HEARTH_ASSIGN_OR_RETURN(train::Checkpoint ck, train::load_checkpoint(o.resume));
    resumed = std::make_unique<train::Checkpoint>(std::move(ck));
    topts = resumed->options;
    if (teacher && resumed->vocab.tokens != vocab.tokens) {
      return make_error(ErrorCode::kInvalidArgument,
                        "the teacher and the student must share a tokenizer: {} has {} tokens and {} has {}{}",
                        o.teacher, vocab.tokens.size(), o.resume, resumed->vocab.tokens.size(),
                        (resumed->vocab.tokens.size() == vocab.tokens.size() ? " different ones" : ""));
    }
    vocab = resumed->vocab;
  } else if (teacher) {
    std::fprintf(stderr, "distilling from %s (T = %g, alpha = %g) with its tokenizer\n", o.teacher.c_str(),
                 o.distill_temp, o.distill_alpha);
  } else {
    std::vector<std::string_view> texts(corpus.train.begin(), corpus.train.end());
    HEARTH_ASSIGN_OR_RETURN(vocab, train::train_bpe(texts, train::BpeOptions{o.vocab}));
  }
  HEARTH_ASSIGN_OR_RETURN(auto tok, tokenizer::Tokenizer::create(vocab));
  std::vector<int32_t> train_ids = train::tokenize_documents(*tok, corpus.train);
  std::vector<int32_t> eval_ids = train::tokenize_documents(*tok, corpus.eval);
  std::fprintf(
      stderr,
      "corpus: %zu file(s), %.2f MB; tokenizer: %d tokens, %.2f bytes/token; %zu training tokens, %zu held out\n",
      corpus.sources.size(), static_cast<double>(corpus.bytes) / 1e6, tok->n_vocab(),
      static_cast<double>(corpus.bytes) /
          std::max<double>(1.0, static_cast<double>(train_ids.size() + eval_ids.size())),
      train_ids.size(), eval_ids.size());

  if (!resumed) {
    preset_defaults(o.preset, o.batch, o.lr);
    HEARTH_ASSIGN_OR_RETURN(topts.shape, train::preset_shape(o.preset, tok->n_vocab(), o.ctx));
    topts.batch = o.batch;
    topts.accum = std::max<int64_t>(1, o.accum);
    topts.seq_len = o.ctx;
    topts.seed = o.seed;
    topts.adamw.lr = o.lr;
    topts.adamw.total_steps = o.steps > 0 ? o.steps : (budget > 0 ? 1000000 : 500);
    topts.adamw.warmup_steps = budget > 0 ? 10 : std::clamp<int64_t>(topts.adamw.total_steps / 10, 1, 100);
  }
  HEARTH_ASSIGN_OR_RETURN(auto trainer, train::Trainer::create(topts, train_ids, eval_ids, threads));
  std::unique_ptr<model::Context> tctx;
  if (teacher) {
    if (teacher->hparams().n_vocab != topts.shape.n_vocab) {
      return make_error(
          ErrorCode::kInvalidArgument,
          "the teacher and the student must share a tokenizer: the teacher's output has {} logits for {} tokens",
          teacher->hparams().n_vocab, topts.shape.n_vocab);
    }
    model::ContextParams cp;
    cp.n_ctx = topts.seq_len;
    cp.n_seq = static_cast<int>(topts.batch);
    cp.n_batch = topts.batch * topts.seq_len;
    cp.n_threads = threads;
    cp.kv_type = kernels::KvType::kF32;
    HEARTH_ASSIGN_OR_RETURN(tctx, model::Context::create(*teacher, cp));
    model::Context* ctx = tctx.get();
    trainer->set_teacher(
        [ctx](const int32_t* windows, int64_t n_seq, int64_t len, std::vector<float>& logits) -> Status {
          std::vector<model::BatchToken> batch;
          for (int64_t b = 0; b < n_seq; ++b) {
            for (int64_t t = 0; t < len; ++t) {
              batch.push_back({windows[b * (len + 1) + t], static_cast<int32_t>(t), static_cast<int32_t>(b), true});
            }
          }
          HEARTH_TRY(ctx->decode(batch));
          const size_t nv = ctx->logits(0).size();
          logits.resize(batch.size() * nv);
          for (size_t i = 0; i < batch.size(); ++i) {
            const auto l = ctx->logits(static_cast<int>(i));
            std::copy(l.begin(), l.end(), logits.begin() + i * nv);
          }
          return ok_status();
        },
        o.distill_temp, o.distill_alpha);
  }
  if (resumed) {
    HEARTH_TRY(trainer->set_state(std::move(resumed->state)));
    std::fprintf(stderr, "resuming %s at step %lld of %lld\n", o.resume.c_str(),
                 static_cast<long long>(trainer->step()), static_cast<long long>(topts.adamw.total_steps));
  }
  const train::LlamaShape& s = topts.shape;
  std::fprintf(stderr,
               "model: %s, %zu parameters (n_embd %lld, n_layer %lld, n_head %lld/%lld, n_ff %lld, ctx %lld); "
               "batch %lld x %lld x %lld tokens, lr %g, %d thread(s)\n",
               resumed ? "resumed" : o.preset.c_str(), trainer->params().n_params(), static_cast<long long>(s.n_embd),
               static_cast<long long>(s.n_layer), static_cast<long long>(s.n_head), static_cast<long long>(s.n_head_kv),
               static_cast<long long>(s.n_ff), static_cast<long long>(s.n_ctx), static_cast<long long>(topts.batch),
               static_cast<long long>(topts.accum), static_cast<long long>(topts.seq_len), topts.adamw.lr, threads);

  // The loop. With --time the schedule's length is set after the 5th step and corrected once
  // after the 30th, from the pace so far (the budget minus what setup already took).
  const double t_loop = now_seconds();
  int64_t total = trainer->options().adamw.total_steps;
  auto log_every = [&] { return std::max<int64_t>(1, total / 20); };
  auto eval_every = [&] { return std::max<int64_t>(1, total / 5); };
  double train_loss = NAN, eval_loss = NAN;
  int64_t tokens = 0;
  const int64_t first_step = trainer->step();
  double t_first = t_loop;
  while (trainer->step() < total) {
    train_loss = trainer->train_step();
    HEARTH_TRY(trainer->teacher_status());
    tokens += trainer->tokens_per_step();
    const int64_t step = trainer->step();
    const double elapsed = now_seconds() - t_loop;
    if (step == first_step + 1) t_first = now_seconds();
    if (budget > 0 && !resumed && (step == first_step + 5 || step == first_step + 30) && step < total) {
      // Pace from the steps after the first (which also pays for first-touch allocation); the
      // margin covers the final evaluation, the export and the sample.
      const double per_step = (now_seconds() - t_first) / static_cast<double>(step - first_step - 1);
      const double left = budget - (now_seconds() - t_start) - 0.05 * budget - 3.0;
      total = std::max<int64_t>(step + 1, step + static_cast<int64_t>(left / per_step));
      trainer->set_total_steps(total);
    }
    const bool stop = o.stop_after > 0 && step - first_step >= o.stop_after;  // a session ends; the run goes on
    const bool last = step >= total || stop || (budget > 0 && now_seconds() - t_start > budget);
    if (step % eval_every() == 0 || last) eval_loss = trainer->eval_loss();
    if (step % log_every() == 0 || last || step == first_step + 1) {
      const double tps = static_cast<double>(tokens) / elapsed;
      // With --time the length is known only after calibration: until then, the budget left.
      const bool calibrated = budget <= 0 || resumed || step - first_step >= 5;
      const double eta = calibrated
                             ? static_cast<double>(total - step) * elapsed / static_cast<double>(step - first_step)
                             : budget - (now_seconds() - t_start);
      const std::string of = calibrated ? std::to_string(total) : "?";
      std::fprintf(stderr, "step %6lld/%s | train loss %.4f | eval loss %.4f | %.0f tok/s | ETA %s\n",
                   static_cast<long long>(step), of.c_str(), train_loss, eval_loss, tps, fmt_duration(eta).c_str());
    }
    const bool save = last || (o.checkpoint_every > 0 ? step % o.checkpoint_every == 0 : step % eval_every() == 0);
    if (save) {
      HEARTH_TRY(train::save_checkpoint(o.checkpoint, trainer->options(), trainer->params(), trainer->state(), vocab));
    }
    if (last) break;
  }
  const double train_seconds = now_seconds() - t_loop;

  HEARTH_TRY(train::export_gguf(o.out, trainer->params(), trainer->state().w.data(), vocab,
                                o.type == "f16" ? TensorType::F16 : TensorType::F32, "hearth-trained"));
  // Final scores on all held-out windows (at most 256): the model against a unigram model fitted
  // on the same training tokens, over the same scored tokens.
  int64_t n_scored = 0;
  const double final_eval = trainer->eval_loss(256, &n_scored);
  std::printf("trained %lld steps in %s (%.0f tokens/s); wrote %s (checkpoint %s)\n",
              static_cast<long long>(trainer->step()), fmt_duration(train_seconds).c_str(),
              static_cast<double>(tokens) / std::max(1e-9, train_seconds), o.out.c_str(), o.checkpoint.c_str());
  if (n_scored > 0) {
    const std::vector<int32_t> scored(eval_ids.begin(), eval_ids.begin() + n_scored + 1);
    const double uni = train::unigram_perplexity(train_ids, scored, s.n_vocab);
    std::printf("held-out perplexity: %.2f (eval loss %.4f over %lld tokens); unigram baseline: %.2f\n",
                std::exp(final_eval), final_eval, static_cast<long long>(n_scored), uni);
  } else {
    std::printf("held-out perplexity: n/a (too little held-out text; raise --eval-frac)\n");
  }
  if (o.sample_tokens > 0) {
    HEARTH_ASSIGN_OR_RETURN(std::string sample, sample_text(o.out, o.sample_prompt, o.sample_tokens, threads));
    std::printf("sample: %s\n", sample.c_str());
  }
  return ok_status();
}

void setup(CLI::App& app) {
  auto o = std::make_shared<TrainCliOptions>();
  auto* sub = app.add_subcommand("train", "train a small Llama model (and its tokenizer) from scratch on your text");
  sub->add_option("--corpus", o->corpus, "UTF-8 text files or directories")->expected(1, -1);
  sub->add_option("--stories", o->stories, "also train on N short stories from hearth's own grammar (the demo model)");
  sub->add_option("-o,--out", o->out, "output GGUF file")->required();
  sub->add_option("--preset", o->preset, "model shape: nano, micro or tiny")->capture_default_str();
  sub->add_option("--vocab", o->vocab, "tokenizer vocabulary size")->capture_default_str();
  sub->add_option("--steps", o->steps, "optimizer steps (default 500)");
  sub->add_option("--time", o->time, "train for about this long instead (e.g. 3m, 90s)");
  sub->add_option("-c,--ctx", o->ctx, "context (training window) in tokens")->capture_default_str();
  sub->add_option("-b,--batch", o->batch, "windows per step (default 16)");
  sub->add_option("--accum", o->accum, "micro-batches accumulated per step")->capture_default_str();
  sub->add_option("--lr", o->lr, "peak learning rate (default: per preset)");
  sub->add_option("--seed", o->seed, "random seed")->capture_default_str();
  sub->add_option("--eval-frac", o->eval_frac, "share of paragraphs held out for evaluation")->capture_default_str();
  add_threads_option(sub, o->threads);
  sub->add_option("--teacher", o->teacher, "distill from this model (file or store reference; its tokenizer is used)");
  sub->add_option("--distill-temp", o->distill_temp, "distillation temperature T")->capture_default_str();
  sub->add_option("--distill-alpha", o->distill_alpha, "weight of the teacher's KL (1 - alpha: the data loss)")
      ->capture_default_str();
  sub->add_flag("--allow-unsigned", o->allow_unsigned, "accept an unsigned store model as the teacher");
  sub->add_option("--resume", o->resume, "continue from a checkpoint (same corpus and --eval-frac)");
  sub->add_option("--checkpoint", o->checkpoint, "checkpoint file (default: OUT.ckpt)");
  sub->add_option("--checkpoint-every", o->checkpoint_every, "steps between checkpoints (default: 5 per run)");
  sub->add_option("--stop-after", o->stop_after, "stop after N steps of this session (checkpointed; --resume goes on)");
  sub->add_option("--type", o->type, "weight type of the output: f32 or f16")->capture_default_str();
  sub->add_option("--sample-prompt", o->sample_prompt, "prompt of the sample printed at the end")
      ->capture_default_str();
  sub->add_option("--sample-tokens", o->sample_tokens, "tokens to sample at the end (0: none)")->capture_default_str();
  sub->callback([o] {
    Status s = run(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(75, setup);

}  // namespace
}  // namespace hearth::cli
