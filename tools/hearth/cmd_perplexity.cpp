// `hearth perplexity`: perplexity of a model on a text file (ecosystem-compatible windowing),
// with --lora FILE[:SCALE] adapters applied if given; --save-logits writes the base
// log-probabilities, --kl-base compares against them (KL divergence, same-top-token rate,
// delta PPL). The logits file is the format of the ecosystem's --kl-divergence-base (see
// hearth/eval/logits_file.h).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "common_options.h"
#include "hearth/core/atomic_file.h"
#include "hearth/core/process_stats.h"
#include "hearth/eval/kl_divergence.h"
#include "hearth/eval/logits_file.h"
#include "hearth/eval/perplexity.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/tokenizer/tokenizer.h"
#include "model_arg.h"

namespace hearth::cli {
namespace {

struct PplOptions {
  ModelOptions m;
  std::string text_file;
  int64_t ctx = 512;
  int64_t batch = 512;
  int64_t chunks = 0;
  int threads = 0;
  KvOptions kv;
  std::string save_logits;
  std::string kl_base;
  std::vector<std::string> lora;
};

void print_kl(const eval::KlSummary& s) {
  std::printf("KL divergence over %lld positions:\n", static_cast<long long>(s.n));
  std::printf("  PPL(model)         %10.4f\n", s.ppl);
  std::printf("  PPL(base)          %10.4f\n", s.ppl_base);
  std::printf("  delta PPL          %10.4f\n", s.delta_ppl);
  std::printf("  ln(PPL/PPL base)   %10.6f +/- %.6f\n", s.ln_ppl_ratio, s.ln_ppl_ratio_err);
  std::printf("  mean KLD           %10.6f +/- %.6f\n", s.kld_mean, s.kld_err);
  std::printf("  max KLD            %10.6f\n", s.kld_max);
  std::printf("  99.9%% KLD          %10.6f\n", s.kld_p999);
  std::printf("  99.0%% KLD          %10.6f\n", s.kld_p99);
  std::printf("  90.0%% KLD          %10.6f\n", s.kld_p90);
  std::printf("  median KLD         %10.6f\n", s.kld_median);
  std::printf("  10.0%% KLD          %10.6f\n", s.kld_p10);
  std::printf("  min KLD            %10.6f\n", s.kld_min);
  std::printf("  same top token     %9.3f%% +/- %.3f%%\n", 100.0 * s.same_top, 100.0 * s.same_top_err);
  std::printf("  RMS delta p        %9.3f%%\n", 100.0 * s.rms_dp);
}

Status run(const PplOptions& o) {
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, resolve_model_arg(o.m.model, "perplexity", o.m.allow_unsigned));
  HEARTH_ASSIGN_OR_RETURN(const std::vector<LoraSpec> lora_specs, parse_lora_specs(o.lora));
  HEARTH_ASSIGN_OR_RETURN(auto model, load_model(arg, {.n_threads = o.threads}));
  HEARTH_ASSIGN_OR_RETURN(std::vector<model::LoraUse> lora, load_lora_adapters(lora_specs, *model, o.m.allow_unsigned));
  const int64_t n_vocab = model->hparams().n_vocab;

