// Speculative decoding: a drafter guesses the next tokens cheaply; the model checks all of them
// in one batch and keeps the longest prefix that it would have produced itself, plus its own
// next token. The model's output is unchanged: token for token when greedy (up to a near-tie
// that batched and one-token arithmetic round differently), and with sampling each token is
// still drawn from the model's own distribution.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/model/context.h"
#include "hearth/tokenizer/tokenizer.h"

namespace hearth::engine {

class Drafter {
 public:
  virtual ~Drafter() = default;
  // Up to `k` guesses to follow `history` (every token so far).
  virtual Result<std::vector<int32_t>> propose(const std::vector<int32_t>& history, int k) = 0;
};

// Prompt lookup: the tokens that followed the latest earlier occurrence of the last 3 (else 2,
// else 1) tokens.
class NgramDrafter : public Drafter {
 public:
  Result<std::vector<int32_t>> propose(const std::vector<int32_t>& history, int k) override;
};

// A smaller (or lower-bit) model with the same vocabulary, greedy, on its own context (one
// sequence). Its KV cache keeps what it has seen, so each call decodes only what is new to it.
class ModelDrafter : public Drafter {
 public:
  explicit ModelDrafter(std::unique_ptr<model::Context> ctx) : ctx_(std::move(ctx)) {}
  Result<std::vector<int32_t>> propose(const std::vector<int32_t>& history, int k) override;
  // Gives the context back (for reuse by a later drafter); this drafter is empty afterwards.
  std::unique_ptr<model::Context> release_context() {
    cached_.clear();
    return std::move(ctx_);
  }

 private:
  std::unique_ptr<model::Context> ctx_;
  std::vector<int32_t> cached_;  // the tokens in the draft's KV cache, positions 0..
};

// A draft model must tokenize as the model does: the same vocabulary, token for token.
Status check_draft_vocabulary(const tokenizer::Tokenizer& model, const tokenizer::Tokenizer& draft);

struct SpeculativeStats {
  int64_t proposed = 0;  // guesses checked
  int64_t accepted = 0;  // guesses the model kept
  int64_t steps = 0;     // batched model passes
};

// Picks the next token from a row of logits (the caller's sampler, or argmax).
using SampleFn = std::function<Result<int32_t>(std::span<const float> logits)>;
// Takes a token; false when generation ends (end of text, a stop string, a limit).
using EmitFn = std::function<Result<bool>(int32_t token)>;

// Generates on sequence 0 of `ctx`, whose KV cache holds `history` at positions
// 0..history.size()-1 and whose last output row holds the logits after it. Each emitted token is
// appended to `history`. At most `max_draft` guesses per pass, and never past the context.
Result<SpeculativeStats> speculative_decode(model::Context& ctx, Drafter& drafter, int max_draft,
                                            std::vector<int32_t>& history, const SampleFn& sample,
                                            const EmitFn& emit);

}  // namespace hearth::engine
