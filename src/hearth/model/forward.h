// Forward: one chunk of a batch on its way through the model, as the steps a transformer
// block is made of (norm, qkv, rope, store, attend, output, residual, FFN), one call each.
// The steps read and write the Context's activation buffers, which are allocated once when
// the context is created; a step never allocates.
//
// A block function (BlockFn, model_weights.h) composes the steps of one layer, one line a step.
// How a family whose block differs plugs in (Gemma's extra norms, Phi's fused QKV):
//   1. if it needs a step that is not here (a post-attention norm, a split of fused qkv), add
//      it to Forward as one more small method, with its shapes in the comment;
//   2. write its block function in its arch_<name>.cpp, e.g.
//        void block_gemma2(Forward& f, const LayerWeights& l, int64_t il) {
//          f.attn_norm(l); f.qkv(l); f.rope(); f.store_kv(il); f.attend(il); f.attn_output(l);
//          f.post_attn_norm(l); f.add_attn(); ...
//        }
//   3. return it from the family's Architecture::block chooser (architecture.cpp's table).
// The shared loop (Context::decode_chunk) never tests the family; hp.* flags choose a block
// once at load, not a branch per layer.
#pragma once

#include <cstdint>
#include <span>

#include "hearth/kernels/kernel_table.h"
#include "hearth/model/context.h"
#include "hearth/model/model_weights.h"

namespace hearth::model {

class Forward {
 public:
  Forward(Context& c, std::span<const BatchToken> batch);

  // x = token_embd[token]   x: [n][n_embd]
  // With absolute positions (bert): x = LN(token_embd[token] + token_types[0] + position_embd[pos]).
  void embed();
  // cur = x   (post-LN blocks feed the residual stream itself to attention and FFN)
  void residual_as_input();
  // x = LayerNorm(x) * w + b   (post-LN, bert)
  void norm_residual(const TensorView& w, const TensorView& b);
  // cur = norm(x) * attn_norm (+ bias)   cur: [n][n_embd]
  void attn_norm(const LayerWeights& l);
  // q = cur · Wq (+ bq)   [n][n_head * head_dim];   k, v = cur · Wk, Wv (+ bk, bv)   [n][n_head_kv * head_dim]
  void qkv(const LayerWeights& l);
  // qkv = cur · Wqkv   [n][(n_head + 2 n_head_kv) * head_dim], split into q, k, v (fused, phi3)
  void qkv_fused(const LayerWeights& l);
  // q, k = rms_norm(each head of q, k) * attn_q_norm, attn_k_norm   [head_dim] per head (qwen3, gemma3)
  void qk_norm(const LayerWeights& l);
  // Rotates q and k by each token's position (RoPE, Su et al. 2021).
  void rope();
  // As rope(), with layer il's table: the sliding layers' own base when the model has one (gemma3).
  void rope(int64_t il);
  // Writes k and v into the cache rows of layer il at each token's sequence and position.
  void store_kv(int64_t il);
  // attn = softmax(q · K^T * hp.kq_scale()) · V over cache rows 0..pos of the token's
  // sequence (causal), per run of consecutive tokens of one sequence.   attn: [n][n_head * head_dim]
  // With hp.causal false (bert) every token of a run sees the rows 0..the run's last position:
  // the whole sequence, which must then be in this chunk.
  // On a sliding layer (hp.is_swa) only positions pos - n_swa + 1 .. pos, read from the layer's
  // ring (kv_cache.h: position p in row p % rows); with hp.attn_softcap the
  // scores are soft-capped before the softmax (attention_softcap.cpp).
  void attend(int64_t il);
  // o = attn · Wo (+ bo)   [n][n_embd]
  void attn_output(const LayerWeights& l);
  // o = norm(o) * post_attention_norm   (gemma)
  void post_attn_norm(const LayerWeights& l);
  // x += o
  void add_attn();
  // cur = norm(x) * ffn_norm (+ bias)
  void ffn_norm(const LayerWeights& l);
  // ffn_out = FFN(cur)   [n][n_embd]: SwiGLU, or a Mixtral-style mixture of experts.
  void ffn(const LayerWeights& l);
  // gu = cur · Wup   [n][2 n_ff] (fused rows: gate, up);  ffn_out = (silu(gate) * up) · Wdown   (phi3)
  void ffn_fused(const LayerWeights& l);
  // ffn_out = (gelu(cur · Wgate) * (cur · Wup)) · Wdown   (gemma; GELU as the reference computes it)
  void ffn_geglu(const LayerWeights& l);
  // ffn_out = gelu(cur · Wup + b_up) · Wdown + b_down   (bert; GELU as the reference computes it)
  void ffn_gelu(const LayerWeights& l);
  // ffn_out = norm(ffn_out) * post_ffw_norm   (gemma)
  void post_ffn_norm(const LayerWeights& l);
  // x += ffn_out
  void add_ffn();
  // For the tokens that want them: hidden = norm(x) * output_norm, logits = hidden · Wout.
  // A model without an output matrix (bert) gives hidden = x and no logits.
  void output_head();

 private:
  void matmul(const TensorView& w, const float* x, int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride);
  // y += scale * (alpha/rank) * B (A x) for the rows whose sequence has an adapter for w.
  void add_lora(const TensorView& w, const float* x, int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride);
  void norm(float* y, const float* x, const TensorView& w, const TensorView& b);
  void rope_with(const float* table);
  void attend_window(int64_t il);
  void attend_softcap(int64_t il);  // attention_softcap.cpp
  void ffn_dense(const LayerWeights& l);
  void ffn_moe(const LayerWeights& l);

  Context& c_;
  const HParams& hp_;
  const kernels::KernelTable& kt_;
  std::span<const BatchToken> batch_;
  int64_t n_;  // tokens in this chunk
};

// The blocks shared by several families.
// Pre-norm, sequential residual (llama, qwen2, stablelm):
//   x += attn(norm(x));  x += ffn(norm(x))
void block_prenorm(Forward& f, const LayerWeights& l, int64_t il);
// Pre-norm, parallel residual (stablelm 2 12B, whose layers have no ffn_norm):
//   x += attn(norm(x)) + ffn(norm(x)), the FFN reading the same normed input as attention
void block_parallel(Forward& f, const LayerWeights& l, int64_t il);

}  // namespace hearth::model
