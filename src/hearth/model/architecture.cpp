#include "hearth/model/architecture.h"

#include <array>
#include <cmath>
#include <string>

#include "hearth/model/forward.h"

namespace hearth::model {
namespace {

constexpr std::array<Architecture, 9> kArchitectures = {{
    {"llama", &load_llama, &prenorm_block},
    {"qwen2", &load_qwen2, &prenorm_block},
    {"stablelm", &load_stablelm, &stablelm_block},
    {"qwen3", &load_qwen3, &qwen3_block},
    {"qwen3moe", &load_qwen3moe, &qwen3_block},
    {"phi3", &load_phi3, &phi3_block},
    {"gemma2", &load_gemma2, &gemma2_block},
    {"gemma3", &load_gemma3, &gemma3_block},
    {"bert", &load_bert, &bert_block},
}};

// Upper bounds that no real model reaches; they keep hostile metadata from sizing buffers.
constexpr int64_t kMaxDim = int64_t{1} << 20;
constexpr int64_t kMaxLayers = 4096;

std::string key(const HParams& hp, std::string_view suffix) { return hp.arch + "." + std::string(suffix); }

Result<int64_t> required_int(const gguf::GgufFile& f, const std::string& k, int64_t lo, int64_t hi) {
  auto v = f.get_uint(k);
  if (!v.ok()) {
    if (v.status().code() == ErrorCode::kNotFound) {
      return make_error(ErrorCode::kInvalidArgument, "{}: metadata key '{}' is missing", f.name(), k);
    }
    return make_error(ErrorCode::kInvalidArgument, "{}: {}", f.name(), v.status().message());
  }
  if (static_cast<int64_t>(*v) < lo || *v > static_cast<uint64_t>(hi)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: metadata '{}' = {} is outside [{}, {}]", f.name(), k, *v, lo,
                      hi);
  }
  return static_cast<int64_t>(*v);
}

Result<int64_t> optional_int(const gguf::GgufFile& f, const std::string& k, int64_t fallback, int64_t lo, int64_t hi) {
  if (f.find(k) == nullptr) return fallback;
  return required_int(f, k, lo, hi);
}

Result<float> optional_float(const gguf::GgufFile& f, const std::string& k, float fallback) {
  if (f.find(k) == nullptr) return fallback;
  auto v = f.get_f32(k);
  if (!v.ok()) return make_error(ErrorCode::kInvalidArgument, "{}: {}", f.name(), v.status().message());
  return *v;
}

// A float key that must be finite and above `lo` (or at least `lo` when lo_inclusive).
Result<float> checked_float(const gguf::GgufFile& f, const std::string& k, float fallback, float lo, bool lo_inclusive,
                            std::string_view what) {
  HEARTH_ASSIGN_OR_RETURN(float v, optional_float(f, k, fallback));
  if (!std::isfinite(v) || v < lo || (!lo_inclusive && v == lo)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: metadata '{}' = {} must be {}", f.name(), k, v, what);
  }
  return v;
}

// RoPE scaling (rope.scaling.*): "linear" (position interpolation by `factor`; also the older
// rope.scale_linear key), or "yarn" (rope_table.h): factor, original_context_length (the
// trained context; context_length when absent), yarn_beta_fast / yarn_beta_slow (32 / 1),
// yarn_ext_factor (1), attn_factor or yarn_attn_factor (1) and yarn_log_multiplier (0.1): cos
// and sin are scaled by attn_factor * (1 + yarn_log_multiplier * ln(factor)).
Status read_rope_scaling(const gguf::GgufFile& f, HParams& hp) {
  std::string type = "none";
  if (f.find(key(hp, "rope.scaling.type")) != nullptr) {
    auto t = f.get_string(key(hp, "rope.scaling.type"));
    if (!t.ok()) return make_error(ErrorCode::kInvalidArgument, "{}: {}", f.name(), t.status().message());
    type = std::string(*t);
  } else if (f.find(key(hp, "rope.scale_linear")) != nullptr) {
    type = "linear";
  }
  if (type == "none") return ok_status();
  if (type != "linear" && type != "yarn") {
    return make_error(ErrorCode::kUnimplemented,
                      "{}: rope scaling type '{}' is not supported (none, linear and yarn are)", f.name(), type);
  }
  const std::string factor_key =
      f.find(key(hp, "rope.scaling.factor")) == nullptr && f.find(key(hp, "rope.scale_linear")) != nullptr
          ? key(hp, "rope.scale_linear")
          : key(hp, "rope.scaling.factor");
  HEARTH_ASSIGN_OR_RETURN(float factor,
                          checked_float(f, factor_key, 1.0f, 0.0f, false, "a positive rope scaling factor"));
  hp.rope_freq_scale = 1.0f / factor;
  if (type == "linear") return ok_status();
  if (!(hp.rope_freq_base > 1.0f) || !std::isfinite(hp.rope_freq_base)) {
    // The ramp's bounds divide by ln(base).
    return make_error(ErrorCode::kInvalidArgument, "{}: YaRN rope scaling needs rope.freq_base > 1 (it is {})",
                      f.name(), hp.rope_freq_base);
  }

  HEARTH_ASSIGN_OR_RETURN(hp.rope_n_ctx_orig, optional_int(f, key(hp, "rope.scaling.original_context_length"),
                                                           hp.n_ctx_train, 1, int64_t{1} << 24));
  HEARTH_ASSIGN_OR_RETURN(hp.rope_yarn_beta_fast, checked_float(f, key(hp, "rope.scaling.yarn_beta_fast"), 32.0f, 0.0f,
                                                                false, "positive"));
  HEARTH_ASSIGN_OR_RETURN(hp.rope_yarn_beta_slow, checked_float(f, key(hp, "rope.scaling.yarn_beta_slow"), 1.0f, 0.0f,
                                                                false, "positive"));
  if (!(hp.rope_yarn_beta_fast > hp.rope_yarn_beta_slow)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: rope.scaling.yarn_beta_fast {} must be larger than yarn_beta_slow {}", f.name(),
                      hp.rope_yarn_beta_fast, hp.rope_yarn_beta_slow);
  }
  HEARTH_ASSIGN_OR_RETURN(hp.rope_yarn_ext_factor, checked_float(f, key(hp, "rope.scaling.yarn_ext_factor"), 1.0f,
                                                                 0.0f, true, "in [0, 1]"));
  if (hp.rope_yarn_ext_factor > 1.0f) {
    return make_error(ErrorCode::kInvalidArgument, "{}: metadata '{}' = {} must be in [0, 1]", f.name(),
                      key(hp, "rope.scaling.yarn_ext_factor"), hp.rope_yarn_ext_factor);
  }
  const std::string attn_key = f.find(key(hp, "rope.scaling.yarn_attn_factor")) != nullptr
                                   ? key(hp, "rope.scaling.yarn_attn_factor")
                                   : key(hp, "rope.scaling.attn_factor");
  HEARTH_ASSIGN_OR_RETURN(float attn_factor, checked_float(f, attn_key, 1.0f, 0.0f, false, "positive"));
  HEARTH_ASSIGN_OR_RETURN(float log_mul, checked_float(f, key(hp, "rope.scaling.yarn_log_multiplier"), 0.1f, 0.0f,
                                                       true, "at least 0"));
  hp.rope_attn_factor = attn_factor * (1.0f + log_mul * std::log(factor));
  if (!(hp.rope_attn_factor > 0.0f) || !std::isfinite(hp.rope_attn_factor)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: YaRN attention magnitude {} * (1 + {} ln {}) is not a positive number", f.name(),
                      attn_factor, log_mul, factor);
  }
  return ok_status();
}

}  // namespace

