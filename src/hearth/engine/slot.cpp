// Per-slot generation: sampling with an optional JSON constraint, stop strings, logprobs and
// the events sent back to the request's channel.
#include "hearth/engine/slot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "hearth/sampling/logprobs.h"

namespace hearth::engine {
namespace {

// How many of the most likely tokens the constraint checks before scanning the vocabulary.
constexpr size_t kMaskTopCandidates = 64;

Status over_budget_error(const JsonConstraint::WorkBudget& b) {
  return make_error(ErrorCode::kInvalidArgument,
                    "json constraint: the schema needs more than hearth's work budget ({} matcher steps per token, {} "
                    "per request); simplify it (fewer anyOf alternatives, enum values or nested unions)",
                    b.per_token, b.total);
}

}  // namespace

bool same_lora(const std::vector<model::LoraUse>& a, const std::vector<model::LoraUse>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].adapter != b[i].adapter || a[i].scale != b[i].scale) return false;
  }
  return true;
}

void Slot::start(Task task, int64_t n_keep, uint64_t tick) {
  task_ = std::move(task);
  last_used_ = tick;
  const GenerationParams& p = *task_.params;
  cache_.resize(static_cast<size_t>(n_keep));
  prompt_pos_ = static_cast<size_t>(n_keep);
  n_cached_ = n_keep;
  n_generated_ = 0;
  sampler_.reset();
  stops_.reset();
  decoder_.reset();
  json_.reset();
  embd_sum_.clear();
  embd_n_ = 0;
  state_ = State::kPrefill;
  if (p.embedding) {
    embd_sum_.assign(static_cast<size_t>(shared_->n_embd), 0.0);
    return;
  }
  sampling::SamplerConfig sc = p.sampler;
  if (!p.ignore_eos) sc.eog_tokens = shared_->eog;
  if (sc.seed != sampling::kRandomSeed) sc.seed += static_cast<uint32_t>(task_.index);
  auto sampler = sampling::Sampler::create(sc, static_cast<int32_t>(shared_->pieces.size()));
  if (!sampler.ok()) {
    finish(FinishReason::kError, sampler.status());
    return;
  }
  sampler_.emplace(std::move(sampler).value());
  for (int32_t id : p.prompt) {
    if (!sampler_->accept(id).ok()) break;  // ids were validated by the scheduler
  }
  stops_.emplace(p.stop, /*hold_incomplete_utf8=*/false);
  decoder_.emplace(*shared_->tokenizer);
  if (p.json_schema) {
    auto c = JsonConstraint::create(p.json_schema);
    if (!c.ok()) {
      finish(FinishReason::kError, c.status());
      return;
    }
    json_.emplace(std::move(c).value());
    sampler_->set_token_mask([this](std::span<sampling::TokenCandidate> cands) { return mask(cands); });
  }
}

std::span<const int32_t> Slot::prompt_left() const {
  const auto& prompt = task_.params->prompt;
  return std::span<const int32_t>(prompt).subspan(std::min(prompt_pos_, prompt.size()));
}

bool Slot::token_allowed(int32_t id) const {
  if (sampler_->is_eog(id)) return json_->can_end();
  const std::string& piece = shared_->pieces[static_cast<size_t>(id)];
  // Tokens with no text (control tokens) would let the model stall without progress.
  if (piece.empty()) return false;
  // A piece whose first byte is refused is refused whole: one table lookup, not a matcher run.
  if (first_byte_known_ && !first_byte_ok_[static_cast<unsigned char>(piece[0])]) return false;
  return json_->accepts(piece);
}

// Checks the most likely candidates first: with greedy decoding the first allowed one is all
// that matters, and with sampling the top few carry almost all the probability. Only when none
// of them fits is the whole vocabulary scanned.
Status Slot::mask(std::span<sampling::TokenCandidate> cands) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  order_.resize(cands.size());
  for (size_t i = 0; i < cands.size(); ++i) order_[i] = static_cast<int32_t>(i);
  const size_t top = std::min(kMaskTopCandidates, cands.size());
  std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(top), order_.end(),
                    [&](int32_t a, int32_t b) { return sampling::ranks_before(cands[a], cands[b]); });
  allowed_.assign(cands.size(), 0);
  json_->reset_token_work();
  first_byte_known_ = false;
  const bool greedy = task_.params->sampler.temperature <= 0.0f;
  size_t found = 0;
  for (size_t k = 0; k < top; ++k) {
    const auto& c = cands[static_cast<size_t>(order_[k])];
    if (c.logit == neg_inf || !token_allowed(c.id)) continue;
    allowed_[static_cast<size_t>(order_[k])] = 1;
    ++found;
    if (greedy) break;
  }
  if (found == 0 && !json_->over_budget()) {
    // The whole vocabulary: first learn which first bytes can continue (256 one-byte runs), so
    // most tokens are refused without running the matcher.
    for (int b = 0; b < 256; ++b)
      first_byte_ok_[static_cast<size_t>(b)] = json_->accepts(std::string(1, static_cast<char>(b)));
    first_byte_known_ = true;
    for (size_t i = 0; i < cands.size() && !json_->over_budget(); ++i) {
      if (cands[i].logit != neg_inf && token_allowed(cands[i].id)) {
        allowed_[i] = 1;
        ++found;
      }
    }
  }
  if (json_->over_budget()) {
    // The schema is too ambiguous to check within the budget: stop this request rather than
    // stall every other slot of the scheduler.
    return over_budget_error(json_->budget());
  }
  if (found == 0) {
    return make_error(ErrorCode::kInternal, "json constraint: no token of the vocabulary can continue the output");
  }
  for (size_t i = 0; i < cands.size(); ++i) {
    if (!allowed_[i]) cands[i].logit = neg_inf;
  }
  return ok_status();
}

