// `hearth prune`: a smaller llama model from a larger one, without leaving the building. FFN
// neurons (and optionally whole layers) that matter least on calibration text are removed (see
// hearth/train/prune.h); the output is a standard GGUF, and the perplexity on held-out text is
// reported before and after. A short `hearth finetune` can then heal it. With --imatrix the
// neurons' activation statistics come from an importance matrix of the same model (`hearth
// imatrix`: the mean square of each ffn_down input) instead of a calibration pass.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "command.h"
#include "common_options.h"
#include "hearth/core/process_stats.h"
#include "hearth/quantize/imatrix.h"
#include "hearth/tokenizer/tokenizer.h"
#include "hearth/tokenizer/vocab_gguf.h"
#include "hearth/train/corpus.h"
#include "hearth/train/gguf_export.h"
#include "hearth/train/prune.h"
#include "model_arg.h"

namespace hearth::cli {
namespace {

struct PruneCliOptions {
  bool allow_unsigned = false;
  std::string in, out, data, type = "f32";
  std::string imatrix;
  double ffn = 0.3;
  int64_t layers = 0;
  int64_t ctx = 128;
  double eval_frac = 0.2;
  int threads = 0;
};

// Each FFN neuron's root mean square activation, [n_layer][n_ff], from the entries
// "blk.N.ffn_down.weight" of an imatrix (whose columns are ffn_down's inputs, the neurons).
// The imatrix must be this model's: every entry names a tensor of the model with as many
// columns, and every layer's ffn_down has an entry that saw tokens.
Result<std::vector<double>> ffn_activation_from_imatrix(const quantize::Imatrix& im, const std::string& im_path,
                                                        const gguf::GgufFile& model, const std::string& model_name,
                                                        const train::LlamaShape& shape) {
  for (const auto& [name, e] : im.entries()) {
    const gguf::TensorInfo* t = model.find_tensor(name);
    if (t == nullptr) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: entry '{}' names no tensor of {}: the imatrix is for another model (make one with "
                        "'hearth imatrix MODEL -f TEXT')",
                        im_path, name, model_name);
    }
    if (t->ne[0] != static_cast<uint64_t>(e.n_cols)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: entry '{}' has {} columns, the tensor in {} has {}: the imatrix is for another model",
                        im_path, name, e.n_cols, model_name, t->ne[0]);
    }
  }
  const int64_t ff = shape.n_ff;
  std::vector<double> act(static_cast<size_t>(shape.n_layer * ff));
  for (int64_t il = 0; il < shape.n_layer; ++il) {
    const std::string name = "blk." + std::to_string(il) + ".ffn_down.weight";
    const quantize::ImatrixEntry* e = im.find(name);
    if (e == nullptr) {
      return make_error(ErrorCode::kInvalidArgument, "{}: no entry for '{}', which pruning needs", im_path, name);
    }
    if (e->n_mat != 1 || e->n_cols != ff || e->sum2.size() != static_cast<size_t>(ff) || e->counts.size() != 1) {
      return make_error(ErrorCode::kInvalidArgument, "{}: entry '{}' is [{}, {}], not [{}, 1] (n_ff of {})", im_path,
                        name, e->n_cols, e->n_mat, ff, model_name);
    }
    if (!(e->counts[0] > 0.0)) {
      return make_error(ErrorCode::kInvalidArgument, "{}: entry '{}' saw no tokens", im_path, name);
    }
    for (int64_t j = 0; j < ff; ++j) {
      const double ms = e->sum2[static_cast<size_t>(j)] / e->counts[0];
      if (!std::isfinite(ms) || ms < 0.0) {
        return make_error(ErrorCode::kInvalidArgument, "{}: entry '{}': column {} is {}", im_path, name, j, ms);
      }
      act[static_cast<size_t>(il * ff + j)] = std::sqrt(ms);
    }
  }
  return act;
}

