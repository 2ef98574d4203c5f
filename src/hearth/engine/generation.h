// The contract between request handlers and the scheduler: what a generation (or embedding)
// request asks for, the events it produces, and the channel that carries them back.
// A RequestChannel is shared by the handler thread (reader) and the scheduler (writer).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/engine/json_schema.h"
#include "hearth/sampling/sampler_config.h"

namespace hearth::engine {

struct GenerationParams {
  std::vector<int32_t> prompt;                    // token ids (not empty)
  sampling::SamplerConfig sampler;                // eog_tokens are filled in by the scheduler
  int64_t max_tokens = -1;                        // -1: until end of generation or the context is full
  std::vector<std::string> stop;                  // stop strings (not part of the output)
  int top_logprobs = -1;                          // -1: no logprobs; n >= 0: the chosen token and the n best
  std::shared_ptr<const JsonSchema> json_schema;  // non-null: constrained to this schema
  int n_choices = 1;                              // independent completions of the same prompt
  bool embedding = false;                         // mean-pooled final hidden state instead of generation
  bool ignore_eos = false;                        // keep generating past end-of-generation tokens (benchmarks)
};

enum class FinishReason { kStop, kLength, kCancelled, kError };

struct TokenInfo {
  int32_t id = 0;
  std::string piece;  // the token's bytes (may be part of a UTF-8 character)
  float logprob = 0.0f;
  std::vector<std::pair<std::string, float>> top;  // (piece, logprob), best first
  std::vector<int32_t> top_ids;
};

struct GenerationEvent {
  enum class Kind { kDelta, kFinish, kEmbedding };
  Kind kind = Kind::kDelta;
  int index = 0;                              // choice index
  std::string text;                           // kDelta: whole UTF-8 characters of new output (may be empty)
  std::vector<TokenInfo> tokens;              // kDelta: tokens behind this delta (logprobs when asked)
  FinishReason finish = FinishReason::kStop;  // kFinish
  Status error;                               // kFinish with kError
  int64_t n_prompt = 0;                       // kFinish / kEmbedding: prompt tokens
  int64_t n_cached = 0;                       // kFinish: prompt tokens reused from the slot's cache
  int64_t n_generated = 0;                    // kFinish: generated tokens
  std::vector<float> embedding;               // kEmbedding
};

class RequestChannel {
 public:
  void push(GenerationEvent e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(e));
    }
    cv_.notify_all();
  }

  // Moves all pending events into `out`; waits up to `timeout` for the first one. Returns
  // false when nothing arrived.
  bool wait(std::vector<GenerationEvent>& out, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
    while (!events_.empty()) {
      out.push_back(std::move(events_.front()));
      events_.pop_front();
    }
    return true;
  }

  // The client went away: the scheduler frees the slot at its next step.
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<GenerationEvent> events_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace hearth::engine
