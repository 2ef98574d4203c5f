// The scheduler loop: admission, batching across slots, dispatch of outputs. See scheduler.h.
#include "hearth/engine/scheduler.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "hearth/core/log.h"

namespace hearth::engine {
namespace {

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// Copying another slot's rows costs memory bandwidth; below this gain recomputing is as cheap.
constexpr size_t kMinPrefixCopy = 16;
// Prompt tokens of embedding requests per step (each one produces an output row).
constexpr size_t kEmbeddingChunk = 64;

}  // namespace

Result<std::unique_ptr<Scheduler>> Scheduler::create(const model::Model& model, const tokenizer::Tokenizer& tokenizer,
                                                     SchedulerParams params) {
  if (params.n_slots < 1) {
    return make_error(ErrorCode::kInvalidArgument, "--parallel must be at least 1, not {}", params.n_slots);
  }
  if (params.draft_ngram && params.draft_max < 1) {
    return make_error(ErrorCode::kInvalidArgument, "--draft-max must be at least 1, not {}", params.draft_max);
  }
  std::unique_ptr<Scheduler> s(new Scheduler());
  model::ContextParams cp;
  cp.n_ctx = params.n_ctx;
  cp.n_seq = params.n_slots;
  cp.n_batch = params.n_batch;
  cp.n_threads = params.n_threads;
  cp.kv_type = params.kv_type;
  cp.kv_limit_bytes = params.kv_limit_bytes;
  HEARTH_ASSIGN_OR_RETURN(s->ctx_, model::Context::create(model, cp));
  s->params_ = params;
  s->n_vocab_ = model.hparams().n_vocab;
  s->shared_.tokenizer = &tokenizer;
  s->shared_.n_ctx = s->ctx_->n_ctx();
  s->shared_.n_embd = model.hparams().n_embd;
  s->causal_ = model.hparams().causal;
  if (model.hparams().pooling != model::PoolingType::kNone) s->shared_.pooling = model.hparams().pooling;
  s->shared_.pieces.resize(static_cast<size_t>(s->n_vocab_));
  for (int32_t id = 0; id < static_cast<int32_t>(s->n_vocab_); ++id) {
    s->shared_.pieces[static_cast<size_t>(id)] = tokenizer.token_to_piece(id);
    if (tokenizer.is_eog(id)) s->shared_.eog.push_back(id);
  }
  s->slots_.reserve(static_cast<size_t>(params.n_slots));
  for (int i = 0; i < params.n_slots; ++i) s->slots_.emplace_back(i, s->shared_);
  s->slot_lora_.resize(static_cast<size_t>(params.n_slots));
  s->drafts_.resize(static_cast<size_t>(params.n_slots));
  s->thread_ = std::thread([p = s.get()] { p->loop(); });
  return s;
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status Scheduler::check(const GenerationParams& params) const {
  const auto& prompt = params.prompt;
  if (prompt.empty()) return make_error(ErrorCode::kInvalidArgument, "the prompt is empty");
  for (int32_t id : prompt) {
    if (id < 0 || id >= n_vocab_) {
      return make_error(ErrorCode::kInvalidArgument, "token id {} is outside the vocabulary [0, {})", id, n_vocab_);
    }
  }
  if (static_cast<int64_t>(prompt.size()) >= shared_.n_ctx + (params.embedding ? 1 : 0)) {
    return make_error(ErrorCode::kOutOfRange, "the prompt has {} tokens, which does not fit the context of {} tokens",
                      prompt.size(), shared_.n_ctx);
  }
  if (params.n_choices < 1) return make_error(ErrorCode::kInvalidArgument, "n must be at least 1");
  if (!causal_) {
    // An encoder (bert): every token attends to the whole input, so an input is one forward
    // pass, and it does not generate.
    if (!params.embedding) {
      return make_error(ErrorCode::kInvalidArgument,
                        "this is an embedding model (bidirectional attention): it does not generate text; use "
                        "/v1/embeddings or /api/embed");
    }
    if (static_cast<int64_t>(prompt.size()) > params_.n_batch) {
      return make_error(ErrorCode::kOutOfRange,
                        "the input has {} tokens; this embedding model takes at most {} per input (the batch size, "
                        "-b)",
                        prompt.size(), params_.n_batch);
    }
  }
  return ok_status();
}

Status Scheduler::check(const std::vector<model::LoraUse>& lora) const {
  for (const model::LoraUse& u : lora) {
    if (u.adapter == nullptr || &u.adapter->base() != &ctx_->model()) {
      return make_error(ErrorCode::kInvalidArgument, "a LoRA adapter was not loaded for the model being served");
    }
    if (!std::isfinite(u.scale)) {
      return make_error(ErrorCode::kInvalidArgument, "LoRA adapter {}: scale {} is not finite", u.adapter->path(),
                        u.scale);
    }
  }
  return ok_status();
}

Result<std::shared_ptr<RequestChannel>> Scheduler::submit(std::shared_ptr<const GenerationParams> params,
                                                          std::vector<model::LoraUse> lora) {
  HEARTH_ASSIGN_OR_RETURN(auto channels, submit_all({std::move(params)}, std::move(lora)));
  return std::move(channels.front());
}

Result<std::vector<std::shared_ptr<RequestChannel>>> Scheduler::submit_all(
    std::vector<std::shared_ptr<const GenerationParams>> requests, std::vector<model::LoraUse> lora) {
  HEARTH_TRY(check(lora));
  size_t tasks = 0;
  for (const auto& p : requests) {
    HEARTH_TRY(check(*p));
    tasks += static_cast<size_t>(p->n_choices);
  }
  if (tasks > max_tasks()) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "the request needs {} tasks, more than this server ever holds at once ({}: --parallel + --max-queue)", tasks,
        max_tasks());
  }
  std::vector<std::shared_ptr<RequestChannel>> channels;
  for (size_t i = 0; i < requests.size(); ++i) channels.push_back(std::make_shared<RequestChannel>());
  {
    // All or nothing: a batch never half-enters the queue.
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() + tasks > max_tasks() - static_cast<size_t>(active_.load())) {
      return make_error(ErrorCode::kResourceExhausted, "the request queue is full ({} waiting); retry later",
                        queue_.size());
    }
    for (size_t r = 0; r < requests.size(); ++r) {
      for (int i = 0; i < requests[r]->n_choices; ++i) queue_.push_back(Task{channels[r], requests[r], i, lora});
    }
  }
  cv_.notify_all();
  return channels;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.n_slots = n_slots();
  s.active_slots = active_.load();
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.queue_depth = static_cast<int64_t>(queue_.size());
  }
  s.kv_tokens = kv_tokens_.load();
  s.kv_capacity = shared_.n_ctx * n_slots();
  s.kv_bytes = ctx_->kv_cache().bytes();
  s.prompt_tokens = prompt_tokens_.load();
  s.cached_prompt_tokens = cached_tokens_.load();
  s.generated_tokens = generated_tokens_.load();
  s.steps = steps_.load();
  s.decode_tokens_per_second = tok_per_s_.load();
  s.draft_proposed = draft_proposed_.load();
  s.draft_accepted = draft_accepted_.load();
  return s;
}

