#include "hearth/eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace hearth::eval {

double negative_log_likelihood(std::span<const float> logits, int32_t target) {
  float mx = -INFINITY;
  for (float v : logits) mx = std::max(mx, v);
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
  return std::log(sum) - (static_cast<double>(logits[static_cast<size_t>(target)]) - mx);
}

Result<PerplexityResult> compute_perplexity(model::Context& ctx, std::span<const int32_t> tokens,
                                            const PerplexityParams& p, const PerplexityCallbacks& cb) {
  const int64_t n_ctx = p.n_ctx;
  if (n_ctx < 4) return make_error(ErrorCode::kInvalidArgument, "perplexity: context {} is too small", n_ctx);
  if (n_ctx > ctx.n_ctx()) {
    return make_error(ErrorCode::kInvalidArgument, "perplexity: window {} is larger than the context {}", n_ctx,
                      ctx.n_ctx());
  }
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (n_chunks == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "perplexity: the text has {} tokens, fewer than one window of {} (use a smaller -c)",
                      tokens.size(), n_ctx);
  }
  if (p.max_chunks > 0) n_chunks = std::min(n_chunks, p.max_chunks);
  const int64_t n_vocab = ctx.model().hparams().n_vocab;
  const int64_t first = n_ctx / 2;
  PerplexityResult r;
  r.n_chunks = n_chunks;
  double sum = 0.0, sum2 = 0.0;
  std::vector<model::BatchToken> batch(static_cast<size_t>(n_ctx));
  std::vector<float> window_logits;
  std::vector<int32_t> targets;
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int32_t* w = tokens.data() + c * n_ctx;
    for (int64_t i = 0; i < n_ctx; ++i) {
      int32_t id = w[i];
      if (i == 0 && p.bos >= 0) id = p.bos;
      // Logits are needed for the scored positions only.
      batch[static_cast<size_t>(i)] = {id, static_cast<int32_t>(i), 0, i >= first && i <= n_ctx - 2};
    }
    HEARTH_TRY(ctx.decode(batch));
    if (cb.window_logits) {
      window_logits.clear();
      targets.clear();
    }
    for (int64_t i = first; i <= n_ctx - 2; ++i) {
      auto logits = ctx.logits(static_cast<int>(i - first));
      const double nll = negative_log_likelihood(logits, w[i + 1]);
      sum += nll;
      sum2 += nll * nll;
      ++r.n_scored;
      if (cb.window_logits) {
        window_logits.insert(window_logits.end(), logits.begin(), logits.end());
        targets.push_back(w[i + 1]);
      }
    }
    if (cb.window_logits) HEARTH_TRY(cb.window_logits(window_logits, targets));
    const double running = std::exp(sum / static_cast<double>(r.n_scored));
    r.running_ppl.push_back(running);
    if (cb.progress) cb.progress(c + 1, n_chunks, running);
  }
  (void)n_vocab;
  const double n = static_cast<double>(r.n_scored);
  const double mean = sum / n;
  r.ppl = std::exp(mean);
  if (r.n_scored > 1) {
    const double var = std::max(0.0, sum2 / n - mean * mean);
    r.ppl_error = r.ppl * std::sqrt(var / (n - 1.0));
  }
  return r;
}

}  // namespace hearth::eval