const Architecture* find_architecture(std::string_view name) {
  for (const auto& a : kArchitectures) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

BlockFn prenorm_block(const HParams&) { return &block_prenorm; }

std::vector<std::string_view> architecture_names() {
  std::vector<std::string_view> out;
  for (const auto& a : kArchitectures) out.push_back(a.name);
  return out;
}

Status read_common_hparams(const gguf::GgufFile& f, HParams& hp) {
  HEARTH_ASSIGN_OR_RETURN(hp.n_ctx_train, required_int(f, key(hp, "context_length"), 1, int64_t{1} << 24));
  HEARTH_ASSIGN_OR_RETURN(hp.n_embd, required_int(f, key(hp, "embedding_length"), 1, kMaxDim));
  HEARTH_ASSIGN_OR_RETURN(hp.n_layer, required_int(f, key(hp, "block_count"), 1, kMaxLayers));
  if (const auto* kv = f.find(key(hp, "feed_forward_length")); kv && kv->type == gguf::ValueType::ARRAY) {
    return make_error(ErrorCode::kUnimplemented, "{}: per-layer feed_forward_length is not supported", f.name());
  }
  HEARTH_ASSIGN_OR_RETURN(hp.n_ff, required_int(f, key(hp, "feed_forward_length"), 1, kMaxDim));
  HEARTH_ASSIGN_OR_RETURN(hp.n_head, required_int(f, key(hp, "attention.head_count"), 1, 65536));
  HEARTH_ASSIGN_OR_RETURN(hp.n_head_kv, optional_int(f, key(hp, "attention.head_count_kv"), hp.n_head, 1, 65536));
  if (hp.n_head % hp.n_head_kv != 0) {
    return make_error(ErrorCode::kInvalidArgument, "{}: head_count {} is not a multiple of head_count_kv {}", f.name(),
                      hp.n_head, hp.n_head_kv);
  }
  if (f.find(key(hp, "attention.key_length")) == nullptr && hp.n_embd % hp.n_head != 0) {
    return make_error(ErrorCode::kInvalidArgument, "{}: embedding_length {} is not a multiple of head_count {}",
                      f.name(), hp.n_embd, hp.n_head);
  }
  HEARTH_ASSIGN_OR_RETURN(hp.head_dim,
                          optional_int(f, key(hp, "attention.key_length"), hp.n_embd / hp.n_head, 2, 65536));
  HEARTH_ASSIGN_OR_RETURN(int64_t v_len, optional_int(f, key(hp, "attention.value_length"), hp.head_dim, 1, 65536));
  if (v_len != hp.head_dim) {
    return make_error(ErrorCode::kUnimplemented,
                      "{}: attention.value_length {} differs from key_length {} (not supported)", f.name(), v_len,
                      hp.head_dim);
  }
  HEARTH_ASSIGN_OR_RETURN(hp.n_rot, optional_int(f, key(hp, "rope.dimension_count"), hp.head_dim, 0, hp.head_dim));
  if (hp.n_rot % 2 != 0) {
    return make_error(ErrorCode::kInvalidArgument, "{}: rope.dimension_count {} is odd", f.name(), hp.n_rot);
  }
  HEARTH_ASSIGN_OR_RETURN(hp.rope_freq_base, optional_float(f, key(hp, "rope.freq_base"), 10000.0f));
  if (!(hp.rope_freq_base > 0.0f)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: rope.freq_base must be positive", f.name());
  }
  HEARTH_TRY(read_rope_scaling(f, hp));
  HEARTH_ASSIGN_OR_RETURN(hp.n_expert, optional_int(f, key(hp, "expert_count"), 0, 0, 1024));
  HEARTH_ASSIGN_OR_RETURN(hp.n_expert_used, optional_int(f, key(hp, "expert_used_count"), 0, 0, 1024));
  if (hp.n_expert > 0 && (hp.n_expert_used < 1 || hp.n_expert_used > hp.n_expert)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: expert_used_count {} must be in [1, expert_count {}]", f.name(),
                      hp.n_expert_used, hp.n_expert);
  }
  return ok_status();
}