void Scheduler::admit_locked() {
  while (!queue_.empty()) {
    if (queue_.front().channel->cancelled()) {
      // The reader still waits for a finish event per choice.
      GenerationEvent e;
      e.kind = GenerationEvent::Kind::kFinish;
      e.index = queue_.front().index;
      e.finish = FinishReason::kCancelled;
      e.n_prompt = static_cast<int64_t>(queue_.front().params->prompt.size());
      queue_.front().channel->push(std::move(e));
      queue_.pop_front();
      continue;
    }
    const auto params = queue_.front().params;
    const auto& prompt = params->prompt;
    // Cached rows are reusable only if they were computed with the task's adapters.
    const std::vector<model::LoraUse> lora = queue_.front().lora;
    // The slot goes on at min(common prefix, last prompt token), if the cache (a sliding
    // window's ring) still holds the rows that position needs.
    auto reusable = [&](const Slot& s) -> size_t {
      if (prompt.empty() || !same_lora(slot_lora_[static_cast<size_t>(s.id())], lora)) return 0;
      const size_t c = std::min(common_prefix(s.cache(), prompt), prompt.size() - 1);
      return static_cast<size_t>(ctx_->reusable_prefix(s.id(), static_cast<int64_t>(c)));
    };
    Slot* best = nullptr;
    size_t best_common = 0;
    for (Slot& s : slots_) {
      if (!s.idle()) continue;
      size_t c = reusable(s);
      if (!best || c > best_common || (c == best_common && s.last_used() < best->last_used())) {
        best = &s;
        best_common = c;
      }
    }
    if (!best) return;
    Task task = std::move(queue_.front());
    queue_.pop_front();
    auto& best_lora = slot_lora_[static_cast<size_t>(best->id())];
    if (!same_lora(best_lora, lora)) {
      // Checked at submit, so this cannot fail; the slot's rows are recomputed from 0.
      if (Status st = ctx_->set_adapters(best->id(), lora); !st.ok()) {
        log::error("scheduler: slot {}: {}", best->id(), st.to_string());
        GenerationEvent e;
        e.kind = GenerationEvent::Kind::kFinish;
        e.index = task.index;
        e.finish = FinishReason::kError;
        e.error = st;
        task.channel->push(std::move(e));
        continue;
      }
      best_lora = lora;
      best->cache().clear();  // best_common is 0: reusable() refused its rows
    }
    if (params->embedding) {
      best_common = 0;  // every prompt token's hidden state is needed
    } else {
      // Another slot (busy or not) may hold a longer prefix, e.g. a sibling choice's prompt.
      for (Slot& s : slots_) {
        if (&s == best) continue;
        size_t c = reusable(s);
        if (c >= best_common + kMinPrefixCopy) {
          ctx_->kv_cache().copy_prefix(s.id(), best->id(), static_cast<int64_t>(c));
          best->cache().assign(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(c));
          best_common = c;
        }
      }
    }
    // At least the last prompt token is evaluated, to get the logits of the next one.
    const int64_t n_keep = static_cast<int64_t>(std::min(best_common, prompt.size() - 1));
    cached_tokens_ += static_cast<uint64_t>(n_keep);
    best->start(std::move(task), n_keep, ++tick_);
  }
}

