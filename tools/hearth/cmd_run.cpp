// `hearth run`: generate text from a prompt, streaming it to stdout as it is produced.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "chat_repl.h"
#include "command.h"
#include "common_options.h"
#include "hearth/core/atomic_file.h"
#include "hearth/core/process_stats.h"
#include "hearth/engine/speculative.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/sampling/sampler.h"
#include "hearth/sampling/stop_string_matcher.h"
#include "hearth/tokenizer/tokenizer.h"
#include "model_arg.h"

namespace hearth::cli {
namespace {

struct RunOptions {
  ModelOptions m;
  std::string prompt;
  std::string prompt_file;
  bool prompt_given = false;
  int n_predict = -1;
  sampling::SamplerConfig sampler;
  int64_t ctx = 0;
  int threads = 0;
  bool echo = false;
  bool ignore_eos = false;
  bool no_bos = false;
  bool parse_special = false;
  std::vector<std::string> stop;
  KvOptions kv;
  std::vector<std::string> lora;
  std::string draft;         // --draft MODEL
  bool draft_ngram = false;  // --draft-ngram
  int draft_max = 8;         // --draft-max
};

Status run(const RunOptions& o) {
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, resolve_model_arg(o.m.model, "run", o.m.allow_unsigned));
  HEARTH_TRY(parse_lora_specs(o.lora).status());  // a bad --lora fails before the prompt is read
  std::string prompt = o.prompt;
  if (!o.prompt_file.empty()) {
    HEARTH_ASSIGN_OR_RETURN(prompt, read_file(o.prompt_file, 64 << 20));
  } else if (!o.prompt_given) {
    if (isatty(STDIN_FILENO)) std::fprintf(stderr, "reading the prompt from stdin (end with Ctrl-D)\n");
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }

  HEARTH_ASSIGN_OR_RETURN(GenerationSetup g,
                          load_for_generation(arg, o.lora, o.m.allow_unsigned, o.ctx, o.threads, o.kv));
  const auto& model = g.model;
  const auto& tok = g.tok;
  const auto& ctx = g.ctx;
  std::unique_ptr<model::Model> draft_model;
  std::unique_ptr<engine::Drafter> drafter;
  if (!o.draft.empty()) {
    HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg draft_arg, resolve_model_arg(o.draft, "run", o.m.allow_unsigned));
    HEARTH_ASSIGN_OR_RETURN(GenerationSetup d,
                            load_for_generation(draft_arg, {}, o.m.allow_unsigned, ctx->n_ctx(), o.threads, o.kv));
    HEARTH_TRY(engine::check_draft_vocabulary(*tok, *d.tok).with_context("--draft " + o.draft));
    drafter = std::make_unique<engine::ModelDrafter>(std::move(d.ctx));
    draft_model = std::move(d.model);  // outlives the drafter's context (declared before it)
  } else if (o.draft_ngram) {
    drafter = std::make_unique<engine::NgramDrafter>();
  }

  std::vector<int32_t> ids = tok->encode(prompt, !o.no_bos, o.parse_special);
  if (ids.empty()) return make_error(ErrorCode::kInvalidArgument, "the prompt is empty (and no BOS token is added)");
  if (static_cast<int64_t>(ids.size()) >= ctx->n_ctx()) {
    return make_error(ErrorCode::kOutOfRange,
                      "the prompt has {} tokens, which does not fit the context of {} (raise -c)", ids.size(),
                      ctx->n_ctx());
  }

  sampling::SamplerConfig sc = o.sampler;
  if (!o.ignore_eos) {
    for (int32_t id = 0; id < tok->n_vocab(); ++id) {
      if (tok->is_eog(id)) sc.eog_tokens.push_back(id);
    }
  }
  HEARTH_ASSIGN_OR_RETURN(auto sampler, sampling::Sampler::create(sc, static_cast<int32_t>(model->hparams().n_vocab)));
  for (int32_t id : ids) HEARTH_TRY(sampler.accept(id));

  if (o.echo) {
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    std::fflush(stdout);
  }