Status bind_io_weights(HParams& hp, ModelWeights& w, WeightBinder& b, bool norm_bias) {
  // hp.n_vocab was taken from token_embd's second dimension by the loader.
  const int64_t n = hp.n_embd;
  HEARTH_ASSIGN_OR_RETURN(w.token_embd, b.require("token_embd.weight", {n, hp.n_vocab}, WeightKind::kEmbedding));
  HEARTH_ASSIGN_OR_RETURN(w.output_norm, b.require("output_norm.weight", {n}, WeightKind::kVector));
  if (norm_bias) {
    HEARTH_ASSIGN_OR_RETURN(w.output_norm_b, b.require("output_norm.bias", {n}, WeightKind::kVector));
  }
  HEARTH_ASSIGN_OR_RETURN(w.output, b.optional("output.weight", {n, hp.n_vocab}, WeightKind::kMatrix));
  if (!w.output.valid()) {
    if (w.token_embd.type == TensorType::Q8_1 || w.token_embd.type == TensorType::Q8_K) {
      return make_error(ErrorCode::kUnimplemented, "tied output head of type {} is not supported",
                        type_name(w.token_embd.type));
    }
    w.output = w.token_embd;  // tied embeddings
  }
  HEARTH_ASSIGN_OR_RETURN(w.rope_freqs, b.optional("rope_freqs.weight", {hp.n_rot / 2}, WeightKind::kVector));
  return ok_status();
}

