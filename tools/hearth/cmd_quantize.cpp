// `hearth quantize IN.gguf OUT.gguf TYPE`: quantizes a model by the ecosystem's recipes and
// writes OUT.gguf plus its provenance statement OUT.gguf.provenance.json.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>

#include "command.h"
#include "hearth/quantize/provenance.h"
#include "hearth/quantize/quantize_model.h"

namespace hearth::cli {
namespace {

struct QuantizeOptions {
  std::string in, out, type;
  std::string imatrix;
  int threads = 0;
  bool allow_requantize = false;
  bool pure = false;
  bool dry_run = false;
  bool no_provenance = false;
  std::string output_tensor_type, token_embedding_type;
};

Result<TensorType> parse_type_flag(const std::string& flag, const std::string& value) {
  auto t = parse_tensor_type(value);
  if (!t) return make_error(ErrorCode::kInvalidArgument, flag, ": unknown tensor type '", value, "' (e.g. q8_0, q6_k, f16)");
  return *t;
}

std::string types_list() {
  std::string s;
  for (quantize::FileType t : quantize::all_file_types()) {
    if (!s.empty()) s += ", ";
    s += std::string(quantize::file_type_name(t));
  }
  return s;
}

void print_plan(const std::vector<quantize::TensorPlan>& plans) {
  for (const auto& p : plans) {
    std::string shape;
    for (uint64_t d : p.ne) shape += (shape.empty() ? "" : " x ") + std::to_string(d);
    std::printf("%-36s %-18s %6s -> %-6s%s%s\n", p.name.c_str(), shape.c_str(), std::string(type_name(p.from)).c_str(),
                std::string(type_name(p.to)).c_str(), p.used_imatrix ? "  (imatrix)" : "",
                p.fallback ? ("  fallback: " + p.note).c_str() : "");
  }
}

Status run(const QuantizeOptions& o) {
  auto ftype = quantize::parse_file_type(o.type);
  if (!ftype) {
    return make_error(ErrorCode::kInvalidArgument, "unknown quantization type '", o.type, "'; choose one of ", types_list());
  }
  quantize::QuantizeParams qp;
  qp.recipe.ftype = *ftype;
  qp.recipe.pure = o.pure;
  qp.n_threads = o.threads;
  qp.allow_requantize = o.allow_requantize;
  qp.tool_version = std::string("hearth ") + HEARTH_VERSION;
  if (!o.output_tensor_type.empty()) {
    HEARTH_ASSIGN_OR_RETURN(qp.recipe.output_type, parse_type_flag("--output-tensor-type", o.output_tensor_type));
  }
  if (!o.token_embedding_type.empty()) {
    HEARTH_ASSIGN_OR_RETURN(qp.recipe.token_embedding_type, parse_type_flag("--token-embedding-type", o.token_embedding_type));
  }
  quantize::Imatrix imatrix;
  if (!o.imatrix.empty()) {
    HEARTH_ASSIGN_OR_RETURN(imatrix, quantize::Imatrix::read(o.imatrix));
    qp.imatrix = &imatrix;
    qp.imatrix_name = std::filesystem::path(o.imatrix).filename().string();
    std::fprintf(stderr, "imatrix: %zu entries from %u chunks of %u tokens\n", imatrix.entries().size(),
                 imatrix.chunk_count, imatrix.chunk_size);
  }
  HEARTH_ASSIGN_OR_RETURN(auto in, gguf::GgufModelFile::open(o.in));
  if (o.dry_run) {
    HEARTH_ASSIGN_OR_RETURN(auto plans, quantize::plan_quantization(in->file(), qp));
    print_plan(plans);
    return ok_status();
  }
  const int64_t started = static_cast<int64_t>(std::time(nullptr));
  auto progress = [](const quantize::QuantizeProgress& p) {
    const double mb = static_cast<double>(p.bytes_in_done) / 1e6;
    const int width = 30;
    const int filled = p.bytes_in_total ? static_cast<int>(width * p.bytes_in_done / p.bytes_in_total) : width;
    std::fprintf(stderr, "\r[%.*s%*s] tensor %zu/%zu  %.1f MB  %.1f MB/s  %-36.36s", filled,
                 "##############################", width - filled, "", p.index, p.count, mb,
                 mb / std::max(p.seconds, 1e-6), std::string(p.name).c_str());
    std::fflush(stderr);
  };
  HEARTH_ASSIGN_OR_RETURN(quantize::QuantizeReport r, quantize::quantize_model(o.in, o.out, qp, progress));
  std::fprintf(stderr, "\n");
  for (const auto& t : r.tensors) {
    if (t.fallback) std::fprintf(stderr, "fallback: %s: %s\n", t.name.c_str(), t.note.c_str());
  }
  uint64_t n_weights = 0;
  for (const auto& t : r.tensors) {
    uint64_t n = 1;
    for (uint64_t d : t.ne) n *= d;
    n_weights += n;
  }
  std::printf("%s: %s, %zu tensors, %.2f MB -> %.2f MB (%.2f bits per weight) in %.2f s", o.out.c_str(),
              std::string(quantize::file_type_name(*ftype)).c_str(), r.tensors.size(), r.bytes_in / 1e6,
              r.bytes_out / 1e6, n_weights ? 8.0 * static_cast<double>(r.bytes_out) / static_cast<double>(n_weights) : 0.0,
              r.seconds);
  if (r.n_fallback > 0) std::printf(", %d fallback(s)", r.n_fallback);
  std::printf("\n");
  if (!o.no_provenance) {
    quantize::QuantizeProvenance pv;
    pv.recipe = std::string(quantize::file_type_name(*ftype));
    pv.file_type = static_cast<uint32_t>(*ftype);
    pv.pure = o.pure;
    pv.allow_requantize = o.allow_requantize;
    pv.output_tensor_type = o.output_tensor_type;
    pv.token_embedding_type = o.token_embedding_type;
    pv.hearth_version = HEARTH_VERSION;
    pv.started_unix = started;
    pv.finished_unix = static_cast<int64_t>(std::time(nullptr));
    const std::string path = quantize::provenance_path_for(o.out);
    HEARTH_TRY(quantize::write_provenance(path, o.out, o.in, o.imatrix, pv));
    std::printf("provenance: %s\n", path.c_str());
  }
  return ok_status();
}

void setup(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  auto* sub = app.add_subcommand("quantize", "quantize a GGUF model (Q8_0, Q4_K_M, ...) with the ecosystem's recipes");
  sub->add_option("input", o->in, "F32, F16 or BF16 GGUF model")->required();
  sub->add_option("output", o->out, "output GGUF file (never the input)")->required();
  sub->add_option("type", o->type, "one of " + types_list())->required();
  sub->add_option("--imatrix", o->imatrix, "importance matrix (GGUF, from `hearth imatrix`)");
  sub->add_option("-t,--threads", o->threads, "threads (default: all)");
  sub->add_flag("--allow-requantize", o->allow_requantize, "accept already-quantized input (loses quality)");
  sub->add_flag("--pure", o->pure, "every quantized tensor gets the base type (no mixture)");
  sub->add_option("--output-tensor-type", o->output_tensor_type, "type for output.weight");
  sub->add_option("--token-embedding-type", o->token_embedding_type, "type for token_embd.weight");
  sub->add_flag("--dry-run", o->dry_run, "print each tensor's type and write nothing");
  sub->add_flag("--no-provenance", o->no_provenance, "do not write OUTPUT.provenance.json");
  sub->callback([o] {
    Status s = run(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(45, setup);

}  // namespace
}  // namespace hearth::cli
