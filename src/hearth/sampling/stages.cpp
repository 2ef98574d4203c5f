#include "hearth/sampling/stages.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hearth::sampling {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The candidate with id `id`, or nullptr; O(1) when `c` is still the id-ordered vocabulary.
TokenCandidate* find_id_ordered(Candidates& c, int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= c.items.size()) return nullptr;
  return &c.items[static_cast<size_t>(id)];
}

void penalize(TokenCandidate& t, int32_t count, const PenaltyParams& params) {
  if (count <= 0) return;
  if (t.logit > 0.0f) {
    t.logit /= params.repeat;
  } else {
    t.logit *= params.repeat;
  }
  t.logit -= static_cast<float>(count) * params.frequency + params.presence;
}

}  // namespace

void apply_logit_bias(Candidates& c, const std::map<int32_t, float>& bias) {
  if (bias.empty()) return;
  if (c.id_ordered) {
    for (const auto& [id, b] : bias) {
      if (TokenCandidate* t = find_id_ordered(c, id)) t->logit += b;
    }
    return;
  }
  for (TokenCandidate& t : c.items) {
    auto it = bias.find(t.id);
    if (it != bias.end()) t.logit += it->second;
  }
}

std::vector<TokenCount> count_tokens(std::span<const int32_t> window) {
  std::vector<int32_t> ids(window.begin(), window.end());
  std::sort(ids.begin(), ids.end());
  std::vector<TokenCount> counts;
  for (int32_t id : ids) {
    if (!counts.empty() && counts.back().id == id) {
      ++counts.back().count;
    } else {
      counts.push_back({id, 1});
    }
  }
  return counts;
}

void apply_penalties(Candidates& c, std::span<const TokenCount> counts, const PenaltyParams& params) {
  if (counts.empty()) return;
  if (params.repeat == 1.0f && params.presence == 0.0f && params.frequency == 0.0f) return;
  if (c.id_ordered) {
    for (const TokenCount& tc : counts) {
      if (TokenCandidate* t = find_id_ordered(c, tc.id)) penalize(*t, tc.count, params);
    }
    return;
  }
  for (TokenCandidate& t : c.items) {
    auto it = std::lower_bound(counts.begin(), counts.end(), t.id,
                               [](const TokenCount& tc, int32_t id) { return tc.id < id; });
    if (it != counts.end() && it->id == t.id) penalize(t, it->count, params);
  }
}

void apply_temperature(Candidates& c, float temperature) {
  if (c.empty()) return;
  if (temperature <= 0.0f) {
    auto best = std::min_element(c.items.begin(), c.items.end(), ranks_before);
    TokenCandidate kept = *best;
    c.items.assign(1, kept);
    c.id_ordered = false;
    c.sorted = true;
    return;
  }
  for (TokenCandidate& t : c.items) t.logit /= temperature;
}

void keep_top_k(Candidates& c, int32_t k, size_t min_keep) {
  if (k <= 0) return;
  size_t n = std::max(static_cast<size_t>(k), min_keep);
  if (n >= c.size()) {
    c.sort();
    return;
  }
  if (!c.sorted) {
    std::partial_sort(c.items.begin(), c.items.begin() + static_cast<ptrdiff_t>(n), c.items.end(),
                      ranks_before);
    c.sorted = true;
  }
  c.truncate(n);
}

void keep_top_p(Candidates& c, float p, size_t min_keep) {
  if (p >= 1.0f || c.empty()) return;
  c.sort();
  c.softmax();
  double cumulative = 0.0;
  size_t keep = c.size();
  for (size_t i = 0; i < c.size(); ++i) {
    cumulative += c.items[i].p;
    if (cumulative >= p && i + 1 >= min_keep) {
      keep = i + 1;
      break;
    }
  }
  c.truncate(keep);
}

void keep_min_p(Candidates& c, float min_p, size_t min_keep) {
  if (min_p <= 0.0f || c.empty()) return;
  float max_logit = kNegInf;
  for (const TokenCandidate& t : c.items) max_logit = std::max(max_logit, t.logit);
  if (max_logit == kNegInf) return;
  const float threshold = max_logit + std::log(min_p);
  size_t passing = 0;
  for (const TokenCandidate& t : c.items) passing += t.logit >= threshold ? 1 : 0;
  if (passing >= min_keep) {
    // Filter in place, preserving order (and with it a sorted flag).
    auto end = std::remove_if(c.items.begin(), c.items.end(),
                              [&](const TokenCandidate& t) { return t.logit < threshold; });
    if (end != c.items.end()) {
      c.items.erase(end, c.items.end());
      c.id_ordered = false;
    }
    return;
  }
  keep_top_k(c, static_cast<int32_t>(std::min<size_t>(min_keep, std::numeric_limits<int32_t>::max())),
             min_keep);
}

std::optional<int32_t> select_greedy(const Candidates& c) {
  if (c.empty()) return std::nullopt;
  auto best = std::min_element(c.items.begin(), c.items.end(), ranks_before);
  if (best->logit == kNegInf) return std::nullopt;
  return best->id;
}

std::optional<int32_t> draw(Candidates& c, Rng& rng) {
  if (c.empty()) return std::nullopt;
  c.softmax();
  double total = 0.0;
  for (const TokenCandidate& t : c.items) total += t.p;
  if (!(total > 0.0)) return std::nullopt;
  // Scale u by the actual total so float rounding in p never leaves the target out of reach.
  const double target = rng.next_double() * total;
  double cumulative = 0.0;
  std::optional<int32_t> last_positive;
  for (const TokenCandidate& t : c.items) {
    if (t.p <= 0.0f) continue;
    cumulative += t.p;
    last_positive = t.id;
    if (cumulative > target) return t.id;
  }
  return last_positive;
}

}  // namespace hearth::sampling
