// Scheduler: continuous batching over the slots of one shared model context.
//
// One thread owns the Context. Request handlers submit() work and read events from the
// returned channel; they never touch the model. Each step the scheduler
//   1. admits queued tasks into idle slots (the slot whose cache shares the longest prefix
//      with the prompt is chosen, and a longer prefix held by another slot is copied over),
//   2. drops the slots whose client went away (cancellation within one step),
//   3. builds one batch with the pending token of every generating slot plus a budget of
//      prompt tokens of the slots still reading their prompt, and runs one forward pass,
//   4. samples every slot that got logits and sends the new text back.
// With draft_ngram, step 3 also puts each generating slot's prompt-lookup guesses (speculative.h)
// after its pending token, and step 4 samples those rows in order, keeping the guesses the slot
// would have produced itself; the output is the same as without drafts.
// So the decode steps of all active sequences share one pass over the weights, and new
// prompts join between steps.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/engine/generation.h"
#include "hearth/engine/slot.h"
#include "hearth/engine/speculative.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/tokenizer/tokenizer.h"

namespace hearth::engine {

struct SchedulerParams {
  int n_slots = 1;        // parallel sequences
  int64_t n_ctx = 0;      // positions per slot (0: the model default)
  int64_t n_batch = 512;  // most tokens per forward pass
  int n_threads = 0;      // 0: physical cores
  kernels::KvTypes kv_type = kernels::KvType::kF16;  // K and V cache types
  uint64_t kv_limit_bytes = 0;  // 0: 75% of available memory
  size_t max_queue = 256;       // queued tasks beyond the busy slots (an embeddings batch of
                                // 256 inputs is 256 tasks: it must fit)
  // Speculative decoding with prompt-lookup drafts (NgramDrafter): up to draft_max guesses per
  // generating slot and step, within n_batch and the context. Off: one token per slot and step.
  bool draft_ngram = false;
  int draft_max = 8;
};

struct SchedulerStats {
  int n_slots = 0;
  int active_slots = 0;
  int64_t queue_depth = 0;
  int64_t kv_tokens = 0;    // cached positions over all slots
  int64_t kv_capacity = 0;  // n_ctx * n_slots
  uint64_t kv_bytes = 0;
  uint64_t prompt_tokens = 0;  // evaluated (not reused) prompt tokens
  uint64_t cached_prompt_tokens = 0;
  uint64_t generated_tokens = 0;
  uint64_t steps = 0;
  double decode_tokens_per_second = 0.0;  // smoothed over recent steps
  uint64_t draft_proposed = 0;  // draft tokens checked (draft_ngram)
  uint64_t draft_accepted = 0;  // draft tokens the model produced itself, kept
};

class Scheduler {
 public:
  static Result<std::unique_ptr<Scheduler>> create(const model::Model& model, const tokenizer::Tokenizer& tokenizer,
                                                   SchedulerParams params);
  // Stops the thread; running and queued requests finish with kCancelled.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues params.n_choices tasks. Errors: kInvalidArgument (empty prompt, bad token id),
  // kOutOfRange (the prompt does not fit a slot's context), kResourceExhausted (queue full).
  // `lora`: the adapters (loaded for this model) the request runs with; kInvalidArgument for
  // an adapter of another model or a scale that is not finite.
  Result<std::shared_ptr<RequestChannel>> submit(std::shared_ptr<const GenerationParams> params,
                                                 std::vector<model::LoraUse> lora = {});
  // Queues several requests (an embeddings batch) all at once or none: the same errors, and
  // kInvalidArgument when they need more tasks than max_tasks() (they could never fit).
  Result<std::vector<std::shared_ptr<RequestChannel>>> submit_all(
      std::vector<std::shared_ptr<const GenerationParams>> requests, std::vector<model::LoraUse> lora = {});
  // Tasks held at once, running and queued: --parallel + --max-queue.
  size_t max_tasks() const { return params_.max_queue + static_cast<size_t>(n_slots()); }

  SchedulerStats stats() const;
  int64_t n_ctx() const { return shared_.n_ctx; }
  int n_slots() const { return static_cast<int>(slots_.size()); }

 private:
  Scheduler() = default;
  Status check(const GenerationParams& params) const;
  Status check(const std::vector<model::LoraUse>& lora) const;
  void loop();
  void admit_locked();
  void step();
  // Puts every generating slot's pending token and its guesses into the batch (draft_ngram).
  void add_drafted_decodes();
  // Samples a drafted slot's rows from `row` on, in order, while they keep its guesses; the
  // slot's cache ends at the accepted length. Returns the guesses kept.
  size_t take_drafted(Slot& s, int row);

  std::unique_ptr<model::Context> ctx_;
  SlotShared shared_;
  std::vector<Slot> slots_;
  std::vector<std::vector<model::LoraUse>> slot_lora_;  // [slot] the adapters its cached rows were computed with
  SchedulerParams params_;
  bool causal_ = true;  // false for an encoder (bert): inputs are evaluated whole
  int64_t n_vocab_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  bool stop_ = false;
  std::thread thread_;
  uint64_t tick_ = 0;
  std::vector<model::BatchToken> batch_;
  std::vector<int> out_slot_;
  NgramDrafter drafter_;
  std::vector<std::vector<int32_t>> drafts_;  // [slot] this step's guesses (draft_ngram)

  std::atomic<int> active_{0};
  std::atomic<int64_t> kv_tokens_{0};
  std::atomic<uint64_t> prompt_tokens_{0}, cached_tokens_{0}, generated_tokens_{0}, steps_{0};
  std::atomic<uint64_t> draft_proposed_{0}, draft_accepted_{0};
  std::atomic<double> tok_per_s_{0.0};
};

}  // namespace hearth::engine