  // Prompt: one batched pass, logits for the last token only.
  const double t0 = now_seconds();
  std::vector<model::BatchToken> batch;
  batch.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    batch.push_back({ids[i], static_cast<int32_t>(i), 0, i + 1 == ids.size()});
  }
  HEARTH_TRY(ctx->decode(batch));
  const double t1 = now_seconds();

  sampling::StopStringMatcher stops(o.stop);
  int n_gen = 0;
  int32_t pos = static_cast<int32_t>(ids.size());
  const int64_t limit = o.n_predict < 0 ? ctx->n_ctx() - pos : std::min<int64_t>(o.n_predict, ctx->n_ctx() - pos);
  if (o.n_predict > 0 && o.n_predict > ctx->n_ctx() - pos) {
    std::fprintf(stderr, "warning: -n %d is cut to %lld tokens by the context of %lld\n", o.n_predict,
                 static_cast<long long>(ctx->n_ctx() - pos), static_cast<long long>(ctx->n_ctx()));
  }
  // Takes the sampled token; false when generation ends (end of text, a stop string, the limit).
  auto emit = [&](int32_t next) -> Result<bool> {
    if (sampler.is_eog(next)) return false;
    HEARTH_TRY(sampler.accept(next));
    ++n_gen;
    auto step = stops.push(tok->token_to_piece(next));
    if (!step.text.empty()) {
      std::fwrite(step.text.data(), 1, step.text.size(), stdout);
      std::fflush(stdout);
    }
    return !step.stopped && n_gen < limit;
  };
  engine::SpeculativeStats spec;
  if (!drafter) {
    while (n_gen < limit) {
      HEARTH_ASSIGN_OR_RETURN(int32_t next, sampler.sample(ctx->logits(ctx->n_outputs() - 1)));
      HEARTH_ASSIGN_OR_RETURN(bool more, emit(next));
      if (!more) break;
      model::BatchToken t{next, pos++, 0, true};
      HEARTH_TRY(ctx->decode({&t, 1}));
    }
  } else if (limit > 0) {
    std::vector<int32_t> history = ids;
    auto sample = [&](std::span<const float> logits) { return sampler.sample(logits); };
    HEARTH_ASSIGN_OR_RETURN(spec, engine::speculative_decode(*ctx, *drafter, o.draft_max, history, sample, emit));
  }
  if (!stops.stopped()) {
    std::string rest = stops.finish();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
  }
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const double t2 = now_seconds();
  std::string draft_stats;
  if (drafter) {
    draft_stats = fmt::format(" | draft: {} of {} accepted ({:.0f}%)", spec.accepted, spec.proposed,
                              spec.proposed > 0 ? 100.0 * static_cast<double>(spec.accepted) /
                                                      static_cast<double>(spec.proposed)
                                                : 0.0);
  }
  std::fprintf(stderr,
               "prompt: %zu tokens, %.1f tok/s | generated: %d tokens, %.1f tok/s | peak RSS: %.1f MiB | seed %u%s\n",
               ids.size(), ids.size() / std::max(t1 - t0, 1e-9), n_gen, n_gen / std::max(t2 - t1, 1e-9),
               peak_rss_bytes() / 1048576.0, sampler.seed(), draft_stats.c_str());
  return ok_status();
}

void setup(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* sub = app.add_subcommand("run", "generate text from a prompt (streams to stdout)");
  add_model_options(sub, o->m);
  auto* p = sub->add_option("-p,--prompt", o->prompt, "the prompt (default: read stdin)");
  sub->add_option("-f,--file", o->prompt_file, "read the prompt from a file")->excludes(p);
  sub->add_option("-n,--n-predict", o->n_predict, "tokens to generate (-1: until end of text or context)");
  sub->add_option("--temp", o->sampler.temperature, "temperature (0: greedy)")->capture_default_str();
  sub->add_option("--top-k", o->sampler.top_k, "top-k (0: off)")->capture_default_str();
  sub->add_option("--top-p", o->sampler.top_p, "top-p (1: off)")->capture_default_str();
  sub->add_option("--min-p", o->sampler.min_p, "min-p (0: off)")->capture_default_str();
  sub->add_option("--repeat-penalty", o->sampler.repeat_penalty, "repetition penalty (1: off)")->capture_default_str();
  sub->add_option("--repeat-last-n", o->sampler.penalty_window, "penalty window in tokens")->capture_default_str();
  sub->add_option("--presence-penalty", o->sampler.presence_penalty, "presence penalty")->capture_default_str();
  sub->add_option("--frequency-penalty", o->sampler.frequency_penalty, "frequency penalty")->capture_default_str();
  sub->add_option("-s,--seed", o->sampler.seed, "random seed (default: random)");
  add_ctx_option(sub, o->ctx, "context size (default: min(4096, the model's))");
  add_threads_option(sub, o->threads);
  sub->add_option("--stop", o->stop, "stop string (repeatable)");
  sub->add_flag("--echo", o->echo, "print the prompt before the generated text");
  sub->add_flag("--ignore-eos", o->ignore_eos, "do not stop at end-of-generation tokens");
  sub->add_flag("--no-bos", o->no_bos, "do not add the BOS token");
  sub->add_flag("--special", o->parse_special, "parse special tokens written in the prompt");
  add_kv_options(sub, o->kv);
  add_lora_option(sub, o->lora);
  auto* draft = sub->add_option("--draft", o->draft,
                                "speculative decoding with this draft model (same vocabulary; smaller or lower-bit)");
  sub->add_flag("--draft-ngram", o->draft_ngram, "speculative decoding with prompt-lookup drafts (no draft model)")
      ->excludes(draft);
  sub->add_option("--draft-max", o->draft_max, "most draft tokens checked per step")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  sub->callback([o, p] {
    o->prompt_given = p->count() > 0;
    // On a terminal with no prompt: a conversation, as `hearth chat`.
    if (!o->prompt_given && o->prompt_file.empty() && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
      ChatOptions c;
      c.m = o->m;
      c.n_predict = o->n_predict;
      c.ignore_eos = o->ignore_eos;
      c.sampler = o->sampler;
      c.ctx = o->ctx;
      c.threads = o->threads;
      c.kv = o->kv;
      c.lora = o->lora;
      Status s = run_chat_repl(c);
      set_exit_code(s.ok() ? 0 : report_error(s));
      return;
    }
    Status s = run(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(10, setup);

}  // namespace
}  // namespace hearth::cli
