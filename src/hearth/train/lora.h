// LoRA finetuning (Hu et al. 2021) of a frozen llama base: each target matrix W [rows][cols]
// gets factors A [rank][cols] and B [rows][rank], and the model runs with
// W' = W + s B A, s = alpha / rank. The trainer keeps one f32 copy of the weights, W' (updated in
// place by s (B'A' - B A) after each step). The backward pass never forms a weight gradient: for
// a target with input x and output gradient dy it takes u = x A^T, dB = s dy^T u, du = dy B and
// dA = s du^T x (LoRA-native, O(n r (rows + cols)) per matrix), and the input gradient goes
// through W' as usual. lora_gradient(..., exact) also has the old path, dL/dW' in full and
// dB = s dL/dW' A^T, dA = s B^T dL/dW', as the oracle for tests.
// The adapter is written in the GGUF LoRA layout llama.cpp reads
// (general.type = adapter, adapter.type = lora, adapter.lora.alpha, <tensor>.lora_a with
// ne {cols, rank} and <tensor>.lora_b with ne {rank, rows}).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/core/thread_pool.h"
#include "hearth/train/adamw.h"
#include "hearth/train/base_model.h"
#include "hearth/train/llama_graph.h"

namespace hearth::train {

struct LoraOptions {
  int64_t rank = 8;
  float alpha = 16.0f;
  std::vector<std::string> targets = {"q", "k", "v", "o", "gate", "up", "down"};
  AdamWConfig adamw{.lr = 1e-3f, .weight_decay = 0.0f, .warmup_steps = 10, .total_steps = 200};
  int64_t batch = 8;
  int64_t seq_len = 128;
  uint64_t seed = 1;
  int64_t max_eval_windows = 32;
};

class LoraTrainer final : private LinearGradSink {
 public:
  // Masks (optional, one byte per token): 0 marks a token that is context only and never a
  // target (chat prompts: only the assistant's tokens are trained). Empty: every token.
  static Result<std::unique_ptr<LoraTrainer>> create(BaseModel base, const LoraOptions& opts,
                                                     std::vector<int32_t> train_tokens,
                                                     std::vector<int32_t> eval_tokens, int n_threads,
                                                     std::vector<uint8_t> train_mask = {},
                                                     std::vector<uint8_t> eval_mask = {});
  double train_step();  // mean training loss per token
  double eval_loss(int64_t max_windows = 0, int64_t* n_scored = nullptr);
  int64_t step() const { return adamw_.step; }
  int64_t tokens_per_step() const { return opts_.batch * opts_.seq_len; }
  const LlamaParams& params() const { return params_; }
  // Base + the scaled adapter, in the trainer's layout (for export as a merged model).
  const std::vector<float>& merged();
  Status write_adapter(const std::string& path, const std::string& base_name) const;
  // The adapter's gradient (d(mean loss)/d factors, in the factors' layout) on the training
  // windows starting at `starts`, by the LoRA-native backward or (exact = true) through the
  // full dL/dW'. For tests; changes nothing.
  std::vector<float> lora_gradient(const std::vector<size_t>& starts, bool exact);

 private:
  struct Slot {
    std::string name;  // the base tensor's name
    size_t w;          // its offset in the weights
    int64_t rows, cols;
    size_t a, b;  // offsets of A [rank][cols] and B [rows][rank] in lora_
  };
  LoraTrainer(BaseModel base, const LoraOptions& opts, int n_threads);
  // W' += s (B A - B_prev A_prev) for every target; `prev` is the factors before the update.
  void update_merged(const std::vector<float>& prev);
  // LinearGradSink: the LoRA-native gradient of one target (others are ignored).
  void linear(size_t offset, const float* x, const float* dy, int64_t n, int64_t rows, int64_t cols) override;
  // Fills grad_lora_ (scaled by s) for the current batch; returns the summed loss.
  double gradients(int64_t counted, bool exact);
  // Inputs and targets of windows starting at `starts` (masked targets -1); returns the number
  // of targets that count.
  int64_t build_batch(const std::vector<int32_t>& tokens, const std::vector<uint8_t>& mask,
                      const std::vector<size_t>& starts);

  LoraOptions opts_;
  LlamaParams params_;
  std::vector<float> w_;  // W' = the frozen base + s B A
  std::vector<Slot> slots_;
  std::map<size_t, size_t> slot_at_;  // weight offset -> index in slots_
  std::vector<float> lora_, grad_lora_, prev_lora_, tmp_;
  std::vector<float> at_, u_, dyt_, du_, dut_;  // scratch of linear()
  AdamWState adamw_;
  ThreadPool pool_;
  Ops ops_;
  LlamaGraph graph_;
  std::vector<int32_t> train_, eval_, inputs_, targets_;
  std::vector<uint8_t> train_mask_, eval_mask_;
  SplitMix64 data_rng_;
  float scale_ = 2.0f;
};

}  // namespace hearth::train
