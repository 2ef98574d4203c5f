// `stablelm`: StableLM 2 / StableLM-3B. LayerNorm with bias, NeoX RoPE over the first
// rope.dimension_count dims of each head (partial rotary), optional q/k/v biases, and a
// parallel residual when the layer has no ffn_norm (StableLM 2 12B).
#include "hearth/model/architecture.h"
#include "hearth/model/forward.h"

namespace hearth::model {

Status load_stablelm(const gguf::GgufFile& f, HParams& hp, ModelWeights& w, WeightBinder& b) {
  HEARTH_TRY(read_common_hparams(f, hp));
  auto eps = f.get_f32("stablelm.attention.layer_norm_epsilon");
  if (!eps.ok()) return eps.status().with_context(f.name());
  hp.norm_eps = *eps;
  hp.norm = NormType::kLayer;
  hp.rope_mode = kernels::RopeMode::kNeox;
  HEARTH_TRY(bind_io_weights(hp, w, b, /*norm_bias=*/true));
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int il = 0; il < hp.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    if (b.has(p + "attn_q_norm.weight") || b.has(p + "attn_k_norm.weight")) {
      return make_error(ErrorCode::kUnimplemented, "{}: per-head q/k norms ({}attn_q_norm) are not supported yet",
                        f.name(), p);
    }
    HEARTH_TRY(bind_attention(hp, w.layers[il], b, il, /*qkv_bias=*/1, /*norm_bias=*/true));
    HEARTH_TRY(bind_ffn(hp, w.layers[il], b, il, /*norm_bias=*/true, /*norm_optional=*/true));
  }
  hp.parallel_residual = !w.layers.empty() && !w.layers[0].ffn_norm.valid();
  for (const auto& l : w.layers) {
    if (l.ffn_norm.valid() == hp.parallel_residual) {
      return make_error(ErrorCode::kInvalidArgument, "{}: ffn_norm is present in some layers only", f.name());
    }
  }
  return ok_status();
}

BlockFn stablelm_block(const HParams& hp) { return hp.parallel_residual ? &block_parallel : &block_prenorm; }

}  // namespace hearth::model
