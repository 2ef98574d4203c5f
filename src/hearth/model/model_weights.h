// The decoder-only transformer that every supported architecture maps onto: hyper-parameters,
// per-layer weights (absent optional weights are invalid views) and architecture traits.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "hearth/kernels/kernel_table.h"
#include "hearth/model/tensor_view.h"

namespace hearth::model {

enum class NormType { kRms, kLayer };

// How an embedding model pools its token states into one vector (<arch>.pooling_type).
enum class PoolingType { kNone = 0, kMean = 1, kCls = 2, kLast = 3 };

struct HParams {
  std::string arch;  // general.architecture
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;  // <arch>.context_length
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;  // n_embd / n_head unless attention.key_length says otherwise
  int64_t n_rot = 0;     // rotary dims per head (<= head_dim)
  int64_t n_ff = 0;
  int64_t n_expert = 0;  // 0 for dense models
  int64_t n_expert_used = 0;
  float norm_eps = 1e-5f;
  NormType norm = NormType::kRms;
  kernels::RopeMode rope_mode = kernels::RopeMode::kNorm;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;    // linear scaling: 1 / factor
  // YaRN (rope.scaling.type "yarn"; rope_table.h): the ramp's extrapolation weight (0: no YaRN),
  // its bounds in rotations over the original context, and the cos/sin magnitude.
  float rope_yarn_ext_factor = 0.0f;
  float rope_yarn_beta_fast = 32.0f;
  float rope_yarn_beta_slow = 1.0f;
  int64_t rope_n_ctx_orig = 0;      // rope.scaling.original_context_length (0: context_length)
  float rope_attn_factor = 1.0f;    // multiplies cos and sin: YaRN's 1 + 0.1 ln(factor)
  bool parallel_residual = false;  // attention and FFN read the same normed input
  float attn_scale = 0.0f;         // scale of q · k; 0: 1 / sqrt(head_dim)
  float embd_scale = 1.0f;         // the input embedding row is multiplied by this (gemma: sqrt(n_embd))
  float attn_softcap = 0.0f;       // > 0: attention scores s -> cap * tanh(s / cap) (gemma2)
  float final_softcap = 0.0f;      // > 0: logits l -> cap * tanh(l / cap) (gemma2)
  // Sliding-window attention: a query at position p of a sliding layer sees keys p - n_swa + 1 .. p.
  int64_t n_swa = 0;                // 0: no layer slides
  std::vector<char> swa_layers;     // [n_layer] 1 = the layer slides
  float rope_freq_base_swa = 0.0f;  // > 0: the sliding layers' own RoPE base, with no scaling (gemma3)
  // Encoders (bert): every token of a sequence sees every other one, so a sequence must be
  // decoded whole in one batch; the model has no LM head and its output is the hidden state.
  bool causal = true;
  PoolingType pooling = PoolingType::kNone;  // meaningful for embedding models only

  float kq_scale() const { return attn_scale > 0.0f ? attn_scale : 1.0f / std::sqrt(static_cast<float>(head_dim)); }
  bool is_swa(int64_t il) const { return n_swa > 0 && swa_layers[static_cast<size_t>(il)] != 0; }

  int64_t n_embd_q() const { return n_head * head_dim; }
  int64_t n_embd_kv() const { return n_head_kv * head_dim; }
};

struct LayerWeights {
  TensorView attn_norm, attn_norm_b;      // [n_embd]
  TensorView wq;                          // [n_embd, n_head * head_dim]
  TensorView wqkv;                        // fused [n_embd, (n_head + 2 n_head_kv) * head_dim]: rows q, k, v (phi3)
  TensorView wk, wv;                      // [n_embd, n_head_kv * head_dim]
  TensorView wo;                          // [n_head * head_dim, n_embd]
  TensorView bq, bk, bv, bo;              // optional biases
  TensorView attn_q_norm, attn_k_norm;    // per-head RMSNorm of q and k [head_dim] (qwen3, gemma3)
  TensorView ffn_norm, ffn_norm_b;        // [n_embd]; absent with a parallel residual
  TensorView post_attention_norm;         // [n_embd] norm of the attention output (gemma)
  TensorView post_ffw_norm;               // [n_embd] norm of the FFN output (gemma)
  TensorView ffn_gate, ffn_up;            // [n_embd, n_ff]; phi3's fused ffn_up [n_embd, 2 n_ff]: rows gate, up
  TensorView ffn_down;                    // [n_ff, n_embd]
  TensorView ffn_up_b, ffn_down_b;        // optional FFN biases [n_ff], [n_embd] (bert)
  TensorView attn_out_norm, attn_out_norm_b;    // [n_embd] post-LN after the attention residual (bert)
  TensorView layer_out_norm, layer_out_norm_b;  // [n_embd] post-LN after the FFN residual (bert)
  TensorView ffn_gate_inp;                // MoE router [n_embd, n_expert]
  TensorView ffn_gate_exps, ffn_up_exps;  // [n_embd, n_ff, n_expert]
  TensorView ffn_down_exps;               // [n_ff, n_embd, n_expert]
};

class Forward;
// One layer of the forward pass, composed from Forward's steps (forward.h). Each family picks
// its block once at load (Architecture::block); the layer loop calls it without branches.
using BlockFn = void (*)(Forward& f, const LayerWeights& l, int64_t il);

struct ModelWeights {
  TensorView token_embd;                  // [n_embd, n_vocab]
  TensorView output_norm, output_norm_b;  // [n_embd]
  TensorView output;                      // [n_embd, n_vocab]; token_embd when tied
  TensorView rope_freqs;                  // optional [n_rot / 2] frequency divisors (Llama 3)
  // Absolute-position encoders (bert): x = token_embd[id] + token_types[0] + position_embd[pos],
  // then LayerNorm(token_embd_norm). Invalid views for the decoder families.
  TensorView token_types;                         // [n_embd, n_token_types]
  TensorView position_embd;                       // [n_embd, n_ctx_train]
  TensorView token_embd_norm, token_embd_norm_b;  // [n_embd]
  std::vector<LayerWeights> layers;
};

}  // namespace hearth::model
