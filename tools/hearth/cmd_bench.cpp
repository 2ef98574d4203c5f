// `hearth bench`: prefill and decode speed of a model (a file, or a cached synthetic model of a
// real architecture's shape), with decode bandwidth, ISA, threads, peak RSS and a checksum.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "onnx_bench.h"
#include "common_options.h"
#include "hearth/core/process_stats.h"
#include "hearth/eval/bench.h"
#include "hearth/eval/synthetic.h"
#include "hearth/model/model.h"
#include "hearth/quantize/quantize_model.h"
#include "model_arg.h"

namespace hearth::cli {
namespace {

struct BenchOptions {
  ModelOptions m;
  std::string synthetic;
  std::string type = "q4_k_m";
  eval::BenchParams params;
  bool json = false;
  bool no_bandwidth = false;
  std::string draft;       // --draft MODEL
  std::string draft_type;  // --draft-type TYPE: the synthetic preset of that type
  KvOptions kv;            // --kv-type, --cache-type-k/-v
  OnnxBenchOptions onnx;   // MODEL.onnx: --input, --shape (onnx_bench.h)
};

// Resets VmHWM so that peak RSS covers the benchmark, not the synthetic model's creation.
void reset_peak_rss() {
  int fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (::write(fd, "5", 1) < 0) { /* best effort */
  }
  ::close(fd);
}

Status run(BenchOptions o) {
  if (o.m.model.size() > 5 && o.m.model.compare(o.m.model.size() - 5, 5, ".onnx") == 0) {
    o.onnx.model = o.m.model;
    o.onnx.threads = o.params.n_threads;
    o.onnx.json = o.json;
    return run_onnx_bench(o.onnx);
  }
  std::string path;
  std::string label;
  ResolvedModelArg arg;
  if (!o.synthetic.empty()) {
    const eval::SyntheticPreset* p = eval::find_preset(o.synthetic);
    if (p == nullptr) {
      std::string names;
      for (auto* q : eval::all_presets()) names += (names.empty() ? "" : ", ") + std::string(q->name);
      return make_error(ErrorCode::kInvalidArgument, "unknown synthetic preset '{}' ({})", o.synthetic, names);
    }
    HEARTH_ASSIGN_OR_RETURN(quantize::SyntheticRecipe recipe, quantize::synthetic_recipe(o.type, *p));
    HEARTH_ASSIGN_OR_RETURN(uint64_t est, eval::estimate_synthetic_bytes(*p, recipe.choose));
    std::fprintf(stderr, "synthetic %s (%.*s shape, %.*s), %s: about %.0f MiB\n", o.synthetic.c_str(),
                 static_cast<int>(p->shape_of.size()), p->shape_of.data(), static_cast<int>(p->arch.size()),
                 p->arch.data(), o.type.c_str(), est / 1048576.0);
    HEARTH_ASSIGN_OR_RETURN(path, eval::ensure_synthetic_model(*p, recipe.label, recipe.choose, o.params.n_threads));
    label = "synthetic-" + o.synthetic + "-" + recipe.label;
    arg.path = path;
    arg.purpose = "bench";
  } else {
    HEARTH_ASSIGN_OR_RETURN(arg, resolve_model_arg(o.m.model, "bench", o.m.allow_unsigned));
    path = arg.path;
    label = arg.display;
  }
  reset_peak_rss();
  HEARTH_ASSIGN_OR_RETURN(auto model, load_model(arg, {.n_threads = o.params.n_threads}));
  std::unique_ptr<model::Model> draft;
  std::string draft_label;
  if (!o.draft_type.empty()) {
    if (o.synthetic.empty()) return make_error(ErrorCode::kInvalidArgument, "--draft-type needs --synthetic");
    const eval::SyntheticPreset* p = eval::find_preset(o.synthetic);
    HEARTH_ASSIGN_OR_RETURN(quantize::SyntheticRecipe recipe, quantize::synthetic_recipe(o.draft_type, *p));
    HEARTH_ASSIGN_OR_RETURN(std::string draft_path,
                            eval::ensure_synthetic_model(*p, recipe.label, recipe.choose, o.params.n_threads));
    ResolvedModelArg d;
    d.path = draft_path;
    d.purpose = "bench";
    HEARTH_ASSIGN_OR_RETURN(draft, load_model(d, {.n_threads = o.params.n_threads}));
    draft_label = "synthetic-" + o.synthetic + "-" + recipe.label;
  } else if (!o.draft.empty()) {
    HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg d, resolve_model_arg(o.draft, "bench", o.m.allow_unsigned));
    HEARTH_ASSIGN_OR_RETURN(draft, load_model(d, {.n_threads = o.params.n_threads}));
    draft_label = d.display;
  }
  o.params.draft = draft.get();
  const double bw = o.no_bandwidth ? 0.0 : eval::measure_read_bandwidth(o.params.n_threads);
  HEARTH_ASSIGN_OR_RETURN(o.params.kv_type, parse_kv_types(o.kv));
  reset_peak_rss();
  HEARTH_ASSIGN_OR_RETURN(eval::BenchResult r, eval::run_bench(*model, o.params));
  const double rss_mb = peak_rss_bytes() / 1048576.0;
  if (o.json) {
    nlohmann::json j;
    j["model"] = label;
    j["path"] = path;
    j["file_mb"] = model->file_bytes() / 1048576.0;
    j["n_prompt"] = o.params.n_prompt;
    j["n_gen"] = o.params.n_gen;
    j["depth"] = o.params.depth;
    j["reps"] = o.params.reps;
    j["prefill_tok_s"] = r.prefill_mean;
    j["prefill_tok_s_sd"] = r.prefill_sd;
    j["decode_tok_s"] = r.decode_mean;
    j["decode_tok_s_sd"] = r.decode_sd;
    j["decode_gb_s"] = r.decode_gb_s;
    j["read_bandwidth_gb_s"] = bw;
    j["decode_bandwidth_fraction"] = bw > 0 ? r.decode_gb_s / bw : 0.0;
    j["isa"] = r.isa;
    j["threads"] = r.threads;
    j["peak_rss_mb"] = rss_mb;
    j["weights_repacked"] = model->packed_bytes() > 0;
    j["repacked_mb"] = model->packed_bytes() / 1048576.0;
    j["kept_stored_mb"] = model->kept_stored_bytes() / 1048576.0;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(r.logits_checksum));
    j["logits_checksum"] = hex;
    if (!r.spec_decode_tok_s.empty()) {
      j["draft"] = draft ? draft_label : "ngram";
      j["spec_decode_tok_s"] = r.spec_decode_mean;
      j["spec_decode_tok_s_sd"] = r.spec_decode_sd;
      j["draft_proposed"] = r.draft_proposed;
      j["draft_accepted"] = r.draft_accepted;
      j["spec_speedup"] = r.decode_mean > 0 ? r.spec_decode_mean / r.decode_mean : 0.0;
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("model: %s (%.0f MiB)\npath: %s\n", label.c_str(), model->file_bytes() / 1048576.0, path.c_str());
    std::printf("isa: %s   threads: %d   weights repacked: ", r.isa.c_str(), r.threads);
    if (model->packed_bytes() > 0) {
      std::printf("%.0f MiB for %s (the stored copies' pages are released)", model->packed_bytes() / 1048576.0,
                  std::string(model->packed_isa()).c_str());
      if (model->kept_stored_bytes() > 0) {
        std::printf("; %.0f MiB kept as stored (growth budget, HEARTH_REPACK=all)",
                    model->kept_stored_bytes() / 1048576.0);
      }
      std::printf("\n");
    } else {
      std::printf("no\n");
    }
    if (o.params.n_prompt > 0) {
      std::printf("prefill pp%lld: %8.2f ± %.2f tok/s\n", static_cast<long long>(o.params.n_prompt), r.prefill_mean,
                  r.prefill_sd);
    }
    if (o.params.n_gen > 0) {
      std::printf("decode  tg%lld", static_cast<long long>(o.params.n_gen));
      if (o.params.depth > 0) std::printf(" @ d%lld", static_cast<long long>(o.params.depth));
      std::printf(": %8.2f ± %.2f tok/s   %.1f GB/s", r.decode_mean, r.decode_sd, r.decode_gb_s);
      if (bw > 0) std::printf(" (%.0f%% of the measured %.1f GB/s read bandwidth)", 100.0 * r.decode_gb_s / bw, bw);
      std::printf("\n");
    }
    if (!r.spec_decode_tok_s.empty()) {
      std::printf("decode with drafts (%s, at most %d per pass): %8.2f ± %.2f tok/s, %.2fx; %lld of %lld guesses "
                  "accepted (%.0f%%)\n",
                  draft ? draft_label.c_str() : "prompt lookup", o.params.draft_max, r.spec_decode_mean,
                  r.spec_decode_sd, r.decode_mean > 0 ? r.spec_decode_mean / r.decode_mean : 0.0,
                  static_cast<long long>(r.draft_accepted), static_cast<long long>(r.draft_proposed),
                  r.draft_proposed > 0 ? 100.0 * static_cast<double>(r.draft_accepted) /
                                             static_cast<double>(r.draft_proposed)
                                       : 0.0);
    }
    std::printf("peak RSS: %.0f MiB   logits checksum: %016llx\n", rss_mb,
                static_cast<unsigned long long>(r.logits_checksum));
  }
  return ok_status();
}

void setup(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* sub = app.add_subcommand("bench", "measure prefill and decode speed");
  add_model_options(sub, o->m);
  sub->add_option("--synthetic", o->synthetic, "benchmark a cached random-weight model of a real shape: 1b, 3b, 7b, 8x7b (llama), "
                  "qwen3-1.7b, gemma3-1b, phi3-mini, llama3.2-1b");
  sub->add_option("--type", o->type,
                  "type of the synthetic model: any hearth quantize type (f16, q8_0, q4_0, q4_k_m, q3_k_m, ...), made "
                  "by the same recipe")
      ->capture_default_str();
  sub->add_option("-p,--n-prompt", o->params.n_prompt, "prompt tokens (prefill)")->capture_default_str();
  sub->add_option("-n,--n-gen", o->params.n_gen, "generated tokens (decode)")->capture_default_str();
  sub->add_option("-d,--depth", o->params.depth,
                  "context filled before decode, at most -p (0: from an empty context, as llama-bench's tg)")
      ->capture_default_str();
  sub->add_option("-r,--reps", o->params.reps, "repetitions")->capture_default_str();
  add_threads_option(sub, o->params.n_threads);
  add_kv_options(sub, o->kv, /*with_limit=*/false);
  auto* draft = sub->add_option("--draft", o->draft,
                                "also decode with speculative drafts from this model (same vocabulary): speed-up and "
                                "acceptance");
  sub->add_option("--draft-type", o->draft_type, "with --synthetic: the same preset of this type as the draft")
      ->excludes(draft);
  sub->add_flag("--draft-ngram", o->params.draft_ngram, "also decode with prompt-lookup drafts");
  sub->add_option("--draft-max", o->params.draft_max, "most guesses per pass")->capture_default_str();
  sub->add_option("--input", o->onnx.inputs, "MODEL.onnx: NAME=FILE.npy for an input (others are drawn from their declared shapes)");
  sub->add_option("--shape", o->onnx.shapes, "MODEL.onnx: NAME=1x3x640x640, the shape of a drawn input with dynamic dims");
  sub->add_flag("--profile", o->onnx.profile, "MODEL.onnx: then time every node (per op type and the slowest nodes)");
  sub->add_option("--runs", o->onnx.reps, "MODEL.onnx: timed inferences per thread count")->capture_default_str();
  sub->add_flag("--json", o->json, "print one JSON object");
  sub->add_flag("--no-bandwidth", o->no_bandwidth, "skip the memory bandwidth measurement");
  sub->callback([o] {
    Status s = run(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(30, setup);

}  // namespace
}  // namespace hearth::cli
