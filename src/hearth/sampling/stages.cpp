#include "hearth/sampling/stages.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

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

// Candidates are sorted on [0, begin); makes [begin, end) hold the next best ones, sorted.
// A short prefix uses partial_sort (a k-element heap: most candidates are rejected by one
// comparison); a long one nth_element + sort, O(n + k log k). ranks_before is a strict total
// order, so either gives exactly a full sort's prefix on every standard library.
void sort_prefix(Candidates& c, size_t begin, size_t end) {
  auto first = c.items.begin() + static_cast<ptrdiff_t>(begin);
  auto middle = c.items.begin() + static_cast<ptrdiff_t>(end);
  const size_t rest = c.items.size() - begin;
  if ((end - begin) * 8 <= rest) {
    std::partial_sort(first, middle, c.items.end(), ranks_before);
  } else {
    if (middle != c.items.end()) std::nth_element(first, middle, c.items.end(), ranks_before);
    std::sort(first, middle, ranks_before);
  }
  c.id_ordered = false;
}

// The first block of keep_top_p's incremental sort.
constexpr size_t kTopPFirstBlock = 64;

// keep_top_p's bucket prefilter: used from this many candidates, with this many logit buckets.
constexpr size_t kBucketMinSize = 4096;
constexpr size_t kBuckets = 2048;

// Top-p prefilter for large unsorted arrays (p already set by softmax). Buckets the candidates
// by logit (bucket 0 = highest; the bucket index is monotone in the logit, so a set of whole
// top buckets is a prefix of the sorted order), finds how many top buckets hold probability
// mass >= p (plus a margin for summation order), moves exactly those candidates to the front and
// sorts them (or sorts everything if that is most of the array). Returns how many are sorted at
// the front; 0 if the distribution is degenerate (all logits equal). keep_top_p then runs
// its exact cumulative scan, extending the sorted prefix if rounding ever requires it, so the
// result is identical to a full sort.
size_t sort_nucleus_candidates(Candidates& c, float p, size_t min_keep) {
  float max_logit = kNegInf;
  float min_logit = std::numeric_limits<float>::infinity();
  for (const TokenCandidate& t : c.items) {
    if (t.logit == kNegInf) continue;
    max_logit = std::max(max_logit, t.logit);
    min_logit = std::min(min_logit, t.logit);
  }
  // All equal (or all -inf): nothing to prune. A range that overflows float would make the
  // bucket arithmetic NaN; such inputs take the plain path.
  if (!(max_logit > min_logit) || !std::isfinite(max_logit - min_logit)) return 0;
  const float scale = static_cast<float>(kBuckets - 1) / (max_logit - min_logit);
  auto bucket_of = [&](float logit) -> size_t {
    if (logit == kNegInf) return kBuckets;  // below every bucket
    size_t b = static_cast<size_t>((max_logit - logit) * scale);
    return std::min(b, kBuckets - 1);
  };
  std::vector<double> mass(kBuckets, 0.0);
  std::vector<size_t> count(kBuckets, 0);
  for (const TokenCandidate& t : c.items) {
    size_t b = bucket_of(t.logit);
    if (b < kBuckets) {
      mass[b] += t.p;
      ++count[b];
    }
  }
  constexpr double kMargin = 1e-6;
  double cumulative = 0.0;
  size_t kept = 0;
  size_t last = kBuckets;
  for (size_t b = 0; b < kBuckets; ++b) {
    cumulative += mass[b];
    kept += count[b];
    if (cumulative >= static_cast<double>(p) + kMargin && kept >= min_keep) {
      last = b;
      break;
    }
  }
  if (last == kBuckets || kept * 2 > c.size()) {
    // The nucleus is most of the array (a flat distribution): one full sort is the cheapest.
    c.sort();
    return c.size();
  }
  auto end = std::partition(c.items.begin(), c.items.end(),
                            [&](const TokenCandidate& t) { return bucket_of(t.logit) <= last; });
  std::sort(c.items.begin(), end, ranks_before);
  c.id_ordered = false;
  return static_cast<size_t>(end - c.items.begin());
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
  if (!c.sorted) sort_prefix(c, 0, n);
  c.sorted = true;
  c.truncate(n);
}
void keep_top_p(Candidates& c, float p, size_t min_keep) {
  if (p >= 1.0f || c.empty()) return;
  // Probabilities do not depend on order, so take them first and then sort only as far as the
  // nucleus reaches: a bucket prefilter for large unsorted arrays, then a doubling sorted prefix.
  c.softmax();
  const size_t n = c.size();
  size_t sorted_end = c.sorted ? n : 0;
  if (!c.sorted && n >= kBucketMinSize) sorted_end = sort_nucleus_candidates(c, p, min_keep);
  size_t next = std::min<size_t>(n, std::max<size_t>({kTopPFirstBlock, min_keep, sorted_end * 2}));
  double cumulative = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (i == sorted_end) {
      sort_prefix(c, sorted_end, next);
      sorted_end = next;
      next = std::min(n, next * 2);
    }
    cumulative += c.items[i].p;
    if (cumulative >= p && i + 1 >= min_keep) {
      c.truncate(i + 1);
      c.sorted = true;
      return;
    }
  }
  c.sorted = true;
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
    auto end =
        std::remove_if(c.items.begin(), c.items.end(), [&](const TokenCandidate& t) { return t.logit < threshold; });
    if (end != c.items.end()) {
      c.items.erase(end, c.items.end());
      c.id_ordered = false;
    }
    return;
  }
  keep_top_k(c, static_cast<int32_t>(std::min<size_t>(min_keep, std::numeric_limits<int32_t>::max())), min_keep);
}

std::optional<int32_t> select_greedy(const Candidates& c) {
  if (c.empty()) return std::nullopt;
  // A plain scan with the best value in registers; ties are rare, so the id comparison is off
  // the hot path. (std::min_element with ranks_before was ~4x slower.)
  float best = c.items[0].logit;
  int32_t best_id = c.items[0].id;
  for (const TokenCandidate& t : c.items) {
    if (t.logit > best || (t.logit == best && t.id < best_id)) {
      best = t.logit;
      best_id = t.id;
    }
  }
  if (best == kNegInf) return std::nullopt;
  return best_id;
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
