// `phi3`: Phi-3 / Phi-3.5 / Phi-4 mini. Llama's pre-norm block with a fused q/k/v projection
// (attn_qkv, output rows q | k | v), a fused gate+up projection (ffn_up, rows gate | up, SwiGLU)
// and NeoX RoPE. The long-context variants' rope_factors_long/short are not supported yet.
// attention.sliding_window, which Phi-3 files carry, is not applied: the reference disables
// Phi's sliding window too (llama.cpp PR 13676), and hearth matches its outputs.
#include "hearth/model/architecture.h"
#include "hearth/model/forward.h"

namespace hearth::model {

Status load_phi3(const gguf::GgufFile& f, HParams& hp, ModelWeights& w, WeightBinder& b) {
  HEARTH_TRY(read_common_hparams(f, hp));
  if (hp.n_expert != 0) {
    return make_error(ErrorCode::kUnimplemented, "{}: phi3 with experts (phimoe) is not supported", f.name());
  }
  auto eps = f.get_f32("phi3.attention.layer_norm_rms_epsilon");
  if (!eps.ok()) return eps.status().with_context(f.name());
  hp.norm_eps = *eps;
  hp.norm = NormType::kRms;
  hp.rope_mode = kernels::RopeMode::kNeox;
  if (b.has("rope_factors_long.weight") || b.has("rope_factors_short.weight")) {
    return make_error(ErrorCode::kUnimplemented,
                      "{}: LongRoPE (rope_factors_long/short, the 128k-context Phi-3 variants) is not supported yet",
                      f.name());
  }
  HEARTH_TRY(bind_io_weights(hp, w, b, /*norm_bias=*/false));
  const int64_t n = hp.n_embd, nq = hp.n_embd_q(), nkv = hp.n_embd_kv(), ff = hp.n_ff;
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int il = 0; il < hp.n_layer; ++il) {
    LayerWeights& l = w.layers[static_cast<size_t>(il)];
    const std::string p = "blk." + std::to_string(il) + ".";
    HEARTH_ASSIGN_OR_RETURN(l.attn_norm, b.require(p + "attn_norm.weight", {n}, WeightKind::kVector));
    if (!b.has(p + "attn_qkv.weight") && b.has(p + "attn_q.weight")) {
      return make_error(ErrorCode::kUnimplemented,
                        "{}: phi3 layer {} has separate attn_q/k/v; hearth reads the fused {}attn_qkv.weight", f.name(),
                        il, p);
    }
    HEARTH_ASSIGN_OR_RETURN(l.wqkv, b.require(p + "attn_qkv.weight", {n, nq + 2 * nkv}, WeightKind::kMatrix));
    HEARTH_ASSIGN_OR_RETURN(l.wo, b.require(p + "attn_output.weight", {nq, n}, WeightKind::kMatrix));
    HEARTH_ASSIGN_OR_RETURN(l.ffn_norm, b.require(p + "ffn_norm.weight", {n}, WeightKind::kVector));
    HEARTH_ASSIGN_OR_RETURN(l.ffn_up, b.require(p + "ffn_up.weight", {n, 2 * ff}, WeightKind::kMatrix));
    HEARTH_ASSIGN_OR_RETURN(l.ffn_down, b.require(p + "ffn_down.weight", {ff, n}, WeightKind::kMatrix));
  }
  return ok_status();
}

// x += attn(norm(x)) with fused qkv;  x += ffn(norm(x)) with fused gate+up
void block_phi3(Forward& f, const LayerWeights& l, int64_t il) {
  f.attn_norm(l);
  f.qkv_fused(l);
  f.rope();
  f.store_kv(il);
  f.attend(il);
  f.attn_output(l);
  f.add_attn();
  f.ffn_norm(l);
  f.ffn_fused(l);
  f.add_ffn();
}

BlockFn phi3_block(const HParams&) { return &block_phi3; }

}  // namespace hearth::model
