#include "hearth/sampling/sampler_config.h"

#include <cmath>
#include <string>

namespace hearth::sampling {
namespace {

std::string num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string s = std::to_string(v);
  // Trim trailing zeros of the fixed notation: "0.950000" -> "0.95".
  if (s.find('.') != std::string::npos) {
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

Status bad(std::string_view field, double value, std::string_view want) {
  return make_error(ErrorCode::kInvalidArgument, "sampler config: {} = {} is invalid ({})", field, num(value), want);
}

}  // namespace

Status validate(const SamplerConfig& config, int32_t n_vocab) {
  if (n_vocab <= 0) {
    return make_error(ErrorCode::kInvalidArgument, "sampler config: n_vocab = {} must be positive", n_vocab);
  }
  if (std::isnan(config.temperature) || std::isinf(config.temperature)) {
    return bad("temperature", config.temperature, "must be finite; <= 0 means greedy");
  }
  if (!(config.top_p > 0.0f) || std::isinf(config.top_p)) {
    return bad("top_p", config.top_p, "must be in (0, 1]; 1 disables it");
  }
  if (!(config.min_p >= 0.0f && config.min_p <= 1.0f)) {
    return bad("min_p", config.min_p, "must be in [0, 1]; 0 disables it");
  }
  if (!(config.repeat_penalty > 0.0f) || std::isinf(config.repeat_penalty)) {
    return bad("repeat_penalty", config.repeat_penalty, "must be finite and > 0; 1 disables it");
  }
  if (!std::isfinite(config.presence_penalty)) {
    return bad("presence_penalty", config.presence_penalty, "must be finite");
  }
  if (!std::isfinite(config.frequency_penalty)) {
    return bad("frequency_penalty", config.frequency_penalty, "must be finite");
  }
  if (config.penalty_window < 0) {
    return bad("penalty_window", config.penalty_window, "must be >= 0; 0 disables penalties");
  }
  if (config.min_keep < 1) {
    return bad("min_keep", static_cast<double>(config.min_keep), "must be >= 1");
  }
  for (const auto& [id, bias] : config.logit_bias) {
    if (id < 0 || id >= n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "sampler config: logit_bias token id {} is out of range [0, {})",
                        id, n_vocab);
    }
    if (std::isnan(bias) || (std::isinf(bias) && bias > 0)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "sampler config: logit_bias for token {} is {} (must be finite, or -inf to ban the token)", id,
                        num(bias));
    }
  }
  // Every token banned: nothing could ever be sampled, so this is the caller's error now rather
  // than a failure at the first step. (Ids are unique map keys, all checked in range above.)
  int64_t banned = 0;
  for (const auto& [id, bias] : config.logit_bias) banned += std::isinf(bias) ? 1 : 0;
  if (n_vocab > 0 && banned >= n_vocab) {
    return make_error(ErrorCode::kInvalidArgument,
                      "sampler config: logit_bias bans all {} tokens of the vocabulary; nothing could be generated",
                      n_vocab);
  }
  for (int32_t id : config.eog_tokens) {
    if (id < 0 || id >= n_vocab) {
      return make_error(ErrorCode::kInvalidArgument,
                        "sampler config: end-of-generation token id {} is out of range [0, {})", id, n_vocab);
    }
  }
  return ok_status();
}

}  // namespace hearth::sampling
