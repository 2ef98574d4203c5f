#include "hearth/sampling/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace hearth::sampling {

Result<LogprobReport> compute_logprobs(std::span<const float> logits, int32_t token, size_t top_n) {
  if (logits.empty()) return make_error(ErrorCode::kInvalidArgument, "logprobs: no logits");
  if (token < 0 || static_cast<size_t>(token) >= logits.size()) {
    return make_error(ErrorCode::kInvalidArgument, "logprobs: token id {} is out of range [0, {})", token,
                      logits.size());
  }
  double max_logit = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < logits.size(); ++i) {
    float v = logits[i];
    if (std::isnan(v) || (std::isinf(v) && v > 0)) {
      return make_error(ErrorCode::kInvalidArgument, "logprobs: logit of token {} is {}", i,
                        std::isnan(v) ? "nan" : "+inf");
    }
    max_logit = std::max(max_logit, static_cast<double>(v));
  }
  if (std::isinf(max_logit)) {
    return make_error(ErrorCode::kInvalidArgument, "logprobs: every logit is -inf");
  }
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max_logit);
  const double log_z = max_logit + std::log(sum);
  auto logprob = [&](size_t i) { return static_cast<float>(static_cast<double>(logits[i]) - log_z); };

  LogprobReport report;
  report.chosen = {token, logprob(static_cast<size_t>(token))};

  // Keep the n best ids in a heap whose top is the worst of them: O(n_vocab log n), n entries.
  const size_t n = std::min(top_n, logits.size());
  auto better = [&](int32_t a, int32_t b) {
    if (logits[a] != logits[b]) return logits[a] > logits[b];
    return a < b;
  };
  std::vector<int32_t> best;
  best.reserve(n);
  for (size_t i = 0; i < logits.size() && n > 0; ++i) {
    const int32_t id = static_cast<int32_t>(i);
    if (best.size() < n) {
      best.push_back(id);
      std::push_heap(best.begin(), best.end(), better);
    } else if (better(id, best.front())) {
      std::pop_heap(best.begin(), best.end(), better);
      best.back() = id;
      std::push_heap(best.begin(), best.end(), better);
    }
  }
  std::sort_heap(best.begin(), best.end(), better);
  report.top.reserve(n);
  for (int32_t id : best) report.top.push_back({id, logprob(static_cast<size_t>(id))});
  return report;
}

}  // namespace hearth::sampling
