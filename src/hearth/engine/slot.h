// Slot: one sequence of the shared context (one KV-cache lane) and the generation running in
// it: sampler, stop strings, UTF-8 assembly, optional JSON constraint and logprobs. The
// scheduler owns the slots and calls them from its single thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/engine/generation.h"
#include "hearth/engine/json_constraint.h"
#include "hearth/model/model_weights.h"
#include "hearth/model/lora_adapter.h"
#include "hearth/sampling/sampler.h"
#include "hearth/sampling/stop_string_matcher.h"
#include "hearth/tokenizer/tokenizer.h"

namespace hearth::engine {

// A queued unit of work: one choice of a request.
struct Task {
  std::shared_ptr<RequestChannel> channel;
  std::shared_ptr<const GenerationParams> params;
  int index = 0;  // choice index
  // The LoRA adapters (and scales) this task runs with; empty: the base model.
  std::vector<model::LoraUse> lora;
};

// Whether two adapter sets are the same adapters with the same scales, in the same order (a
// slot's cached rows computed with one set are reusable only for the same set).
bool same_lora(const std::vector<model::LoraUse>& a, const std::vector<model::LoraUse>& b);

// Read-only data shared by all slots.
struct SlotShared {
  const tokenizer::Tokenizer* tokenizer = nullptr;
  std::vector<std::string> pieces;  // token_to_piece of every id
  std::vector<int32_t> eog;         // end-of-generation ids
  int64_t n_ctx = 0;                // positions per slot
  int64_t n_embd = 0;
  // How an embedding request pools its token states: mean (and decoder models), the first
  // token's (CLS), or the last token's.
  model::PoolingType pooling = model::PoolingType::kMean;
};

class Slot {
 public:
  enum class State { kIdle, kPrefill, kGenerate };

  Slot(int id, const SlotShared& shared) : id_(id), shared_(&shared) {}

  int id() const { return id_; }
  State state() const { return state_; }
  bool idle() const { return state_ == State::kIdle; }
  const Task& task() const { return task_; }
  uint64_t last_used() const { return last_used_; }
  // Tokens whose KV rows are valid in this slot's sequence, by position.
  std::vector<int32_t>& cache() { return cache_; }
  const std::vector<int32_t>& cache() const { return cache_; }

  // Starts a task; the first n_keep cached rows are reused (n_keep < prompt size). Errors
  // (bad sampler settings, bad schema) are reported on the task's channel and leave the slot
  // idle.
  void start(Task task, int64_t n_keep, uint64_t tick);

  // Prompt tokens still to evaluate.
  std::span<const int32_t> prompt_left() const;
  // Marks n prompt tokens as put into the batch (and into cache()).
  void prompt_advance(size_t n) { prompt_pos_ += n; }
  bool prompt_done() const { return prompt_pos_ >= task_.params->prompt.size(); }
  // The token to decode in this step (kGenerate).
  int32_t pending() const { return pending_; }

  // Generation: the logits after the last prompt token or the pending token. Samples, emits
  // a delta and either sets the next pending token or finishes the slot.
  void on_logits(std::span<const float> logits);
  // Embedding: adds one prompt token's final hidden state; emits the embedding when the
  // prompt is done.
  void on_hidden(std::span<const float> hidden);

  // Ends the task early (client gone, decode failure). The cache is kept unless `drop_cache`.
  void abort(FinishReason reason, Status error, bool drop_cache);

  int64_t n_generated() const { return n_generated_; }

 private:
  Status mask(std::span<sampling::TokenCandidate> candidates);
  bool token_allowed(int32_t id) const;
  void emit(std::string text, std::vector<TokenInfo> tokens);
  void finish(FinishReason reason, Status error = {});

  int id_;
  const SlotShared* shared_;
  State state_ = State::kIdle;
  Task task_;
  std::vector<int32_t> cache_;
  size_t prompt_pos_ = 0;
  int64_t n_cached_ = 0;
  int64_t n_generated_ = 0;
  int32_t pending_ = 0;
  uint64_t last_used_ = 0;
  std::optional<sampling::Sampler> sampler_;
  std::optional<sampling::StopStringMatcher> stops_;
  std::optional<tokenizer::IncrementalDecoder> decoder_;
  std::optional<JsonConstraint> json_;
  std::vector<double> embd_sum_;
  int64_t embd_n_ = 0;
  std::vector<int32_t> order_;  // scratch for the mask
  std::vector<char> allowed_;
  std::array<bool, 256> first_byte_ok_{};  // which first bytes the constraint accepts now
  bool first_byte_known_ = false;
};

}  // namespace hearth::engine
