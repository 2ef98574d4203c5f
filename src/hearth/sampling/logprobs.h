// Log-probabilities of a sampled token and its top alternatives, for the API's `logprobs` /
// `top_logprobs`. As in the OpenAI API they come from the model's raw distribution,
// log_softmax(logits), before any sampling transform (bias, penalties, top-k, temperature, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::sampling {

struct TokenLogprob {
  int32_t id;
  float logprob;  // natural log; -inf for a -inf logit
};

struct LogprobReport {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;  // the min(top_n, n_vocab) most likely ids, best first,
                                  // lower id first on exact ties
};

// log p(i) = logit[i] - (max + log sum_j exp(logit[j] - max)), accumulated in double.
// Fails if logits is empty, `token` is out of range, or a logit is NaN or +inf.
Result<LogprobReport> compute_logprobs(std::span<const float> logits, int32_t token, size_t top_n);

}  // namespace hearth::sampling
