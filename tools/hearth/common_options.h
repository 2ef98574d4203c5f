// The options that several commands share, defined once so that each is named, documented and
// validated the same way everywhere: the model argument with --allow-unsigned, -t/--threads,
// -c/--ctx-size, and the KV cache's --kv-type/--kv-limit.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "hearth/core/status.h"
#include "hearth/kernels/kernel_table.h"

namespace hearth::cli {

// MODEL (a GGUF file or a store reference; default $HEARTH_MODEL, then the config) and
// --allow-unsigned (never excuses tampering or rollback).
struct ModelOptions {
  std::string model;
  bool allow_unsigned = false;
};
void add_model_options(CLI::App* sub, ModelOptions& o, const std::string& model_help = "");

// -t,--threads (0: physical cores; a command whose 0 means something else says so in `help`).
void add_threads_option(CLI::App* sub, int& threads, const std::string& help = "threads (default: physical cores)");

// -c,--ctx-size (also --ctx), in tokens; `help` says what the window is for this command.
CLI::Option* add_ctx_option(CLI::App* sub, int64_t& ctx, const std::string& help);

// --kv-type f16|f32 (checked while parsing) and, when `with_limit`, --kv-limit MiB.
struct KvOptions {
  std::string type = "f16";
  uint64_t limit_mib = 0;  // 0: 75% of available memory
};
void add_kv_options(CLI::App* sub, KvOptions& o, bool with_limit = true);
Result<kernels::KvType> parse_kv_type(const std::string& name);

}  // namespace hearth::cli
