// `qwen3` and `qwen3moe`: Qwen3 dense and mixture of experts. Llama's block with no q/k/v
// biases, a per-head RMSNorm on q and k (attn_q_norm, attn_k_norm [head_dim]) before NeoX
// RoPE, and head_dim from attention.key_length (n_head * head_dim may differ from n_embd).
// The MoE FFN routes as Mixtral does (softmax over all experts, top-k, renormalised), with
// experts of expert_feed_forward_length.
#include "hearth/model/architecture.h"
#include "hearth/model/forward.h"

namespace hearth::model {
namespace {

Status load_qwen3_common(const gguf::GgufFile& f, HParams& hp, ModelWeights& w, WeightBinder& b) {
  auto eps = f.get_f32(hp.arch + ".attention.layer_norm_rms_epsilon");
  if (!eps.ok()) return eps.status().with_context(f.name());
  hp.norm_eps = *eps;
  hp.norm = NormType::kRms;
  hp.rope_mode = kernels::RopeMode::kNeox;
  HEARTH_TRY(bind_io_weights(hp, w, b, /*norm_bias=*/false));
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int il = 0; il < hp.n_layer; ++il) {
    LayerWeights& l = w.layers[static_cast<size_t>(il)];
    HEARTH_TRY(bind_attention(hp, l, b, il, /*qkv_bias=*/0, /*norm_bias=*/false));
    HEARTH_TRY(bind_qk_norm(hp, l, b, il));
    HEARTH_TRY(bind_ffn(hp, l, b, il, /*norm_bias=*/false, /*norm_optional=*/false));
  }
  return ok_status();
}

}  // namespace

Status load_qwen3(const gguf::GgufFile& f, HParams& hp, ModelWeights& w, WeightBinder& b) {
  HEARTH_TRY(read_common_hparams(f, hp));
  if (hp.n_expert != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: qwen3.expert_count is {}; a qwen3 model is dense (use qwen3moe)", f.name(), hp.n_expert);
  }
  return load_qwen3_common(f, hp, w, b);
}

Status load_qwen3moe(const gguf::GgufFile& f, HParams& hp, ModelWeights& w, WeightBinder& b) {
  HEARTH_TRY(read_common_hparams(f, hp));
  if (hp.n_expert == 0) {
    return make_error(ErrorCode::kInvalidArgument, "{}: metadata 'qwen3moe.expert_count' is missing or 0", f.name());
  }
  // The experts' width; feed_forward_length (a dense FFN's width) is not used.
  HEARTH_ASSIGN_OR_RETURN(hp.n_ff, read_expert_ff_length(f, hp));
  return load_qwen3_common(f, hp, w, b);
}

void block_qk_norm(Forward& f, const LayerWeights& l, int64_t il) {
  f.attn_norm(l);
  f.qkv(l);
  f.qk_norm(l);
  f.rope();
  f.store_kv(il);
  f.attend(il);
  f.attn_output(l);
  f.add_attn();
  f.ffn_norm(l);
  f.ffn(l);
  f.add_ffn();
}

BlockFn qwen3_block(const HParams&) { return &block_qk_norm; }

}  // namespace hearth::model
