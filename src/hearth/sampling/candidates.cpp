#include "hearth/sampling/candidates.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hearth::sampling {

void Candidates::assign(std::span<const float> logits) {
  items.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    items[i] = TokenCandidate{static_cast<int32_t>(i), logits[i], 0.0f};
  }
  id_ordered = true;
  sorted = false;
}

void Candidates::sort() {
  if (sorted) return;
  std::sort(items.begin(), items.end(), ranks_before);
  sorted = true;
  id_ordered = false;
}

void Candidates::truncate(size_t n) {
  if (n >= items.size()) return;
  items.resize(n);
  id_ordered = false;
}

void Candidates::softmax() {
  float max_logit = -std::numeric_limits<float>::infinity();
  for (const TokenCandidate& c : items) max_logit = std::max(max_logit, c.logit);
  if (max_logit == -std::numeric_limits<float>::infinity()) {
    for (TokenCandidate& c : items) c.p = 0.0f;
    return;
  }
  double sum = 0.0;
  for (TokenCandidate& c : items) {
    double e = std::exp(static_cast<double>(c.logit) - static_cast<double>(max_logit));
    c.p = static_cast<float>(e);
    sum += e;
  }
  // sum >= 1: the max item contributes exp(0).
  for (TokenCandidate& c : items) c.p = static_cast<float>(c.p / sum);
}

}  // namespace hearth::sampling