Status bind_attention(const HParams& hp, LayerWeights& l, WeightBinder& b, int il, int qkv_bias, bool norm_bias) {
  const std::string p = "blk." + std::to_string(il) + ".";
  const int64_t n = hp.n_embd, nq = hp.n_embd_q(), nkv = hp.n_embd_kv();
  HEARTH_ASSIGN_OR_RETURN(l.attn_norm, b.require(p + "attn_norm.weight", {n}, WeightKind::kVector));
  if (norm_bias) {
    HEARTH_ASSIGN_OR_RETURN(l.attn_norm_b, b.require(p + "attn_norm.bias", {n}, WeightKind::kVector));
  }
  HEARTH_ASSIGN_OR_RETURN(l.wq, b.require(p + "attn_q.weight", {n, nq}, WeightKind::kMatrix));
  HEARTH_ASSIGN_OR_RETURN(l.wk, b.require(p + "attn_k.weight", {n, nkv}, WeightKind::kMatrix));
  HEARTH_ASSIGN_OR_RETURN(l.wv, b.require(p + "attn_v.weight", {n, nkv}, WeightKind::kMatrix));
  HEARTH_ASSIGN_OR_RETURN(l.wo, b.require(p + "attn_output.weight", {nq, n}, WeightKind::kMatrix));
  if (qkv_bias == 2) {
    HEARTH_ASSIGN_OR_RETURN(l.bq, b.require(p + "attn_q.bias", {nq}, WeightKind::kVector));
    HEARTH_ASSIGN_OR_RETURN(l.bk, b.require(p + "attn_k.bias", {nkv}, WeightKind::kVector));
    HEARTH_ASSIGN_OR_RETURN(l.bv, b.require(p + "attn_v.bias", {nkv}, WeightKind::kVector));
  } else if (qkv_bias == 1) {
    HEARTH_ASSIGN_OR_RETURN(l.bq, b.optional(p + "attn_q.bias", {nq}, WeightKind::kVector));
    HEARTH_ASSIGN_OR_RETURN(l.bk, b.optional(p + "attn_k.bias", {nkv}, WeightKind::kVector));
    HEARTH_ASSIGN_OR_RETURN(l.bv, b.optional(p + "attn_v.bias", {nkv}, WeightKind::kVector));
  }
  HEARTH_ASSIGN_OR_RETURN(l.bo, b.optional(p + "attn_output.bias", {n}, WeightKind::kVector));
  return ok_status();
}

Status bind_qk_norm(const HParams& hp, LayerWeights& l, WeightBinder& b, int il) {
  const std::string p = "blk." + std::to_string(il) + ".";
  HEARTH_ASSIGN_OR_RETURN(l.attn_q_norm, b.require(p + "attn_q_norm.weight", {hp.head_dim}, WeightKind::kVector));
  HEARTH_ASSIGN_OR_RETURN(l.attn_k_norm, b.require(p + "attn_k_norm.weight", {hp.head_dim}, WeightKind::kVector));
  return ok_status();
}

Result<int64_t> read_expert_ff_length(const gguf::GgufFile& f, const HParams& hp) {
  return required_int(f, key(hp, "expert_feed_forward_length"), 1, kMaxDim);
}

Status bind_ffn(const HParams& hp, LayerWeights& l, WeightBinder& b, int il, bool norm_bias, bool norm_optional) {
  const std::string p = "blk." + std::to_string(il) + ".";
  const int64_t n = hp.n_embd, ff = hp.n_ff;
  if (norm_optional) {
    HEARTH_ASSIGN_OR_RETURN(l.ffn_norm, b.optional(p + "ffn_norm.weight", {n}, WeightKind::kVector));
  } else {
    HEARTH_ASSIGN_OR_RETURN(l.ffn_norm, b.require(p + "ffn_norm.weight", {n}, WeightKind::kVector));
  }
  if (norm_bias && l.ffn_norm.valid()) {
    HEARTH_ASSIGN_OR_RETURN(l.ffn_norm_b, b.require(p + "ffn_norm.bias", {n}, WeightKind::kVector));
  }
  if (hp.n_expert == 0) {
    HEARTH_ASSIGN_OR_RETURN(l.ffn_gate, b.require(p + "ffn_gate.weight", {n, ff}, WeightKind::kMatrix));
    HEARTH_ASSIGN_OR_RETURN(l.ffn_up, b.require(p + "ffn_up.weight", {n, ff}, WeightKind::kMatrix));
    HEARTH_ASSIGN_OR_RETURN(l.ffn_down, b.require(p + "ffn_down.weight", {ff, n}, WeightKind::kMatrix));
    return ok_status();
  }
  const int64_t ne = hp.n_expert;
  if (b.has(p + "ffn_gate.0.weight")) {
    return make_error(ErrorCode::kUnimplemented,
                      "tensor '{}ffn_gate.0.weight': per-expert tensors (old Mixtral GGUF layout) are not supported; "
                      "re-convert the model with merged *_exps tensors",
                      p);
  }
  HEARTH_ASSIGN_OR_RETURN(l.ffn_gate_inp, b.require(p + "ffn_gate_inp.weight", {n, ne}, WeightKind::kMatrix));
  HEARTH_ASSIGN_OR_RETURN(l.ffn_gate_exps, b.require(p + "ffn_gate_exps.weight", {n, ff, ne}, WeightKind::kMatrix));
  HEARTH_ASSIGN_OR_RETURN(l.ffn_up_exps, b.require(p + "ffn_up_exps.weight", {n, ff, ne}, WeightKind::kMatrix));
  HEARTH_ASSIGN_OR_RETURN(l.ffn_down_exps, b.require(p + "ffn_down_exps.weight", {ff, n, ne}, WeightKind::kMatrix));
  return ok_status();
}

}  // namespace hearth::model
