// `hearth imatrix MODEL -f TEXT -o FILE`: collects an importance matrix (the ecosystem's GGUF
// imatrix format) for `hearth quantize --imatrix`.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include "command.h"
#include "common_options.h"
#include "hearth/core/atomic_file.h"
#include "hearth/core/process_stats.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/quantize/imatrix_collector.h"
#include "hearth/tokenizer/tokenizer.h"
#include "model_arg.h"

namespace hearth::cli {
namespace {

struct ImatrixOptions {
  ModelOptions m;
  std::string text_file, out = "imatrix.gguf";
  int64_t ctx = 512;
  int64_t chunks = 0;
  int threads = 0;
  bool process_output = false;
};

Status run(const ImatrixOptions& o) {
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, resolve_model_arg(o.m.model, "imatrix", o.m.allow_unsigned));
  HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(o.text_file, uint64_t{1} << 31));
  HEARTH_ASSIGN_OR_RETURN(auto model, load_model(arg, model::LoadOptions{.n_threads = o.threads}));
  HEARTH_ASSIGN_OR_RETURN(auto tok, tokenizer::Tokenizer::from_gguf(model->gguf()));
  model::ContextParams cp;
  cp.n_ctx = o.ctx;
  cp.n_batch = o.ctx;
  cp.n_threads = o.threads;
  HEARTH_ASSIGN_OR_RETURN(auto ctx, model::Context::create(*model, cp));
  std::vector<int32_t> ids = tok->encode(text, /*add_special=*/true, /*parse_special=*/false);
  quantize::ImatrixParams ip;
  ip.n_ctx = o.ctx;
  ip.max_chunks = o.chunks;
  ip.bos = tok->bos();
  ip.process_output = o.process_output;
  ip.dataset = std::filesystem::path(o.text_file).filename().string();
  eval::PerplexityCallbacks cb;
  const double t0 = now_seconds();
  cb.progress = [&](int64_t done, int64_t total, double running) {
    const double el = now_seconds() - t0;
    std::fprintf(stderr, "\r[%lld/%lld] ppl %.4f  %.0f tok/s  eta %.0f s  ", static_cast<long long>(done),
                 static_cast<long long>(total), running, done * o.ctx / std::max(el, 1e-9),
                 el / done * static_cast<double>(total - done));
    std::fflush(stderr);
  };
  HEARTH_ASSIGN_OR_RETURN(quantize::ImatrixRun r, quantize::compute_imatrix(*ctx, ids, ip, cb));
  std::fprintf(stderr, "\n");
  HEARTH_TRY(r.imatrix.write(o.out));
  std::printf("%s: %zu entries from %u windows of %u tokens (PPL %.4f)\n", o.out.c_str(), r.imatrix.entries().size(),
              r.imatrix.chunk_count, r.imatrix.chunk_size, r.perplexity.ppl);
  return ok_status();
}

void setup(CLI::App& app) {
  auto o = std::make_shared<ImatrixOptions>();
  auto* sub = app.add_subcommand("imatrix", "collect an importance matrix for quantization");
  add_model_options(sub, o->m);
  sub->add_option("-f,--file", o->text_file, "calibration text")->required();
  sub->add_option("-o,--output", o->out, "output imatrix GGUF")->capture_default_str();
  add_ctx_option(sub, o->ctx, "window size in tokens")->capture_default_str();
  sub->add_option("--chunks", o->chunks, "stop after N windows (0: all)");
  add_threads_option(sub, o->threads);
  sub->add_flag("--process-output", o->process_output, "also collect output.weight");
  sub->callback([o] {
    Status s = run(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(46, setup);

}  // namespace
}  // namespace hearth::cli