  // The tokens: from the base logits file with --kl-base (as the ecosystem does: both runs
  // must score the same tokens), else from the text.
  std::unique_ptr<eval::LogitsFile> base;
  std::vector<int32_t> ids;
  int64_t n_ctx = o.ctx;
  int32_t bos = -1;
  if (!o.kl_base.empty()) {
    HEARTH_ASSIGN_OR_RETURN(base, eval::LogitsFile::open(o.kl_base));
    if (base->n_vocab() != n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "{}: vocabulary of {} tokens, but the model has {}", o.kl_base,
                        base->n_vocab(), n_vocab);
    }
    if (n_ctx != base->n_ctx()) {
      std::fprintf(stderr, "using the base file's window of %d tokens\n", base->n_ctx());
      n_ctx = base->n_ctx();
    }
    ids.assign(base->tokens().begin(), base->tokens().end());
  }
  HEARTH_ASSIGN_OR_RETURN(auto tok, tokenizer::Tokenizer::from_gguf(model->gguf()));
  bos = tok->bos();
  if (!base) {
    if (o.text_file.empty()) return make_error(ErrorCode::kInvalidArgument, "perplexity: give a text file with -f");
    HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(o.text_file, uint64_t{1} << 31));
    const double t0 = now_seconds();
    ids = tok->encode(text, /*add_bos=*/true, /*parse_special=*/false);
    std::fprintf(stderr, "tokenized %zu bytes into %zu tokens in %.2f s\n", text.size(), ids.size(),
                 now_seconds() - t0);
  }

  model::ContextParams cp;
  cp.n_ctx = n_ctx;
  cp.n_batch = o.batch;
  cp.n_threads = o.threads;
  HEARTH_ASSIGN_OR_RETURN(cp.kv_type, parse_kv_types(o.kv));
  HEARTH_ASSIGN_OR_RETURN(auto ctx, model::Context::create(*model, cp));
  HEARTH_TRY(ctx->set_adapters(0, std::move(lora)));

  eval::PerplexityParams pp;
  pp.n_ctx = n_ctx;
  pp.max_chunks = o.chunks;
  pp.bos = bos;
  int64_t n_chunk = static_cast<int64_t>(ids.size()) / std::max<int64_t>(n_ctx, 1);
  if (o.chunks > 0) n_chunk = std::min(n_chunk, o.chunks);

  std::unique_ptr<eval::LogitsFileWriter> saver;
  if (!o.save_logits.empty()) {
    if (n_chunk < 1) return make_error(ErrorCode::kInvalidArgument, "perplexity: the text is shorter than one window");
    HEARTH_ASSIGN_OR_RETURN(
        saver, eval::LogitsFileWriter::create(o.save_logits, static_cast<int32_t>(n_ctx), static_cast<int32_t>(n_vocab),
                                              static_cast<int32_t>(n_chunk), ids));
  }
  eval::KlAccumulator kl;
  int32_t window = 0;
  eval::PerplexityCallbacks cb;
  const double t1 = now_seconds();
  cb.progress = [&](int64_t done, int64_t total, double running) {
    const double el = now_seconds() - t1;
    std::fprintf(stderr, "\r[%lld/%lld] ppl %.4f", static_cast<long long>(done), static_cast<long long>(total),
                 running);
    if (base) std::fprintf(stderr, "  kld %.5f", kl.summary().kld_mean);
    std::fprintf(stderr, "  %.0f tok/s  eta %.0f s  ", done * n_ctx / std::max(el, 1e-9),
                 el / static_cast<double>(done) * static_cast<double>(total - done));
    std::fflush(stderr);
  };
  if (saver || base) {
    cb.window_logits = [&](std::span<const float> logits, std::span<const int32_t> targets) -> Status {
      if (saver) HEARTH_TRY(saver->add_window(logits));
      if (base) {
        for (size_t r = 0; r < targets.size(); ++r) {
          kl.add(logits.subspan(r * static_cast<size_t>(n_vocab), static_cast<size_t>(n_vocab)),
                 base->record(window, static_cast<int64_t>(r)), targets[r]);
        }
      }
      ++window;
      return ok_status();
    };
  }
  HEARTH_ASSIGN_OR_RETURN(eval::PerplexityResult r, eval::compute_perplexity(*ctx, ids, pp, cb));
  std::fprintf(stderr, "\n");
  if (saver) {
    HEARTH_TRY(saver->commit());
    std::printf("saved the log-probabilities of %lld windows to %s\n", static_cast<long long>(r.n_chunks),
                o.save_logits.c_str());
  }
  std::printf("windows: %lld of %lld tokens, %lld scored\n", static_cast<long long>(r.n_chunks),
              static_cast<long long>(n_ctx), static_cast<long long>(r.n_scored));
  std::printf("PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_error);
  if (base) print_kl(kl.summary());
  return ok_status();
}

void setup(CLI::App& app) {
  auto o = std::make_shared<PplOptions>();
  auto* sub = app.add_subcommand("perplexity", "measure a model's perplexity (and KL divergence from a base model)");
  add_model_options(sub, o->m);
  sub->add_option("-f,--file", o->text_file, "text file (not needed with --kl-base)");
  add_ctx_option(sub, o->ctx, "window size in tokens")->capture_default_str();
  sub->add_option("-b,--batch-size", o->batch, "tokens per forward pass")->capture_default_str();
  sub->add_option("--chunks", o->chunks, "stop after N windows (0: all)");
  add_threads_option(sub, o->threads);
  add_kv_options(sub, o->kv, /*with_limit=*/false);
  sub->add_option("--save-logits", o->save_logits, "write the scored log-probabilities (base for --kl-base)");
  sub->add_option("--kl-base", o->kl_base, "compare with log-probabilities saved by --save-logits");
  add_lora_option(sub, o->lora);
  sub->callback([o] {
    Status s = run(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(40, setup);

}  // namespace
}  // namespace hearth::cli