void Scheduler::loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        if (stop_ || active_.load() > 0) return true;
        return !queue_.empty();
      });
      if (stop_) break;
      admit_locked();
    }
    step();
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (Slot& s : slots_)
    s.abort(FinishReason::kCancelled, make_error(ErrorCode::kCancelled, "the server is stopping"), false);
  for (Task& t : queue_) {
    GenerationEvent e;
    e.kind = GenerationEvent::Kind::kFinish;
    e.index = t.index;
    e.finish = FinishReason::kCancelled;
    e.error = make_error(ErrorCode::kCancelled, "the server is stopping");
    t.channel->push(std::move(e));
  }
  queue_.clear();
}

void Scheduler::step() {
  batch_.clear();
  out_slot_.clear();
  int n_active = 0;
  for (Slot& s : slots_) {
    if (!s.idle() && s.task().channel->cancelled()) s.abort(FinishReason::kCancelled, {}, false);
  }
  // Decode steps first: one token per generating slot (and its guesses, with drafts).
  size_t n_decode = 0;
  if (params_.draft_ngram) {
    add_drafted_decodes();
    for (const Slot& s : slots_) n_decode += s.state() == Slot::State::kGenerate ? 1 : 0;
  } else {
    for (Slot& s : slots_) {
      if (s.state() != Slot::State::kGenerate) continue;
      batch_.push_back({s.pending(), static_cast<int32_t>(s.cache().size()), s.id(), true});
      s.cache().push_back(s.pending());
      out_slot_.push_back(s.id());
    }
    n_decode = batch_.size();
  }
  // Then prompt tokens, oldest admission first, within the batch budget.
  std::vector<Slot*> prefill;
  for (Slot& s : slots_) {
    if (s.state() == Slot::State::kPrefill) prefill.push_back(&s);
  }
  std::sort(prefill.begin(), prefill.end(), [](Slot* a, Slot* b) { return a->last_used() < b->last_used(); });
  size_t budget = static_cast<size_t>(std::max<int64_t>(params_.n_batch, 1));
  budget = budget > batch_.size() ? budget - batch_.size() : 1;
  uint64_t n_prompt = 0;
  for (Slot* s : prefill) {
    if (budget == 0) break;
    auto left = s->prompt_left();
    const bool embedding = s->task().params->embedding;
    size_t take = std::min({left.size(), budget, embedding ? kEmbeddingChunk : left.size()});
    if (!causal_) {
      // A bidirectional input must be seen whole in one pass: all of it now, or next step.
      if (left.size() > budget) continue;
      take = left.size();
    }
    for (size_t i = 0; i < take; ++i) {
      const bool last = i + 1 == left.size();
      const bool out = embedding || last;
      batch_.push_back({left[i], static_cast<int32_t>(s->cache().size()), s->id(), out});
      s->cache().push_back(left[i]);
      if (out) out_slot_.push_back(s->id());
    }
    s->prompt_advance(take);
    budget -= take;
    n_prompt += take;
  }
  for (Slot& s : slots_) n_active += s.idle() ? 0 : 1;
  active_.store(n_active);
  if (batch_.empty()) return;

  const auto t0 = std::chrono::steady_clock::now();
  size_t n_accepted = 0;
  Status st = ctx_->decode(batch_);
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!st.ok()) {
    log::error("scheduler: forward pass failed: {}", st.to_string());
    for (Slot& s : slots_) {
      bool in_batch =
          std::any_of(batch_.begin(), batch_.end(), [&](const model::BatchToken& t) { return t.seq == s.id(); });
      if (in_batch) s.abort(FinishReason::kError, st, /*drop_cache=*/true);
    }
    for (auto& d : drafts_) d.clear();
  } else {
    for (int i = 0; i < ctx_->n_outputs(); ++i) {
      Slot& s = slots_[static_cast<size_t>(out_slot_[static_cast<size_t>(i)])];
      if (params_.draft_ngram && !drafts_[static_cast<size_t>(s.id())].empty()) {
        const size_t n_guess = drafts_[static_cast<size_t>(s.id())].size();
        n_accepted += take_drafted(s, i);
        i += static_cast<int>(n_guess);  // the slot's rows: its pending token's, then one per guess
        continue;
      }
      if (s.idle()) continue;
      if (s.task().params->embedding) {
        s.on_hidden(ctx_->hidden(i));
      } else {
        s.on_logits(ctx_->logits(i));
      }
    }
  }
  prompt_tokens_ += n_prompt;
  generated_tokens_ += n_decode + n_accepted;
  ++steps_;
  if (n_decode > 0 && dt > 0) {
    const double rate = static_cast<double>(n_decode + n_accepted) / dt;
    const double prev = tok_per_s_.load();
    tok_per_s_.store(prev == 0.0 ? rate : 0.8 * prev + 0.2 * rate);
  }
  int64_t kv = 0;
  n_active = 0;
  for (const Slot& s : slots_) {
    kv += static_cast<int64_t>(s.cache().size());
    n_active += s.idle() ? 0 : 1;
  }
  kv_tokens_.store(kv);
  active_.store(n_active);
}

