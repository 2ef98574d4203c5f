// `hearth finetune`: LoRA on a model you already have. The base (a file or a verified store
// reference, quantized or not) is frozen and dequantized; the adapter is written in the GGUF LoRA
// layout the ecosystem reads, and --merged-out also writes base + adapter as a new model.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "hearth/core/atomic_file.h"
#include "hearth/core/process_stats.h"
#include "hearth/tokenizer/tokenizer.h"
#include "hearth/tokenizer/vocab_gguf.h"
#include "hearth/train/corpus.h"
#include "hearth/train/gguf_export.h"
#include "hearth/train/lora.h"
#include "model_arg.h"

namespace hearth::cli {
namespace {

struct FinetuneOptions {
  bool allow_unsigned = false;
  std::string base;
  std::string data;
  std::string out;
  std::string merged_out;
  int64_t rank = 8;
  float alpha = 16.0f;
  std::string targets = "q,k,v,o,gate,up,down";
  int64_t steps = 200;
  int64_t epochs = 0;
  float lr = 1e-3f;
  double eval_frac = 0.05;
  int64_t ctx = 128;
  int64_t batch = 8;
  uint64_t seed = 1;
  int threads = 0;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Status run(const FinetuneOptions& o) {
  if (o.out.empty()) return make_error(ErrorCode::kInvalidArgument, "finetune: give the adapter file with --out");
  if (o.data.ends_with(".jsonl")) {
    return make_error(ErrorCode::kUnimplemented, o.data,
                      ": chat examples (.jsonl) are not supported yet; give plain text (.txt)");
  }
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, resolve_model_arg(o.base, "finetune", o.allow_unsigned));
  HEARTH_ASSIGN_OR_RETURN(auto mapped, open_gguf(arg));
  HEARTH_ASSIGN_OR_RETURN(train::BaseModel base, train::read_base_model(mapped->file, o.ctx));
  HEARTH_ASSIGN_OR_RETURN(tokenizer::VocabSpec vocab, tokenizer::vocab_spec_from_gguf(mapped->file));
  HEARTH_ASSIGN_OR_RETURN(auto tok, tokenizer::Tokenizer::create(vocab));

  HEARTH_ASSIGN_OR_RETURN(train::Corpus corpus, train::read_corpus({o.data}, o.eval_frac));
  const std::vector<int32_t> train_ids = train::tokenize_documents(*tok, corpus.train);
  const std::vector<int32_t> eval_ids = train::tokenize_documents(*tok, corpus.eval);

  train::LoraOptions lo;
  lo.rank = o.rank;
  lo.alpha = o.alpha;
  lo.targets = split_commas(o.targets);
  lo.batch = o.batch;
  lo.seq_len = std::min(o.ctx, base.shape.n_ctx);
  lo.seed = o.seed;
  lo.adamw.lr = o.lr;
  int64_t steps = o.steps;
  if (o.epochs > 0) {
    const int64_t per_step = lo.batch * lo.seq_len;
    steps = std::max<int64_t>(1, o.epochs * static_cast<int64_t>(train_ids.size()) / per_step);
  }
  lo.adamw.total_steps = steps;
  lo.adamw.warmup_steps = std::clamp<int64_t>(steps / 10, 1, 50);
  const int threads = o.threads > 0 ? o.threads : physical_core_count();
  const train::LlamaShape shape = base.shape;
  HEARTH_ASSIGN_OR_RETURN(auto t, train::LoraTrainer::create(std::move(base), lo, train_ids, eval_ids, threads));
  std::fprintf(stderr, "base: %s (n_embd %lld, %lld layers); LoRA rank %lld, alpha %g on %s; %zu training tokens, %zu held out\n",
               arg.display.c_str(), static_cast<long long>(shape.n_embd), static_cast<long long>(shape.n_layer),
               static_cast<long long>(lo.rank), lo.alpha, o.targets.c_str(), train_ids.size(), eval_ids.size());

  const double eval_before = t->eval_loss();
  std::fprintf(stderr, "eval loss before: %.4f\n", eval_before);
  const double t0 = now_seconds();
  const int64_t log_every = std::max<int64_t>(1, steps / 20);
  double train_loss = NAN, eval_loss = eval_before;
  for (int64_t s = 1; s <= steps; ++s) {
    train_loss = t->train_step();
    if (s % std::max<int64_t>(1, steps / 5) == 0 || s == steps) eval_loss = t->eval_loss();
    if (s % log_every == 0 || s == steps || s == 1) {
      const double el = now_seconds() - t0;
      std::fprintf(stderr, "step %6lld/%lld | train loss %.4f | eval loss %.4f | %.0f tok/s | ETA %.0fs\n",
                   static_cast<long long>(s), static_cast<long long>(steps), train_loss, eval_loss,
                   static_cast<double>(s * t->tokens_per_step()) / el, el / static_cast<double>(s) * (steps - s));
    }
  }
  HEARTH_TRY(t->write_adapter(o.out, std::string(mapped->file.get_string("general.name").value_or("model"))));
  std::printf("wrote %s; held-out loss %.4f -> %.4f (perplexity %.2f -> %.2f)\n", o.out.c_str(), eval_before, eval_loss,
              std::exp(eval_before), std::exp(eval_loss));
  if (!o.merged_out.empty()) {
    HEARTH_TRY(train::export_gguf(o.merged_out, t->params(), t->merged().data(), vocab, TensorType::F32, "merged"));
    std::printf("wrote the merged model %s\n", o.merged_out.c_str());
  }
  return ok_status();
}

void setup(CLI::App& app) {
  auto o = std::make_shared<FinetuneOptions>();
  auto* sub = app.add_subcommand("finetune", "train a LoRA adapter for a llama model on your text");
  sub->add_option("base", o->base, "base GGUF file or store reference (default: $HEARTH_MODEL)");
  sub->add_option("--data", o->data, "UTF-8 text file (.txt)")->required();
  sub->add_option("-o,--out", o->out, "adapter GGUF file")->required();
  sub->add_option("--merged-out", o->merged_out, "also write base + adapter as a model (f32)");
  sub->add_option("--rank", o->rank, "LoRA rank")->capture_default_str();
  sub->add_option("--alpha", o->alpha, "LoRA alpha (scale = alpha / rank)")->capture_default_str();
  sub->add_option("--targets", o->targets, "adapted matrices")->capture_default_str();
  sub->add_option("--steps", o->steps, "optimizer steps")->capture_default_str();
  sub->add_option("--epochs", o->epochs, "passes over the data instead of --steps");
  sub->add_option("--lr", o->lr, "peak learning rate")->capture_default_str();
  sub->add_option("--eval-frac", o->eval_frac, "share of paragraphs held out")->capture_default_str();
  sub->add_option("-c,--ctx", o->ctx, "training window in tokens")->capture_default_str();
  sub->add_option("-b,--batch", o->batch, "windows per step")->capture_default_str();
  sub->add_option("--seed", o->seed, "random seed")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "threads (default: physical cores)");
  sub->add_flag("--allow-unsigned", o->allow_unsigned, "accept an unsigned store model");
  sub->callback([o] {
    Status s = run(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(76, setup);

}  // namespace
}  // namespace hearth::cli
