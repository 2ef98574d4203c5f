// Candidates: the token array that the sampling stages filter and transform.
//
// A candidate is {id, logit, p}. The array starts as the whole vocabulary in id order (straight
// from the model's logits) and the stages shrink, reorder and rescale it. `p` is only meaningful
// after softmax(); a stage that changes logits leaves it stale until the next softmax().
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace hearth::sampling {

struct TokenCandidate {
  int32_t id;
  float logit;
  float p;  // probability; valid after softmax()
};

// Strict total order used for every sort: higher logit first, then lower id. Making ties break
// by id keeps results identical across standard libraries (std::sort is not stable).
// A function object rather than a function, so that std::sort & co. inline it.
struct RanksBefore {
  bool operator()(const TokenCandidate& a, const TokenCandidate& b) const {
    if (a.logit != b.logit) return a.logit > b.logit;
    return a.id < b.id;
  }
};
inline constexpr RanksBefore ranks_before{};

struct Candidates {
  std::vector<TokenCandidate> items;
  // items[i].id == i for every i (the untouched full vocabulary): id lookups are direct.
  bool id_ordered = false;
  // items are in ranks_before order.
  bool sorted = false;

  size_t size() const { return items.size(); }
  bool empty() const { return items.empty(); }

  // Resets to the full vocabulary: items[i] = {i, logits[i], 0}. Reuses the allocation.
  void assign(std::span<const float> logits);

  // Sorts by ranks_before (no-op if already sorted).
  void sort();

  // Keeps the first n items (after sorting, the n best).
  void truncate(size_t n);

  // Sets p = softmax(logit) over the current items; a -inf logit gets p = 0. Accumulates in
  // double. If every logit is -inf, all p are 0.
  void softmax();
};

}  // namespace hearth::sampling
