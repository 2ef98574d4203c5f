#include "hearth/engine/speculative.h"

#include <algorithm>

namespace hearth::engine {

Result<std::vector<int32_t>> NgramDrafter::propose(const std::vector<int32_t>& h, int k) {
  for (size_t n = 3; n >= 1; --n) {
    if (h.size() <= n) continue;
    const size_t tail = h.size() - n;
    for (size_t j = tail; j-- > 0;) {
      if (!std::equal(h.begin() + static_cast<std::ptrdiff_t>(j), h.begin() + static_cast<std::ptrdiff_t>(j + n),
                      h.begin() + static_cast<std::ptrdiff_t>(tail))) {
        continue;
      }
      const size_t from = j + n, to = std::min(h.size(), from + static_cast<size_t>(std::max(k, 0)));
      return std::vector<int32_t>(h.begin() + static_cast<std::ptrdiff_t>(from),
                                  h.begin() + static_cast<std::ptrdiff_t>(to));
    }
  }
  return std::vector<int32_t>{};
}

Result<std::vector<int32_t>> ModelDrafter::propose(const std::vector<int32_t>& h, int k) {
  if (h.empty() || static_cast<int64_t>(h.size()) >= ctx_->n_ctx()) return std::vector<int32_t>{};
  size_t keep = 0;
  while (keep < h.size() && keep < cached_.size() && h[keep] == cached_[keep]) ++keep;
  if (keep == h.size()) --keep;  // the last token is decoded again for its logits
  keep = static_cast<size_t>(ctx_->reusable_prefix(0, static_cast<int64_t>(keep)));  // a sliding window's ring
  cached_.resize(keep);
  std::vector<model::BatchToken> batch;
  for (size_t i = keep; i < h.size(); ++i) batch.push_back({h[i], static_cast<int32_t>(i), 0, i + 1 == h.size()});
  HEARTH_TRY(ctx_->decode(batch));
  cached_.insert(cached_.end(), h.begin() + static_cast<std::ptrdiff_t>(keep), h.end());
  std::vector<int32_t> out;
  for (int i = 0; i < k; ++i) {
    const auto logits = ctx_->logits(ctx_->n_outputs() - 1);
    const int32_t best = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(best);
    if (i + 1 == k || static_cast<int64_t>(cached_.size()) + 1 >= ctx_->n_ctx()) break;
    model::BatchToken t{best, static_cast<int32_t>(cached_.size()), 0, true};
    HEARTH_TRY(ctx_->decode({&t, 1}));
    cached_.push_back(best);
  }
  return out;
}

Status check_draft_vocabulary(const tokenizer::Tokenizer& model, const tokenizer::Tokenizer& draft) {
  if (model.n_vocab() != draft.n_vocab()) {
    return make_error(ErrorCode::kInvalidArgument, "the draft's vocabulary has {} tokens, the model's {}",
                      draft.n_vocab(), model.n_vocab());
  }
  for (int32_t id = 0; id < model.n_vocab(); ++id) {
    if (model.token_text(id) != draft.token_text(id)) {
      return make_error(ErrorCode::kInvalidArgument, "the draft's token {} is '{}', the model's '{}'", id,
                        draft.token_text(id), model.token_text(id));
    }
  }
  return ok_status();
}

Result<SpeculativeStats> speculative_decode(model::Context& ctx, Drafter& drafter, int max_draft,
                                            std::vector<int32_t>& history, const SampleFn& sample,
                                            const EmitFn& emit) {
  SpeculativeStats st;
  // `cur` is the latest token, not yet in the model's KV cache; it goes at `pos` with the guesses.
  HEARTH_ASSIGN_OR_RETURN(int32_t cur, sample(ctx.logits(ctx.n_outputs() - 1)));
  HEARTH_ASSIGN_OR_RETURN(bool more, emit(cur));
  history.push_back(cur);
  auto pos = static_cast<int32_t>(history.size()) - 1;
  while (more && pos < ctx.n_ctx()) {
    const int64_t room = std::min<int64_t>(max_draft, ctx.n_ctx() - pos - 1);
    std::vector<int32_t> guess;
    if (room > 0) {
      HEARTH_ASSIGN_OR_RETURN(guess, drafter.propose(history, static_cast<int>(room)));
      if (static_cast<int64_t>(guess.size()) > room) guess.resize(static_cast<size_t>(room));
    }
    std::vector<model::BatchToken> batch{{cur, pos, 0, true}};
    for (size_t i = 0; i < guess.size(); ++i) batch.push_back({guess[i], pos + 1 + static_cast<int32_t>(i), 0, true});
    HEARTH_TRY(ctx.decode(batch));
    ++st.steps;
    st.proposed += static_cast<int64_t>(guess.size());
    // Row i holds the model's logits after cur and guess[0..i): keep guesses while it picks them.
    for (size_t i = 0;; ++i) {
      HEARTH_ASSIGN_OR_RETURN(int32_t next, sample(ctx.logits(static_cast<int>(i))));
      HEARTH_ASSIGN_OR_RETURN(more, emit(next));
      history.push_back(next);
      if (!more) break;
      if (i < guess.size() && next == guess[i]) {
        ++st.accepted;
        continue;
      }
      cur = next;  // its own token (a guess refused, or all taken): the next pass's first
      pos += static_cast<int32_t>(i) + 1;
      break;
    }
  }
  return st;
}

}  // namespace hearth::engine