void Scheduler::add_drafted_decodes() {
  size_t n_gen = 0;
  for (const Slot& s : slots_) n_gen += s.state() == Slot::State::kGenerate ? 1 : 0;
  // The guesses share what n_batch leaves after one token per generating slot, so the batch is
  // one forward chunk. That also keeps a rollback inside a sliding window's ring (n_swa +
  // n_batch rows, kv_cache.h): a slot writes at most n_batch positions past its accepted
  // length, so the rows the next position's window reads are still held.
  const auto n_batch = static_cast<size_t>(std::clamp<int64_t>(params_.n_batch, 1, shared_.n_ctx));
  size_t room = n_batch > n_gen ? n_batch - n_gen : 0;
  // Prompts being read keep at least half of it.
  if (std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.state() == Slot::State::kPrefill; }))
    room /= 2;
  for (Slot& s : slots_) {
    if (s.state() != Slot::State::kGenerate) continue;
    auto& guess = drafts_[static_cast<size_t>(s.id())];
    guess.clear();
    const auto pos = static_cast<int64_t>(s.cache().size());
    batch_.push_back({s.pending(), static_cast<int32_t>(pos), s.id(), true});
    s.cache().push_back(s.pending());
    out_slot_.push_back(s.id());
    // Never past the context: the last guess goes at most at n_ctx - 1.
    const int64_t k = std::min<int64_t>({params_.draft_max, static_cast<int64_t>(room), shared_.n_ctx - pos - 1});
    if (k <= 0) continue;
    auto proposed = drafter_.propose(s.cache(), static_cast<int>(k));  // the prompt and the output so far
    if (!proposed.ok()) continue;
    guess = std::move(proposed).value();
    if (guess.size() > static_cast<size_t>(k)) guess.resize(static_cast<size_t>(k));
    for (size_t i = 0; i < guess.size(); ++i) {
      batch_.push_back({guess[i], static_cast<int32_t>(pos + 1 + static_cast<int64_t>(i)), s.id(), true});
      out_slot_.push_back(s.id());
    }
    s.cache().insert(s.cache().end(), guess.begin(), guess.end());
    room -= guess.size();
    draft_proposed_ += guess.size();
  }
}

size_t Scheduler::take_drafted(Slot& s, int row) {
  auto& guess = drafts_[static_cast<size_t>(s.id())];
  // The pending token's position + 1: the cache without the guesses.
  const size_t base = s.cache().size() - guess.size();
  size_t kept = 0;
  // Row k holds the logits after the pending token and guess[0..k). Each row is sampled as the
  // one-token step would sample it: the cache holds exactly the accepted tokens (on_logits
  // checks the context against it), and the slot's sampler, constraint and stop strings see
  // the tokens in order. A finished slot takes no further rows.
  for (size_t k = 0;; ++k) {
    s.cache().resize(base + k);
    if (s.idle()) break;
    s.on_logits(ctx_->logits(row + static_cast<int>(k)));
    if (s.state() != Slot::State::kGenerate || k == guess.size() || s.pending() != guess[k]) break;
    ++kept;
  }
  // Rows past the accepted length are left in the cache and overwritten by later positions.
  draft_accepted_ += kept;
  guess.clear();
  return kept;
}

}  // namespace hearth::engine
