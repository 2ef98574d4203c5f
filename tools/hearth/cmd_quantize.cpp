// `hearth quantize IN.gguf OUT.gguf TYPE`: quantizes a model by the ecosystem's recipes and
// writes OUT.gguf plus its provenance statement OUT.gguf.provenance.json. With --sign-key the
// statement is signed (DSSE, sigstore bundle: OUT.gguf.provenance.sigstore.json); with
// --import REF the output goes into the store, and a signed statement travels with it as an
// attestation referrer (shown by `hearth inspect` and `hearth verify`).
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>

#include "command.h"
#include "common_options.h"
#include "hearth/core/atomic_file.h"
#include "hearth/quantize/provenance.h"
#include "hearth/quantize/quantize_model.h"
#include "hearth/store/model_import.h"
#include "hearth/store/store.h"
#include "hearth/trust/model_resolver.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/signing_key.h"
#include "hearth/trust/sigstore_bundle.h"
#include "model_arg.h"
#include "signed_import.h"

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
  std::string sign_key;         // private key PEM: sign the provenance statement
  std::string import_ref;       // name:tag: import the output into the store
  uint64_t import_version = 1;  // its org.hearth.version (what the signature claims)
  bool allow_unsigned = false;  // a store reference as input may be unsigned
};

Result<TensorType> parse_type_flag(const std::string& flag, const std::string& value) {
  auto t = parse_tensor_type(value);
  if (!t)
    return make_error(ErrorCode::kInvalidArgument, "{}: unknown tensor type '{}' (e.g. q8_0, q6_k, f16)", flag, value);
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
    return make_error(ErrorCode::kInvalidArgument, "unknown quantization type '{}'; choose one of {}", o.type,
                      types_list());
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
    HEARTH_ASSIGN_OR_RETURN(qp.recipe.token_embedding_type,
                            parse_type_flag("--token-embedding-type", o.token_embedding_type));
  }
  quantize::Imatrix imatrix;
  if (!o.imatrix.empty()) {
    HEARTH_ASSIGN_OR_RETURN(imatrix, quantize::Imatrix::read(o.imatrix));
    qp.imatrix = &imatrix;
    qp.imatrix_name = std::filesystem::path(o.imatrix).filename().string();
    std::fprintf(stderr, "imatrix: %zu entries from %u chunks of %u tokens\n", imatrix.entries().size(),
                 imatrix.chunk_count, imatrix.chunk_size);
  }
  // The key is loaded (and the reference checked) before the work, so a typo fails fast.
  HEARTH_ASSIGN_OR_RETURN(const std::optional<trust::PrivateKey> key,
                          load_signing_flags(o.sign_key, o.no_provenance, o.import_ref));
  // The input: a file, or a store reference verified against the trust policy (as for run).
  // A store model is read from the mapping that was hashed during verification, so a blob
  // swapped after that check is never what gets quantized.
  std::string in_name, in_weights_digest;
  std::unique_ptr<MappedGguf> verified;
  std::unique_ptr<gguf::GgufModelFile> local;
  const gguf::GgufFile* in = nullptr;
  if (!trust::looks_like_local_path(o.in)) {
    HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, resolve_model_arg(o.in, "quantize", o.allow_unsigned));
    in_name = arg.reference + "@" + arg.manifest_digest;
    in_weights_digest = arg.weights_digest;
    HEARTH_TRY(quantize::check_output_is_not_input(arg.path, o.out, "input's store blob"));
    HEARTH_ASSIGN_OR_RETURN(verified, open_gguf(arg));
    in = &verified->file;
  } else {
    HEARTH_TRY(quantize::check_output_is_not_input(o.in, o.out));
    HEARTH_ASSIGN_OR_RETURN(local, gguf::GgufModelFile::open(o.in));
    in = &local->file();
  }
  if (o.dry_run) {
    HEARTH_ASSIGN_OR_RETURN(auto plans, quantize::plan_quantization(*in, qp));
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
  HEARTH_ASSIGN_OR_RETURN(quantize::QuantizeReport r, quantize::quantize_gguf(*in, o.out, qp, progress));
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
              r.bytes_out / 1e6,
              n_weights ? 8.0 * static_cast<double>(r.bytes_out) / static_cast<double>(n_weights) : 0.0, r.seconds);
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
    pv.input.name = in_name;
    // A store input's digest is that of the verified bytes, not of whatever its path holds now.
    if (verified) pv.input.sha256 = in_weights_digest.substr(7);  // after "sha256:"
    const std::string path = quantize::provenance_path_for(o.out);
    HEARTH_TRY(quantize::write_provenance(path, o.out, o.in, o.imatrix, pv));
    std::printf("provenance: %s\n", path.c_str());
  }
  HEARTH_TRY(sign_and_import_output(o.out, key, o.import_ref, o.import_version));
  return ok_status();
}

void setup(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  auto* sub = app.add_subcommand("quantize", "quantize a GGUF model (Q8_0, Q4_K_M, ...) with the ecosystem's recipes");
  sub->add_option("input", o->in, "F32, F16 or BF16 GGUF model: a file or a store reference")->required();
  sub->add_option("output", o->out, "output GGUF file (never the input)")->required();
  sub->add_option("type", o->type, "one of " + types_list())->required();
  sub->add_option("--imatrix", o->imatrix, "importance matrix (GGUF, from `hearth imatrix`)");
  add_threads_option(sub, o->threads, "threads (default: all)");
  sub->add_flag("--allow-requantize", o->allow_requantize, "accept already-quantized input (loses quality)");
  sub->add_flag("--pure", o->pure, "every quantized tensor gets the base type (no mixture)");
  sub->add_option("--output-tensor-type", o->output_tensor_type, "type for output.weight");
  sub->add_option("--token-embedding-type", o->token_embedding_type, "type for token_embd.weight");
  sub->add_flag("--dry-run", o->dry_run, "print each tensor's type and write nothing");
  sub->add_flag("--no-provenance", o->no_provenance, "do not write OUTPUT.provenance.json");
  sub->add_option("--sign-key", o->sign_key,
                  "private key PEM (hearth keygen): sign the provenance into OUTPUT.provenance.sigstore.json");
  sub->add_flag("--allow-unsigned", o->allow_unsigned,
                "accept an unsigned store model as input (never excuses tampering)");
  sub->add_option("--import", o->import_ref,
                  "import OUTPUT into the store as name:tag (with --sign-key: signed, provenance attached)");
  sub->add_option("--import-version", o->import_version, "version recorded (and signed) for --import")
      ->capture_default_str();
  sub->callback([o] {
    Status s = run(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(45, setup);

}  // namespace
}  // namespace hearth::cli
