// The Llama forward pass with saved activations, and its backward pass (reverse-mode, written
// out by hand op by op). Same math and conventions as hearth's inference forward
// (model/context.cpp, llama: pre-norm RMSNorm, RoPE on adjacent pairs, GQA, SwiGLU), so that
// an exported model's logits equal these.
#pragma once

#include <cstdint>
#include <vector>

#include "hearth/train/llama_params.h"
#include "hearth/train/ops.h"

namespace hearth::train {

// Takes each matrix's input and output gradient in the backward pass (LoRA's factors get their
// gradients from these without the matrix's own gradient ever being formed).
class LinearGradSink {
 public:
  virtual ~LinearGradSink() = default;
  // The matrix at `offset` computed y[n][rows] = x[n][cols] · W^T; dy = d(loss)/dy.
  virtual void linear(size_t offset, const float* x, const float* dy, int64_t n, int64_t rows, int64_t cols) = 0;
};

class LlamaGraph {
 public:
  LlamaGraph(const LlamaParams& params, Ops& ops) : p_(params), ops_(ops) {}

  // Runs n_seq sequences of seq_len tokens (inputs [n_seq][seq_len], each starting at
  // position 0), keeping what the backward needs. logits() then holds [n][n_vocab].
  void forward(const float* w, const int32_t* inputs, int64_t n_seq, int64_t seq_len);
  const std::vector<float>& logits() const { return logits_; }
  // After forward(): layer il's input [n][n_embd] (il == n_layer: the final hidden state before
  // the output norm), and its FFN activation silu(gate) * up [n][n_ff]. For pruning statistics.
  const std::vector<float>& layer_input(int64_t il) const {
    return il < static_cast<int64_t>(acts_.size()) ? acts_[static_cast<size_t>(il)].x_in : x_fin_;
  }
  const std::vector<float>& ffn_activation(int64_t il) const { return acts_[static_cast<size_t>(il)].h; }
  int64_t n_tokens() const { return n_; }

  // After forward(): the summed cross-entropy against targets [n_seq][seq_len]. With `grad`
  // non-null, adds grad_scale * d(summed loss)/dw into grad (and consumes the logits). With
  // `sink`, every matrix's (x, grad_scale * dy) goes to it as well; `grad` may then be null
  // (no weight gradient at all: the frozen base of LoRA).
  double backward(const float* w, const int32_t* targets, float* grad, float grad_scale,
                  LinearGradSink* sink = nullptr);

  // After forward(): distillation (Hinton et al. 2015) against teacher_logits [n][n_vocab]:
  // (1 - alpha) * cross-entropy + alpha * T^2 * KL(teacher_T || student_T), summed; with `grad`,
  // adds grad_scale * its gradient into grad.
  double backward_distill(const float* w, const int32_t* targets, const float* teacher_logits, float temperature,
                          float alpha, float* grad, float grad_scale);

  // forward + backward over windows [n_seq][seq_len + 1] (input tokens, then the next token
  // as target): the packed-sequence training step.
  double step(const float* w, const int32_t* windows, int64_t n_seq, int64_t seq_len, float* grad, float grad_scale);

 private:
  struct LayerActs {
    std::vector<float> x_in, xn1, q, k, v, probs, att, x_mid, xn2, g, u, h;
  };
  void resize(int64_t n_seq, int64_t seq_len);
  // The backward pass from d(loss)/d(logits), held in logits_.
  void backward_from_logits(const float* w, float* grad, LinearGradSink* sink = nullptr);

  const LlamaParams& p_;
  Ops& ops_;
  int64_t n_seq_ = 0, seq_len_ = 0, n_ = 0;
  std::vector<int32_t> inputs_, targets_;
  std::vector<float> rope_cs_;
  int64_t rope_len_ = -1;
  std::vector<LayerActs> acts_;
  std::vector<float> x_fin_, xnf_, logits_;
  // Backward scratch.
  std::vector<float> dx_, dxn_, datt_, dq_, dk_, dv_, dg_, du_, dh_;
  std::vector<float> wt_;  // every matrix transposed, at its own offset (forward() fills it)
};

}  // namespace hearth::train
