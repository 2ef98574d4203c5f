// Perplexity over non-overlapping windows, scored the way the ecosystem's perplexity tool does:
// each window of n_ctx tokens is evaluated from an empty cache with its first token replaced
// by BOS, and only the second half (positions n_ctx/2 .. n_ctx-2, predicting the next token)
// is scored. PPL = exp(mean nll); ± = PPL * sqrt(var(nll) / (N - 1)).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/model/context.h"

namespace hearth::eval {

struct PerplexityParams {
  int64_t n_ctx = 512;
  int64_t max_chunks = 0;  // 0: all
  int32_t bos = 1;         // replaces the first token of every window (-1: keep it)
};

struct PerplexityResult {
  double ppl = 0.0;
  double ppl_error = 0.0;
  int64_t n_scored = 0;
  int64_t n_chunks = 0;
  std::vector<double> running_ppl;  // after each window
};

// Called after each window with (windows done, total windows, running ppl) and, when the
// caller wants them (e.g. --save-logits, KL divergence), the scored logits of that window:
// rows for positions n_ctx/2 .. n_ctx-2, each n_vocab floats, plus the true next tokens.
struct PerplexityCallbacks {
  std::function<void(int64_t done, int64_t total, double running_ppl)> progress;
  std::function<Status(std::span<const float> logits, std::span<const int32_t> targets)> window_logits;
};

Result<PerplexityResult> compute_perplexity(model::Context& ctx, std::span<const int32_t> tokens,
                                            const PerplexityParams& params, const PerplexityCallbacks& cb = {});

// -log softmax(logits)[target], computed in double.
double negative_log_likelihood(std::span<const float> logits, int32_t target);

}  // namespace hearth::eval
