#include "hearth/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <random>
#include <string>

#include "hearth/sampling/stages.h"

namespace hearth::sampling {
namespace {

Status check_logits(std::span<const float> logits, int32_t n_vocab) {
  if (logits.size() != static_cast<size_t>(n_vocab)) {
    return make_error(ErrorCode::kInvalidArgument, "sampler: got {} logits, expected n_vocab = {}", logits.size(),
                      n_vocab);
  }
  // !(v < +inf) is true exactly for NaN and +inf; the branch-free scan vectorizes, and the
  // slow search for the culprit runs only on failure.
  constexpr float kInf = std::numeric_limits<float>::infinity();
  bool bad = false;
  for (float v : logits) bad |= !(v < kInf);
  if (!bad) return ok_status();
  for (size_t i = 0; i < logits.size(); ++i) {
    float v = logits[i];
    if (!(v < kInf)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "sampler: logit of token {} is {} (the model produced a non-finite value)", i,
                        std::isnan(v) ? "nan" : "+inf");
    }
  }
  return ok_status();
}

Status nothing_to_sample() {
  return make_error(
      ErrorCode::kFailedPrecondition,
      "sampler: every token is banned or masked; nothing to sample (check logit_bias and the token mask)");
}

}  // namespace

Result<Sampler> Sampler::create(const SamplerConfig& config, int32_t n_vocab) {
  HEARTH_TRY(validate(config, n_vocab));
  uint32_t seed = config.seed;
  if (seed == kRandomSeed) {
    // std::random_device reports an unusable entropy source by throwing; it stops here.
    try {
      std::random_device rd;
      // kRandomSeed itself is reserved; redraw so that seed() always replays the run.
      do {
        seed = rd();
      } while (seed == kRandomSeed);
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kUnavailable, "sampler: no random seed available ({}); pass an explicit seed",
                        e.what());
    }
  }
  return Sampler(config, n_vocab, seed);
}

Sampler::Sampler(const SamplerConfig& config, int32_t n_vocab, uint32_t seed)
    : config_(config), n_vocab_(n_vocab), seed_(seed), rng_(seed) {
  history_.reserve(static_cast<size_t>(config.penalty_window));
}

Result<int32_t> Sampler::sample(std::span<const float> logits) {
  HEARTH_TRY(check_logits(logits, n_vocab_));
  candidates_.assign(logits);

  apply_logit_bias(candidates_, config_.logit_bias);
  if (mask_) {
    Status s = mask_(std::span<TokenCandidate>(candidates_.items));
    if (!s.ok()) return s.with_context("sampler: token mask");
  }
  if (!history_.empty()) {
    std::vector<TokenCount> counts = count_tokens(history_);
    apply_penalties(candidates_, counts,
                    PenaltyParams{config_.repeat_penalty, config_.presence_penalty, config_.frequency_penalty});
  }

  std::optional<int32_t> token;
  if (config_.temperature <= 0.0f) {
    token = select_greedy(candidates_);
  } else {
    keep_top_k(candidates_, config_.top_k, config_.min_keep);
    keep_top_p(candidates_, config_.top_p, config_.min_keep);
    keep_min_p(candidates_, config_.min_p, config_.min_keep);
    apply_temperature(candidates_, config_.temperature);
    token = draw(candidates_, rng_);
  }
  if (!token) return nothing_to_sample();
  return *token;
}

Status Sampler::accept(int32_t token) {
  if (token < 0 || token >= n_vocab_) {
    return make_error(ErrorCode::kInvalidArgument, "sampler: accepted token id {} is out of range [0, {})", token,
                      n_vocab_);
  }
  const size_t window = static_cast<size_t>(config_.penalty_window);
  if (window == 0) return ok_status();
  if (history_.size() == window) history_.erase(history_.begin());
  history_.push_back(token);
  return ok_status();
}

bool Sampler::is_eog(int32_t token) const {
  return std::find(config_.eog_tokens.begin(), config_.eog_tokens.end(), token) != config_.eog_tokens.end();
}

}  // namespace hearth::sampling
