// Forward and backward of the ops a Llama block is built from, on f32 rows ([n_tok][width]).
// Every backward *accumulates* into its gradient outputs (dx +=, dw +=), so that a tensor read
// by several ops (the normed input of q, k and v; a tied embedding) sums its gradients.
// Determinism: each output element is computed by one thread in a fixed order, so results do
// not depend on scheduling. Matmuls run on train/gemm.h; the other ops on the kernel table.
// References: RMSNorm (Zhang & Sennrich 2019), RoPE (Su et al. 2021), SwiGLU (Shazeer 2020).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kernel_table.h"

namespace hearth::train {

class Ops {
 public:
  Ops(const kernels::KernelTable& kt, ThreadPool& pool) : kt_(&kt), pool_(&pool) {}
  const kernels::KernelTable& kt() const { return *kt_; }
  ThreadPool& pool() { return *pool_; }

  // y[n][rows] = x[n][cols] · W^T for W [rows][cols], given wt = W^T [cols][rows] (see
  // transpose()): the product then streams rows of wt, as the register-blocked gemm wants.
  void linear(const float* wt, int64_t rows, int64_t cols, const float* x, int64_t n, float* y);
  // dx[n][cols] += dy · W;  dw[rows][cols] += dy^T · x. Either output may be null.
  void linear_backward(const float* w, int64_t rows, int64_t cols, const float* x, const float* dy, int64_t n,
                       float* dx, float* dw);
  // dst[cols][rows] = src[rows][cols]^T.
  void transpose(const float* src, int64_t rows, int64_t cols, float* dst);

  // y = x / rms(x) * w per row of width n.
  void rms_norm(const float* x, const float* w, int64_t n_tok, int64_t n, float eps, float* y);
  void rms_norm_backward(const float* x, const float* w, const float* dy, int64_t n_tok, int64_t n, float eps,
                         float* dx, float* dw);

  // In-place RoPE (adjacent pairs, as llama) on rows of n_head heads; token t of a row of
  // `seq_len` tokens sits at position t % seq_len. cs = [seq_len][head_dim] (cos, sin) pairs.
  void rope(float* x, int64_t n_tok, int64_t seq_len, int n_head, int head_dim, const std::vector<float>& cs);
  // The inverse rotation (the transpose of the forward Jacobian): dx = R(-theta) dy, in place.
  void rope_backward(float* dx, int64_t n_tok, int64_t seq_len, int n_head, int head_dim, const std::vector<float>& cs);

  struct AttnShape {
    int64_t n_seq, seq_len;
    int n_head, n_head_kv, head_dim;
  };
  // Causal grouped-query attention per sequence: q [n][n_head*hd], k, v [n][n_head_kv*hd],
  // probs [n_seq][n_head][seq_len][seq_len] (saved for the backward), out [n][n_head*hd].
  void attention(const AttnShape& s, const float* q, const float* k, const float* v, float* probs, float* out);
  // dq, dk, dv += the gradients given d_out.
  void attention_backward(const AttnShape& s, const float* q, const float* k, const float* v, const float* probs,
                          const float* d_out, float* dq, float* dk, float* dv);

  // h = silu(g) * u.
  void swiglu(const float* g, const float* u, int64_t count, float* h);
  void swiglu_backward(const float* g, const float* u, const float* dh, int64_t count, float* dg, float* du);

  // Cross-entropy of logits [n][n_vocab] against targets: returns the summed loss (double,
  // summed in token order) and, when `grad_scale` != 0, overwrites logits with
  // grad_scale * (softmax - onehot). A negative target is skipped (no loss, zero gradient).
  double cross_entropy(float* logits, const int32_t* targets, int64_t n, int64_t n_vocab, float grad_scale);
  // (1 - alpha) * cross_entropy + alpha * T^2 * KL(softmax(t/T) || softmax(z/T)) per token, summed;
  // with grad_scale != 0 the logits z become grad_scale * its gradient.
  double distill_loss(float* logits, const float* teacher, const int32_t* targets, int64_t n, int64_t n_vocab,
                      float temperature, float alpha, float grad_scale);

 private:
  float* scratch_floats(std::vector<float>& v, size_t n);
  const kernels::KernelTable* kt_;
  ThreadPool* pool_;
  std::vector<float> tmp_a_, tmp_c_;
};

// RoPE table for positions [0, seq_len): computed exactly as hearth's inference context does
// (theta_i = pos * base^(-2i/n_rot) by repeated f32 multiplication), so that logits match.
std::vector<float> rope_table(int64_t seq_len, int head_dim, float freq_base);

}  // namespace hearth::train