void Slot::emit(std::string text, std::vector<TokenInfo> tokens) {
  if (text.empty() && tokens.empty()) return;
  GenerationEvent e;
  e.kind = GenerationEvent::Kind::kDelta;
  e.index = task_.index;
  e.text = std::move(text);
  e.tokens = std::move(tokens);
  task_.channel->push(std::move(e));
}

void Slot::finish(FinishReason reason, Status error) {
  if (stops_ && decoder_ && reason != FinishReason::kError && reason != FinishReason::kCancelled) {
    std::string tail;
    if (!stops_->stopped()) {
      tail = stops_->push(decoder_->flush()).text;
      if (!stops_->stopped()) tail += stops_->finish();
    }
    emit(std::move(tail), {});
  }
  GenerationEvent e;
  e.kind = GenerationEvent::Kind::kFinish;
  e.index = task_.index;
  e.finish = reason;
  e.error = std::move(error);
  e.n_prompt = static_cast<int64_t>(task_.params->prompt.size());
  e.n_cached = n_cached_;
  e.n_generated = n_generated_;
  task_.channel->push(std::move(e));
  state_ = State::kIdle;
  sampler_.reset();
  json_.reset();
  task_ = Task{};
}

void Slot::abort(FinishReason reason, Status error, bool drop_cache) {
  if (drop_cache) cache_.clear();
  if (state_ != State::kIdle) finish(reason, std::move(error));
}

void Slot::on_logits(std::span<const float> logits) {
  const GenerationParams& p = *task_.params;
  state_ = State::kGenerate;
  auto next = sampler_->sample(logits);
  if (!next.ok()) {
    finish(FinishReason::kError, next.status());
    return;
  }
  const int32_t id = next.value();
  std::vector<TokenInfo> info;
  if (p.top_logprobs >= 0) {
    auto lp = sampling::compute_logprobs(logits, id, static_cast<size_t>(p.top_logprobs));
    if (lp.ok()) {
      TokenInfo t;
      t.id = id;
      t.piece = shared_->pieces[static_cast<size_t>(id)];
      t.logprob = lp->chosen.logprob;
      for (const auto& alt : lp->top) {
        t.top.emplace_back(shared_->pieces[static_cast<size_t>(alt.id)], alt.logprob);
        t.top_ids.push_back(alt.id);
      }
      info.push_back(std::move(t));
    }
  }
  if (sampler_->is_eog(id)) {
    emit({}, std::move(info));
    finish(FinishReason::kStop);
    return;
  }
  (void)sampler_->accept(id);
  ++n_generated_;
  const std::string& piece = shared_->pieces[static_cast<size_t>(id)];
  if (json_) json_->reset_token_work();
  if (json_ && !json_->advance(piece)) {
    finish(FinishReason::kError,
           json_->over_budget()
               ? over_budget_error(json_->budget())
               : make_error(ErrorCode::kInternal, "json constraint: sampled token {} does not fit the schema", id));
    return;
  }
  auto step = stops_->push(decoder_->push_bytes(piece));
  emit(std::move(step.text), std::move(info));
  if (step.stopped || (json_ && json_->must_end())) {
    finish(FinishReason::kStop);
    return;
  }
  const bool max_reached = p.max_tokens >= 0 && n_generated_ >= p.max_tokens;
  if (max_reached || static_cast<int64_t>(cache_.size()) >= shared_->n_ctx) {
    finish(FinishReason::kLength);
    return;
  }
  pending_ = id;
}

void Slot::on_hidden(std::span<const float> hidden) {
  // Mean: summed here, divided below. CLS keeps the first row; last keeps the latest.
  const model::PoolingType pooling = shared_->pooling;
  const bool take = pooling == model::PoolingType::kLast || (pooling == model::PoolingType::kCls && embd_n_ == 0);
  for (size_t i = 0; i < embd_sum_.size() && i < hidden.size(); ++i) {
    if (pooling == model::PoolingType::kCls || pooling == model::PoolingType::kLast) {
      if (take) embd_sum_[i] = hidden[i];
    } else {
      embd_sum_[i] += hidden[i];
    }
  }
  ++embd_n_;
  if (!prompt_done() || embd_n_ < static_cast<int64_t>(task_.params->prompt.size()) - n_cached_) return;
  if (pooling == model::PoolingType::kCls || pooling == model::PoolingType::kLast) embd_n_ = 1;
  // Pooled over the prompt tokens, then L2-normalised (as the OpenAI embeddings are).
  GenerationEvent e;
  e.kind = GenerationEvent::Kind::kEmbedding;
  e.index = task_.index;
  e.n_prompt = static_cast<int64_t>(task_.params->prompt.size());
  e.embedding.resize(embd_sum_.size());
  double norm = 0.0;
  for (size_t i = 0; i < embd_sum_.size(); ++i) {
    const double v = embd_sum_[i] / static_cast<double>(std::max<int64_t>(embd_n_, 1));
    embd_sum_[i] = v;
    norm += v * v;
  }
  norm = std::sqrt(norm);
  for (size_t i = 0; i < embd_sum_.size(); ++i) {
    e.embedding[i] = static_cast<float>(norm > 0 ? embd_sum_[i] / norm : 0.0);
  }
  task_.channel->push(std::move(e));
  state_ = State::kIdle;
  task_ = Task{};
}

}  // namespace hearth::engine
