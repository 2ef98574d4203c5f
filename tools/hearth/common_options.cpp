#include "common_options.h"

namespace hearth::cli {

void add_model_options(CLI::App* sub, ModelOptions& o, const std::string& model_help) {
  sub->add_option("model", o.model,
                  model_help.empty()
                      ? "GGUF file or store reference (default: $HEARTH_MODEL, then default_model in the config)"
                      : model_help);
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
  sub->add_option("--kv-type", o.type, "KV cache type: f16 or f32")
      ->capture_default_str()
      ->check(CLI::IsMember({"f16", "f32"}));
  if (with_limit) {
    sub->add_option("--kv-limit", o.limit_mib, "KV cache memory limit in MiB (default: 75% of free memory)");
  }
}

Result<kernels::KvType> parse_kv_type(const std::string& name) {
  if (name == "f16") return kernels::KvType::kF16;
  if (name == "f32") return kernels::KvType::kF32;
  return make_error(ErrorCode::kInvalidArgument, "--kv-type must be f16 or f32, not '{}'", name);
}

}  // namespace hearth::cli
