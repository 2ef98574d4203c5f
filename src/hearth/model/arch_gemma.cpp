// `gemma2` and `gemma3`: Gemma 2 and Gemma 3 (text). Pre- and post-norms around attention and
// the FFN (post_attention_norm, post_ffw_norm; RMSNorm, the file's weights used as they are),
// a GELU-gated FFN, the input embedding scaled by sqrt(n_embd), tied output, NeoX RoPE and
// sliding-window attention on some layers.
//   gemma2: attention and final logit soft-capping; layers 0, 2, 4, ... slide.
//   gemma3: per-head q/k RMSNorm, no soft-caps; layer il slides when il % pattern < pattern - 1
//           (sliding_window_pattern, 6 when absent); the sliding layers use their own RoPE base
//           (rope.freq_base_swa, 10000 when absent) without the file's linear scaling.
// Defaults as the reference's loader (sliding window 4096 and soft-caps 50 / 30 for gemma2).
#include <cmath>

#include "hearth/model/architecture.h"
#include "hearth/model/forward.h"

namespace hearth::model {
namespace {

Result<float> optional_positive(const gguf::GgufFile& f, const std::string& key, float fallback) {
  if (f.find(key) == nullptr) return fallback;
  auto v = f.get_f32(key);
  if (!v.ok()) return make_error(ErrorCode::kInvalidArgument, "{}: {}", f.name(), v.status().message());
  if (!(*v > 0.0f) || !std::isfinite(*v)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: metadata '{}' = {} must be a positive number", f.name(), key,
                      *v);
  }
  return *v;
}

Result<int64_t> optional_count(const gguf::GgufFile& f, const std::string& key, int64_t fallback) {
  if (f.find(key) == nullptr) return fallback;
  auto v = f.get_uint(key);
  if (!v.ok()) {
    return make_error(ErrorCode::kUnimplemented, "{}: metadata '{}': {} (a single unsigned integer is supported)",
                      f.name(), key, v.status().message());
  }
  return static_cast<int64_t>(*v);
}

// Reads the shared keys and binds the shared weights; the family sets hp.swa_layers after.
Status load_gemma_common(const gguf::GgufFile& f, HParams& hp, ModelWeights& w, WeightBinder& b, int64_t swa_default,
                         bool qk_norm) {
  HEARTH_TRY(read_common_hparams(f, hp));
  if (hp.n_expert != 0) {
    return make_error(ErrorCode::kUnimplemented, "{}: {} with experts is not supported", f.name(), hp.arch);
  }
  auto eps = f.get_f32(hp.arch + ".attention.layer_norm_rms_epsilon");
  if (!eps.ok()) return eps.status().with_context(f.name());
  hp.norm_eps = *eps;
  hp.norm = NormType::kRms;
  hp.rope_mode = kernels::RopeMode::kNeox;
  hp.embd_scale = std::sqrt(static_cast<float>(hp.n_embd));
  HEARTH_ASSIGN_OR_RETURN(hp.n_swa, optional_count(f, hp.arch + ".attention.sliding_window", swa_default));
  if (hp.n_swa < 1 || hp.n_swa > hp.n_ctx_train) {
    return make_error(ErrorCode::kInvalidArgument, "{}: attention.sliding_window {} must be in [1, context_length {}]",
                      f.name(), hp.n_swa, hp.n_ctx_train);
  }
  // The 27B models (gemma2: 46 layers, gemma3: 62) scale q · k by 1/sqrt(n_embd / n_head)
  // (query_pre_attn_scalar), the others by 1/sqrt(head_dim); the reference picks it by this
  // layer count too.
  if (hp.n_layer == (hp.arch == "gemma2" ? 46 : 62)) {
    hp.attn_scale = 1.0f / std::sqrt(static_cast<float>(hp.n_embd / hp.n_head));
  }
  HEARTH_TRY(bind_io_weights(hp, w, b, /*norm_bias=*/false));
  const int64_t n = hp.n_embd;
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int il = 0; il < hp.n_layer; ++il) {
    LayerWeights& l = w.layers[static_cast<size_t>(il)];
    const std::string p = "blk." + std::to_string(il) + ".";
    HEARTH_TRY(bind_attention(hp, l, b, il, /*qkv_bias=*/0, /*norm_bias=*/false));
    if (qk_norm) HEARTH_TRY(bind_qk_norm(hp, l, b, il));
    HEARTH_ASSIGN_OR_RETURN(l.post_attention_norm,
                            b.require(p + "post_attention_norm.weight", {n}, WeightKind::kVector));
    HEARTH_TRY(bind_ffn(hp, l, b, il, /*norm_bias=*/false, /*norm_optional=*/false));
    HEARTH_ASSIGN_OR_RETURN(l.post_ffw_norm, b.require(p + "post_ffw_norm.weight", {n}, WeightKind::kVector));
  }
  return ok_status();
}

}  // namespace

