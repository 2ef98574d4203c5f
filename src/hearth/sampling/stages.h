// The sampling stages: pure transforms over Candidates, plus the two final selectors.
//
// Each stage follows the semantics of the llama.cpp sampler of the same name
// (src/llama-sampling.cpp) unless noted. The Sampler (sampler.h) chains them in a fixed order;
// they are public so that the engine or tests can compose other orders.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "hearth/sampling/candidates.h"
#include "hearth/sampling/rng.h"

namespace hearth::sampling {

// Adds bias[id] to the logit of each listed id present in `c`; a bias of -inf bans the token.
void apply_logit_bias(Candidates& c, const std::map<int32_t, float>& bias);

// How often a token occurred in the penalty window.
struct TokenCount {
  int32_t id;
  int32_t count;
};

// Counts the tokens of `window`; the result is sorted by id, one entry per distinct id.
std::vector<TokenCount> count_tokens(std::span<const int32_t> window);

struct PenaltyParams {
  float repeat = 1.0f;     // 1 = off
  float presence = 0.0f;   // 0 = off
  float frequency = 0.0f;  // 0 = off
};

// For each candidate whose id occurs in `counts` (sorted by id, from count_tokens):
//   repetition (llama.cpp / CTRL, Keskar et al. 2019): logit > 0 ? logit / repeat : logit * repeat
//   then presence and frequency (OpenAI API reference, "frequency and presence penalties"):
//   logit -= count * frequency + (count > 0 ? presence : 0)
// Tokens absent from the window are untouched.
void apply_penalties(Candidates& c, std::span<const TokenCount> counts, const PenaltyParams& params);

// logit /= temperature for every candidate. temperature <= 0 means greedy: only the best
// candidate (lowest id on ties) is kept.
void apply_temperature(Candidates& c, float temperature);

// Keeps the max(k, min_keep) best candidates, sorted. k <= 0 disables the stage.
void keep_top_k(Candidates& c, int32_t k, size_t min_keep = 1);

// Nucleus sampling (Holtzman et al. 2019): sorts, takes softmax over the current candidates and
// keeps the shortest prefix whose cumulative probability is >= p, and at least min_keep.
// p >= 1 disables the stage. Cost: O(n) plus sorting the nucleus (large unsorted arrays are
// pre-bucketed by logit); a flat distribution whose nucleus is most of the vocabulary costs a
// full sort, which is why the default chain runs top-k first.
void keep_top_p(Candidates& c, float p, size_t min_keep = 1);

// Keeps candidates whose probability is >= min_p * (the best probability), i.e.
// logit >= max_logit + ln(min_p), and at least min_keep (the best ones). min_p <= 0 disables it.
void keep_min_p(Candidates& c, float min_p, size_t min_keep = 1);

// The id with the highest logit; the lowest id wins exact ties. nullopt if `c` is empty or
// every logit is -inf (every token was banned or masked).
std::optional<int32_t> select_greedy(const Candidates& c);

// Draws one id from softmax(logits) using one rng.next_double() (inverse-CDF over the current
// candidate order, accumulated in double). Sets p. nullopt if `c` is empty or every logit is -inf.
std::optional<int32_t> draw(Candidates& c, Rng& rng);

}  // namespace hearth::sampling
