#include "common_options.h"

#include <charconv>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <tuple>

#include "hearth/store/reference.h"
#include "hearth/trust/model_resolver.h"
#include "model_arg.h"

namespace hearth::cli {

void add_model_options(CLI::App* sub, ModelOptions& o, const std::string& model_help) {
  sub->add_option("model", o.model,
                  model_help.empty()
                      ? "GGUF file or store reference (default: $HEARTH_MODEL, then default_model in the config)"
                      : model_help);
  sub->add_option("-m,--model", o.model, "the model, as a flag (llama.cpp's spelling)");
  // llama.cpp's -ngl (rewritten to --n-gpu-layers by main): accepted, with a note.
  sub->add_option("--n-gpu-layers,--gpu-layers", o.n_gpu_layers, "accepted for llama.cpp compatibility (CPU only)")
      ->each([](const std::string&) {
        std::fprintf(stderr, "note: -ngl/--n-gpu-layers is ignored: hearth runs models on the CPU\n");
      });
  sub->add_flag("--allow-unsigned", o.allow_unsigned,
                "load an unsigned store model (local experiments; never excuses tampering)");
}

void add_threads_option(CLI::App* sub, int& threads, const std::string& help) {
  sub->add_option("-t,--threads", threads, help)->check(CLI::NonNegativeNumber);
}

CLI::Option* add_ctx_option(CLI::App* sub, int64_t& ctx, const std::string& help) {
  return sub->add_option("-c,--ctx-size,--ctx", ctx, help)->check(CLI::NonNegativeNumber);
}

void add_kv_options(CLI::App* sub, KvOptions& o, bool with_limit) {
  const std::vector<std::string> types = {"f16", "f32", "q8_0", "q4_0"};
  sub->add_option("--kv-type", o.type, "KV cache type of K and V: f16, f32, q8_0 or q4_0")
      ->capture_default_str()
      ->check(CLI::IsMember(types));
  sub->add_option("--cache-type-k", o.type_k, "KV cache type of K (overrides --kv-type): f16, f32, q8_0 or q4_0")
      ->check(CLI::IsMember(types));
  sub->add_option("--cache-type-v", o.type_v, "KV cache type of V (overrides --kv-type): f16, f32, q8_0 or q4_0")
      ->check(CLI::IsMember(types));
  if (with_limit) {
    sub->add_option("--kv-limit", o.limit_mib, "KV cache memory limit in MiB (default: 75% of free memory)");
  }
}

Result<kernels::KvType> parse_kv_type(const std::string& name) {
  if (auto t = kernels::parse_kv_type_name(name)) return *t;
  return make_error(ErrorCode::kInvalidArgument, "--kv-type must be f16, f32, q8_0 or q4_0, not '{}'", name);
}

Result<kernels::KvTypes> parse_kv_types(const KvOptions& o) {
  HEARTH_ASSIGN_OR_RETURN(kernels::KvType both, parse_kv_type(o.type));
  kernels::KvTypes t(both);
  for (auto [name, flag, out] : {std::tuple{&o.type_k, "--cache-type-k", &t.k}, std::tuple{&o.type_v, "--cache-type-v", &t.v}}) {
    if (name->empty()) continue;
    auto parsed = kernels::parse_kv_type_name(*name);
    if (!parsed) {
      return make_error(ErrorCode::kInvalidArgument, "{} must be f16, f32, q8_0 or q4_0, not '{}'", flag, *name);
    }
    *out = *parsed;
  }
  return t;
}

void add_lora_option(CLI::App* sub, std::vector<std::string>& specs, const std::string& help) {
  sub->add_option("--lora", specs,
                  help.empty() ? "LoRA adapter FILE[:SCALE] (GGUF, e.g. from hearth finetune; scale default 1; "
                                 "repeatable)"
                               : help)
      ->type_name("FILE[:SCALE]")
      ->allow_extra_args(false);  // one value per --lora, so a positional after it stays positional
}

namespace {

// "acme/ft:v1" or "acme/ft@sha256:...": a store reference, not FILE:SCALE.
bool is_store_reference(const std::string& spec) {
  return !trust::looks_like_local_path(spec) && store::parse_reference(spec).ok();
}

}  // namespace

Result<LoraSpec> parse_lora_spec(const std::string& spec) {
  if (spec.empty()) return make_error(ErrorCode::kInvalidArgument, "--lora needs a file name");
  const size_t colon = spec.rfind(':');
  std::error_code ec;
  if (colon == std::string::npos || std::filesystem::is_regular_file(spec, ec)) return LoraSpec{spec, 1.0f};
  const std::string path = spec.substr(0, colon), scale_text = spec.substr(colon + 1);
  if (path.empty()) return make_error(ErrorCode::kInvalidArgument, "--lora '{}': the file name is empty", spec);
  if (path.ends_with("@sha256")) return LoraSpec{spec, 1.0f};  // a digest reference, no scale
  float scale = 0.0f;
  const char* end = scale_text.data() + scale_text.size();
  auto [ptr, err] = std::from_chars(scale_text.data(), end, scale);
  if (scale_text.empty() || err != std::errc() || ptr != end || !std::isfinite(scale)) {
    if (is_store_reference(spec)) return LoraSpec{spec, 1.0f};
    return make_error(ErrorCode::kInvalidArgument, "--lora '{}': scale '{}' is not a finite number", spec, scale_text);
  }
  return LoraSpec{path, scale};
}

Result<std::vector<LoraSpec>> parse_lora_specs(const std::vector<std::string>& specs) {
  std::vector<LoraSpec> out;
  for (const std::string& s : specs) {
    HEARTH_ASSIGN_OR_RETURN(LoraSpec l, parse_lora_spec(s));
    out.push_back(std::move(l));
  }
  return out;
}

Result<std::vector<model::LoraUse>> load_lora_adapters(const std::vector<LoraSpec>& specs, const model::Model& base,
                                                       bool allow_unsigned) {
  std::vector<model::LoraUse> out;
  for (const LoraSpec& s : specs) {
    if (trust::looks_like_local_path(s.path)) {
      HEARTH_ASSIGN_OR_RETURN(auto adapter, model::LoraAdapter::load(s.path, base));
      out.push_back({std::move(adapter), s.scale});
      continue;
    }
    // A store adapter is parsed from the mapping that verification hashed, under its reference.
    HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, resolve_model_arg(s.path, "lora", allow_unsigned));
    auto loaded = [&]() -> Result<std::shared_ptr<const model::LoraAdapter>> {
      HEARTH_ASSIGN_OR_RETURN(auto map, map_model(arg));
      return model::LoraAdapter::parse(map->bytes(), arg.reference, base);
    }();
    record_load(arg, loaded.status());
    if (!loaded.ok()) return loaded.status();
    out.push_back({std::move(*loaded), s.scale});
  }
  return out;
}

