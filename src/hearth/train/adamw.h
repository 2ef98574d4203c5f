// AdamW (Loshchilov & Hutter 2019) over the flat parameter vector, with linear warmup then
// cosine decay to min_lr_frac * lr, and clipping by the global gradient norm.
#pragma once

#include <cstdint>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/train/llama_params.h"

namespace hearth::train {

struct AdamWConfig {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
  float weight_decay = 0.1f;  // matrices only (not norms)
  float clip_norm = 1.0f;     // <= 0: no clipping
  int64_t warmup_steps = 20;
  int64_t total_steps = 1000;
  float min_lr_frac = 0.1f;
};

// Learning rate at `step` (0-based).
float scheduled_lr(const AdamWConfig& c, int64_t step);

struct AdamWState {
  std::vector<float> m, v;
  int64_t step = 0;  // updates applied so far
};

// sqrt(sum g^2), summed in index order in double (deterministic).
double grad_norm(const std::vector<float>& grad);

// One update: clips grad (in place), then updates w, state.m, state.v and state.step.
// Returns the gradient norm before clipping.
double adamw_update(const AdamWConfig& c, const LlamaParams& p, std::vector<float>& w, std::vector<float>& grad,
                    AdamWState& state, ThreadPool& pool);
// The same over a flat vector, every element decayed alike (LoRA factors).
double adamw_update_flat(const AdamWConfig& c, std::vector<float>& w, std::vector<float>& grad, AdamWState& state,
                         ThreadPool& pool);

}  // namespace hearth::train