Status load_gemma2(const gguf::GgufFile& f, HParams& hp, ModelWeights& w, WeightBinder& b) {
  HEARTH_TRY(load_gemma_common(f, hp, w, b, /*swa_default=*/4096, /*qk_norm=*/false));
  HEARTH_ASSIGN_OR_RETURN(hp.attn_softcap, optional_positive(f, "gemma2.attn_logit_softcapping", 50.0f));
  HEARTH_ASSIGN_OR_RETURN(hp.final_softcap, optional_positive(f, "gemma2.final_logit_softcapping", 30.0f));
  hp.swa_layers.assign(static_cast<size_t>(hp.n_layer), 0);
  for (int64_t il = 0; il < hp.n_layer; il += 2) hp.swa_layers[static_cast<size_t>(il)] = 1;
  return ok_status();
}

Status load_gemma3(const gguf::GgufFile& f, HParams& hp, ModelWeights& w, WeightBinder& b) {
  HEARTH_TRY(load_gemma_common(f, hp, w, b, /*swa_default=*/4096, /*qk_norm=*/true));
  HEARTH_ASSIGN_OR_RETURN(int64_t pattern, optional_count(f, "gemma3.attention.sliding_window_pattern", 6));
  if (pattern < 1 || pattern > hp.n_layer + 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: attention.sliding_window_pattern {} must be in [1, block_count + 1 = {}]", f.name(), pattern,
                      hp.n_layer + 1);
  }
  HEARTH_ASSIGN_OR_RETURN(hp.rope_freq_base_swa, optional_positive(f, "gemma3.rope.freq_base_swa", 10000.0f));
  hp.swa_layers.assign(static_cast<size_t>(hp.n_layer), 0);
  for (int64_t il = 0; il < hp.n_layer; ++il) hp.swa_layers[static_cast<size_t>(il)] = il % pattern < pattern - 1;
  return ok_status();
}

// x += post_norm(attn(norm(x)));  x += post_norm(geglu(norm(x)))   (soft-caps, windows: in the steps)
void block_gemma2(Forward& f, const LayerWeights& l, int64_t il) {
  f.attn_norm(l);
  f.qkv(l);
  f.rope(il);
  f.store_kv(il);
  f.attend(il);
  f.attn_output(l);
  f.post_attn_norm(l);
  f.add_attn();
  f.ffn_norm(l);
  f.ffn_geglu(l);
  f.post_ffn_norm(l);
  f.add_ffn();
}

// gemma2's block with the per-head q/k norm before RoPE.
void block_gemma3(Forward& f, const LayerWeights& l, int64_t il) {
  f.attn_norm(l);
  f.qkv(l);
  f.qk_norm(l);
  f.rope(il);
  f.store_kv(il);
  f.attend(il);
  f.attn_output(l);
  f.post_attn_norm(l);
  f.add_attn();
  f.ffn_norm(l);
  f.ffn_geglu(l);
  f.post_ffn_norm(l);
  f.add_ffn();
}

BlockFn gemma2_block(const HParams&) { return &block_gemma2; }
BlockFn gemma3_block(const HParams&) { return &block_gemma3; }

}  // namespace hearth::model
