// The options that several commands share, defined once so that each is named, documented and
// validated the same way everywhere: the model argument with --allow-unsigned, -t/--threads,
// -c/--ctx-size, the KV cache's --kv-type/--cache-type-k/--cache-type-v/--kv-limit, and
// --lora FILE[:SCALE].
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/model/context.h"
#include "hearth/model/lora_adapter.h"
#include "hearth/model/model.h"
#include "hearth/server/server.h"
#include "hearth/tokenizer/tokenizer.h"

namespace hearth::cli {

// MODEL (a GGUF file or a store reference; default $HEARTH_MODEL, then the config) and
// --allow-unsigned (never excuses tampering or rollback).
struct ModelOptions {
  std::string model;  // the positional MODEL, or -m/--model
  bool allow_unsigned = false;
  int n_gpu_layers = 0;  // -ngl: accepted and ignored (CPU only)
};
void add_model_options(CLI::App* sub, ModelOptions& o, const std::string& model_help = "");

// -t,--threads (0: physical cores; a command whose 0 means something else says so in `help`).
void add_threads_option(CLI::App* sub, int& threads, const std::string& help = "threads (default: physical cores)");

// -c,--ctx-size (also --ctx), in tokens; `help` says what the window is for this command.
CLI::Option* add_ctx_option(CLI::App* sub, int64_t& ctx, const std::string& help);

// --kv-type f16|f32|q8_0|q4_0 (K and V), --cache-type-k / --cache-type-v (llama.cpp's
// spellings; each overrides --kv-type for its half), checked while parsing, and, when
// `with_limit`, --kv-limit MiB.
struct KvOptions {
  std::string type = "f16";
  std::string type_k, type_v;  // empty: `type`
  uint64_t limit_mib = 0;      // 0: 75% of available memory
};
void add_kv_options(CLI::App* sub, KvOptions& o, bool with_limit = true);
Result<kernels::KvType> parse_kv_type(const std::string& name);
// The K and V types the options ask for.
Result<kernels::KvTypes> parse_kv_types(const KvOptions& o);

// --lora ADAPTER[:SCALE], repeatable: LoRA adapters (GGUF, as `hearth finetune` writes them) and
// their scales (default 1). ADAPTER is a file or a store reference (NAME:TAG, NAME@sha256:...),
// which is verified against the trust policy like a model. Parsed strictly: a scale that is not
// a finite number is an error naming it. An ADAPTER that contains ':' is taken whole when it
// names an existing file or a store reference ("acme/ft:v1" is the tag v1 with scale 1).
struct LoraSpec {
  std::string path;  // a file or a store reference
  float scale = 1.0f;
};
void add_lora_option(CLI::App* sub, std::vector<std::string>& specs, const std::string& help = "");
Result<LoraSpec> parse_lora_spec(const std::string& spec);
Result<std::vector<LoraSpec>> parse_lora_specs(const std::vector<std::string>& specs);
// Loads every adapter for `base` (errors name the file or reference and the tensor). A store
// reference is verified (refused when unsigned unless `allow_unsigned`) and parsed from the
// mapping that was hashed; each store load is written to the audit log.
Result<std::vector<model::LoraUse>> load_lora_adapters(const std::vector<LoraSpec>& specs, const model::Model& base,
                                                       bool allow_unsigned = false);
// A model loaded for generation on one sequence (run, chat): the model (verified as `arg` says),
// its tokenizer, and a context of `n_ctx` positions with the --lora adapters set.
struct GenerationSetup {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::unique_ptr<model::Context> ctx;
};
struct ResolvedModelArg;
Result<GenerationSetup> load_for_generation(const ResolvedModelArg& arg, const std::vector<std::string>& lora,
                                            bool allow_unsigned, int64_t n_ctx, int threads, const KvOptions& kv);

// What the server loads for one --lora: a local path as given, or a store reference verified
// now, with the mapping that verification hashed and the reference to list it under.
Result<server::ServerConfig::Lora> resolve_server_lora(const LoraSpec& spec, bool allow_unsigned);

}  // namespace hearth::cli