Status run(const PruneCliOptions& o) {
  if (o.type != "f32" && o.type != "f16") return make_error(ErrorCode::kInvalidArgument, "--type must be f32 or f16");
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, resolve_model_arg(o.in, "prune", o.allow_unsigned));
  HEARTH_ASSIGN_OR_RETURN(auto mapped, open_gguf(arg));
  HEARTH_ASSIGN_OR_RETURN(train::BaseModel base, train::read_base_model(mapped->file, o.ctx));
  HEARTH_ASSIGN_OR_RETURN(tokenizer::VocabSpec vocab, tokenizer::vocab_spec_from_gguf(mapped->file));
  HEARTH_ASSIGN_OR_RETURN(auto tok, tokenizer::Tokenizer::create(vocab));
  HEARTH_ASSIGN_OR_RETURN(train::Corpus corpus, train::read_corpus({o.data}, o.eval_frac));
  const auto calib = train::tokenize_documents(*tok, corpus.train);
  const auto eval = train::tokenize_documents(*tok, corpus.eval);
  train::PruneOptions po;
  po.ffn_frac = o.ffn;
  po.drop_layers = o.layers;
  po.seq_len = o.ctx;
  if (!o.imatrix.empty()) {
    HEARTH_ASSIGN_OR_RETURN(quantize::Imatrix im, quantize::Imatrix::read(o.imatrix));
    HEARTH_ASSIGN_OR_RETURN(po.ffn_activation,
                            ffn_activation_from_imatrix(im, o.imatrix, mapped->file,
                                                        arg.reference.empty() ? arg.path : arg.reference, base.shape));
    std::fprintf(stderr, "FFN statistics from %s (%u windows of %u tokens)\n", o.imatrix.c_str(), im.chunk_count,
                 im.chunk_size);
  }
  const int threads = o.threads > 0 ? o.threads : physical_core_count();
  HEARTH_ASSIGN_OR_RETURN(train::PruneResult r, train::prune_llama(base, calib, eval, po, threads));
  const train::LlamaParams np(r.model.shape);
  HEARTH_TRY(train::export_gguf(o.out, np, r.model.w.data(), vocab, o.type == "f16" ? TensorType::F16 : TensorType::F32,
                                std::string(mapped->file.get_string("general.name").value_or("model")) + "-pruned"));
  std::string dropped;
  for (int64_t l : r.dropped_layers) dropped += (dropped.empty() ? "" : ", ") + std::to_string(l);
  std::printf("wrote %s: n_ff %lld -> %lld, layers %lld -> %lld%s%s%s, %zu -> %zu parameters\n", o.out.c_str(),
              static_cast<long long>(base.shape.n_ff), static_cast<long long>(r.model.shape.n_ff),
              static_cast<long long>(base.shape.n_layer), static_cast<long long>(r.model.shape.n_layer),
              dropped.empty() ? "" : " (dropped ", dropped.c_str(), dropped.empty() ? "" : ")",
              train::LlamaParams(base.shape).n_params(), np.n_params());
  std::printf("held-out perplexity: %.3f before, %.3f after\n", r.ppl_before, r.ppl_after);
  return ok_status();
}

void setup(CLI::App& app) {
  auto o = std::make_shared<PruneCliOptions>();
  auto* sub = app.add_subcommand("prune", "remove the least important FFN neurons (and layers) of a llama model");
  sub->add_option("in", o->in, "model GGUF file or store reference")->required();
  sub->add_option("out", o->out, "output GGUF file")->required();
  sub->add_option("--data", o->data,
                  "calibration text (UTF-8; a share is held out for perplexity, the rest calibrates unless --imatrix)")
      ->required();
  sub->add_option("--imatrix", o->imatrix,
                  "importance matrix of this model (hearth imatrix): its ffn_down statistics rank the neurons "
                  "instead of a calibration pass over --data");
  sub->add_option("--ffn", o->ffn, "share of FFN neurons to remove")->capture_default_str();
  sub->add_option("--layers", o->layers, "whole layers to remove")->capture_default_str();
  add_ctx_option(sub, o->ctx, "window in tokens")->capture_default_str();
  sub->add_option("--eval-frac", o->eval_frac, "share of paragraphs held out")->capture_default_str();
  sub->add_option("--type", o->type, "output weight type: f32 or f16")->capture_default_str();
  add_threads_option(sub, o->threads);
  sub->add_flag("--allow-unsigned", o->allow_unsigned, "accept an unsigned store model");
  sub->callback([o] {
    Status s = run(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(77, setup);

}  // namespace
}  // namespace hearth::cli
