// Architecture registry. Each supported architecture is one small file (arch_<name>.cpp) that
// reads its `<arch>.*` hyper-parameters, binds its tensors into ModelWeights and picks its
// layer's block function (forward.h); the steps of the forward pass are shared. Adding an
// architecture = one file plus one line in architecture.cpp; a family whose block differs
// writes its own block function in its file (see forward.h for how).
#pragma once

#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/gguf/gguf.h"
#include "hearth/model/model_weights.h"

namespace hearth::model {

struct Architecture {
  std::string_view name;  // general.architecture value
  Status (*load)(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& binder);
  // The layer's block function, chosen once after load (a family may pick by what load found).
  BlockFn (*block)(const HParams& hp);
};

const Architecture* find_architecture(std::string_view name);
std::vector<std::string_view> architecture_names();

// Shared helpers for architecture files.
// Reads the keys every decoder shares (context_length, embedding_length, block_count,
// feed_forward_length, attention.head_count[_kv], rope.*, expert_*), with clear errors.
Status read_common_hparams(const gguf::GgufFile& file, HParams& hp);
// Binds token_embd, output_norm(+_b), output (or ties it to token_embd), rope_freqs.
Status bind_io_weights(HParams& hp, ModelWeights& w, WeightBinder& b, bool norm_bias);
// Binds attention weights of layer il (biases as requested: 0 = absent, 1 = optional, 2 = required).
Status bind_attention(const HParams& hp, LayerWeights& l, WeightBinder& b, int il, int qkv_bias, bool norm_bias);
// Binds layer il's per-head q/k RMSNorm weights (attn_q_norm, attn_k_norm), both [head_dim].
Status bind_qk_norm(const HParams& hp, LayerWeights& l, WeightBinder& b, int il);
// <arch>.expert_feed_forward_length: the width of each expert (qwen3moe).
Result<int64_t> read_expert_ff_length(const gguf::GgufFile& file, const HParams& hp);
// Binds the FFN (dense SwiGLU, or Mixtral-style experts when hp.n_expert > 0).
Status bind_ffn(const HParams& hp, LayerWeights& l, WeightBinder& b, int il, bool norm_bias, bool norm_optional);

// Architecture entry points (one file each).
Status load_llama(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& b);
Status load_qwen2(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& b);
Status load_stablelm(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& b);
Status load_qwen3(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& b);
Status load_qwen3moe(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& b);
Status load_phi3(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& b);
Status load_gemma2(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& b);
Status load_gemma3(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& b);
Status load_bert(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& b);
// Block choosers: the pre-norm block (llama, qwen2); stablelm's, parallel when its layers have no ffn_norm.
BlockFn prenorm_block(const HParams& hp);
BlockFn stablelm_block(const HParams& hp);
BlockFn qwen3_block(const HParams& hp);   // pre-norm with q/k norm (qwen3, qwen3moe)
BlockFn phi3_block(const HParams& hp);    // pre-norm with fused qkv and fused gate+up
BlockFn gemma2_block(const HParams& hp);  // pre- and post-norms, GELU-gated FFN
BlockFn gemma3_block(const HParams& hp);  // gemma2's, with q/k norm
BlockFn bert_block(const HParams& hp);    // post-LN encoder block, GELU FFN, bidirectional attention

}  // namespace hearth::model
