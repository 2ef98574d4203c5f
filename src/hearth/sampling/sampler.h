// Sampler: turns one step of model logits into the next token id.
//
// The chain, in order (llama.cpp's default order, common/sampling.cpp, without the stages hearth
// does not have; logit bias and the mask come first as in llama.cpp):
//   1. logit bias        config.logit_bias (-inf bans)
//   2. token mask        the optional TokenMask hook (constrained decoding: grammar, JSON schema)
//   3. penalties         repeat / presence / frequency over the last penalty_window accepted tokens
//   then, if temperature <= 0:  greedy argmax (lowest id on exact ties), done;
//   otherwise:
//   4. top-k   5. top-p   6. min-p   7. temperature   8. draw from softmax with the seeded Rng
// Top-p and min-p therefore see the probabilities before temperature, as in llama.cpp.
//
// The caller feeds back every token it commits (prompt tokens too, if they should be penalized)
// with accept(); the sampler keeps only the window it needs. Not thread-safe: one per sequence.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/sampling/candidates.h"
#include "hearth/sampling/rng.h"
#include "hearth/sampling/sampler_config.h"

namespace hearth::sampling {

// Hook for constrained decoding: receives the full vocabulary (id, logit) after logit bias and
// sets the logit of every disallowed id to -inf. It must not add, remove or reorder candidates.
// A non-ok Status aborts the step and is returned by sample().
using TokenMask = std::function<Status(std::span<TokenCandidate> candidates)>;

class Sampler {
 public:
  // Validates config against n_vocab. A seed of kRandomSeed draws one from std::random_device.
  static Result<Sampler> create(const SamplerConfig& config, int32_t n_vocab);

  // Samples the next token from logits[n_vocab] (not modified). Fails if the size is wrong, a
  // logit is NaN or +inf, the mask fails, or every token is banned/masked.
  Result<int32_t> sample(std::span<const float> logits);

  // Records a committed token for the penalty window. Fails if token is outside [0, n_vocab).
  Status accept(int32_t token);

  // Forgets the token history (a new conversation). The Rng stream continues.
  void reset_history() { history_.clear(); }

  // Installs (or, with an empty function, removes) the constrained-decoding mask.
  void set_token_mask(TokenMask mask) { mask_ = std::move(mask); }

  bool is_eog(int32_t token) const;

  // The seed actually used (the random one if config.seed was kRandomSeed).
  uint32_t seed() const { return seed_; }
  const SamplerConfig& config() const { return config_; }
  int32_t n_vocab() const { return n_vocab_; }
  // The last penalty_window accepted tokens, oldest first.
  std::span<const int32_t> history() const { return history_; }
  // The candidates as the last sample() left them (after the last stage that ran).
  const Candidates& last_candidates() const { return candidates_; }

 private:
  Sampler(const SamplerConfig& config, int32_t n_vocab, uint32_t seed);

  SamplerConfig config_;
  int32_t n_vocab_ = 0;
  uint32_t seed_ = 0;
  Rng rng_;
  TokenMask mask_;
  std::vector<int32_t> history_;  // at most penalty_window entries
  Candidates candidates_;         // reused across steps: no allocation after the first
};

}  // namespace hearth::sampling
