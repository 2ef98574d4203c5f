// SamplerConfig: every knob of the token sampler, with the defaults of `hearth run`.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::sampling {

// Seed value meaning "pick a random seed from std::random_device" (the sampler reports the seed
// it actually used, so such a run can still be replayed).
inline constexpr uint32_t kRandomSeed = 0xFFFFFFFFu;

struct SamplerConfig {
  float temperature = 0.8f;     // <= 0: greedy (argmax, lowest id on ties)
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // >= 1: off; must be > 0
  float min_p = 0.05f;          // <= 0: off; must be <= 1
  float repeat_penalty = 1.0f;  // 1: off; must be > 0
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t penalty_window = 64;  // the last N accepted tokens are penalized; 0: off
  uint32_t seed = kRandomSeed;
  size_t min_keep = 1;                  // top-k/top-p/min-p never keep fewer than this (>= 1)
  std::map<int32_t, float> logit_bias;  // id -> added to the logit; -inf bans the token
  std::vector<int32_t> eog_tokens;      // ids that end generation (EOS, EOT, ...)
};

// Checks ranges and, with n_vocab, that every id in logit_bias and eog_tokens is in
// [0, n_vocab). Errors name the field and the bad value.
Status validate(const SamplerConfig& config, int32_t n_vocab);

}  // namespace hearth::sampling