Result<server::ServerConfig::Lora> resolve_server_lora(const LoraSpec& spec, bool allow_unsigned) {
  server::ServerConfig::Lora out;
  out.path = spec.path;
  out.scale = spec.scale;
  if (trust::looks_like_local_path(spec.path)) return out;
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, resolve_model_arg(spec.path, "lora", allow_unsigned));
  auto map = map_model(arg);
  record_load(arg, map.status());
  if (!map.ok()) return map.status();
  out.path = arg.path;
  out.mapping = std::move(*map);
  out.name = arg.reference;
  return out;
}

Result<GenerationSetup> load_for_generation(const ResolvedModelArg& arg, const std::vector<std::string>& lora,
                                            bool allow_unsigned, int64_t n_ctx, int threads, const KvOptions& kv) {
  HEARTH_ASSIGN_OR_RETURN(const std::vector<LoraSpec> specs, parse_lora_specs(lora));
  GenerationSetup g;
  HEARTH_ASSIGN_OR_RETURN(g.model, load_model(arg, {.n_threads = threads}));
  if (!g.model->hparams().causal) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{} is an embedding model ({}): it does not generate text; serve it (hearth serve) and ask "
                      "/v1/embeddings or /api/embed",
                      arg.display, g.model->hparams().arch);
  }
  HEARTH_ASSIGN_OR_RETURN(std::vector<model::LoraUse> adapters, load_lora_adapters(specs, *g.model, allow_unsigned));
  HEARTH_ASSIGN_OR_RETURN(g.tok, tokenizer::Tokenizer::from_gguf(g.model->gguf()));
  model::ContextParams cp;
  cp.n_ctx = n_ctx;
  cp.n_threads = threads;
  HEARTH_ASSIGN_OR_RETURN(cp.kv_type, parse_kv_types(kv));
  cp.kv_limit_bytes = kv.limit_mib << 20;
  HEARTH_ASSIGN_OR_RETURN(g.ctx, model::Context::create(*g.model, cp));
  HEARTH_TRY(g.ctx->set_adapters(0, std::move(adapters)));
  return g;
}

}  // namespace hearth::cli
