#include "hearth/train/llama_params.h"

#include <cmath>

namespace hearth::train {

Status LlamaShape::validate() const {
  auto bad = []<typename... Args>(fmt::format_string<Args...> format, Args&&... args) {
    return make_error(ErrorCode::kInvalidArgument, format, std::forward<Args>(args)...);
  };
  if (n_vocab < 260 || n_vocab > (1 << 20)) return bad("vocabulary size {} is outside [260, 1048576]", n_vocab);
  if (n_ctx < 2 || n_ctx > 65536) return bad("context {} is outside [2, 65536]", n_ctx);
  if (n_embd < 2 || n_embd > 65536 || n_layer < 1 || n_layer > 1024 || n_ff < 1 || n_ff > (1 << 20)) {
    return bad("model shape is out of range");
  }
  if (n_head < 1 || n_embd % n_head != 0 || (n_embd / n_head) % 2 != 0) {
    return bad("n_embd {} must split into {} heads of even size", n_embd, n_head);
  }
  if (n_head_kv < 1 || n_head % n_head_kv != 0) {
    return bad("n_head {} is not a multiple of n_head_kv {}", n_head, n_head_kv);
  }
  return ok_status();
}

Result<LlamaShape> preset_shape(std::string_view name, int64_t n_vocab, int64_t n_ctx) {
  LlamaShape s;
  s.n_vocab = n_vocab;
  s.n_ctx = n_ctx;
  if (name == "nano") {
    s.n_embd = 64, s.n_layer = 2, s.n_head = 4, s.n_head_kv = 2, s.n_ff = 192;
  } else if (name == "micro") {
    s.n_embd = 128, s.n_layer = 4, s.n_head = 4, s.n_head_kv = 2, s.n_ff = 352;
  } else if (name == "tiny") {
    s.n_embd = 256, s.n_layer = 6, s.n_head = 8, s.n_head_kv = 4, s.n_ff = 704;
  } else {
    return make_error(ErrorCode::kInvalidArgument, "unknown preset '{}' (nano, micro or tiny)", name);
  }
  HEARTH_TRY(s.validate());
  return s;
}

LlamaParams::LlamaParams(const LlamaShape& s) : shape_(s) {
  const int64_t ne = s.n_embd, nkv = s.n_embd_kv(), ff = s.n_ff;
  token_embd_ = add("token_embd.weight", {ne, s.n_vocab}, true);
  layers_.resize(static_cast<size_t>(s.n_layer));
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    LayerSlots& l = layers_[static_cast<size_t>(il)];
    l.attn_norm = add(p + "attn_norm.weight", {ne}, false);
    l.wq = add(p + "attn_q.weight", {ne, ne}, true);
    l.wk = add(p + "attn_k.weight", {ne, nkv}, true);
    l.wv = add(p + "attn_v.weight", {ne, nkv}, true);
    l.wo = add(p + "attn_output.weight", {ne, ne}, true);
    l.ffn_norm = add(p + "ffn_norm.weight", {ne}, false);
    l.ffn_gate = add(p + "ffn_gate.weight", {ne, ff}, true);
    l.ffn_up = add(p + "ffn_up.weight", {ne, ff}, true);
    l.ffn_down = add(p + "ffn_down.weight", {ff, ne}, true);
  }
  output_norm_ = add("output_norm.weight", {ne}, false);
  output_ = s.tied_output ? token_embd_ : add("output.weight", {ne, s.n_vocab}, true);
}

size_t LlamaParams::add(std::string name, std::vector<int64_t> ne, bool is_matrix) {
  size_t n = 1;
  for (int64_t d : ne) n *= static_cast<size_t>(d);
  tensors_.push_back({std::move(name), std::move(ne), n_params_, n, is_matrix});
  n_params_ += n;
  return tensors_.back().offset;
}

double SplitMix64::normal() {
  // Box-Muller; u1 in (0, 1] so that log() is finite.
  const double u1 = 1.0 - uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

void init_params(const LlamaParams& p, std::vector<float>& w, uint64_t seed) {
  w.assign(p.n_params(), 0.0f);
  SplitMix64 rng{seed};
  const double resid = 0.02 / std::sqrt(2.0 * static_cast<double>(p.shape().n_layer));
  for (const ParamTensor& t : p.tensors()) {
    float* d = w.data() + t.offset;
    if (!t.is_matrix) {
      for (size_t i = 0; i < t.size; ++i) d[i] = 1.0f;
      continue;
    }
    const bool is_resid = t.name.ends_with("attn_output.weight") || t.name.ends_with("ffn_down.weight");
    const double sd = is_resid ? resid : 0.02;
    for (size_t i = 0; i < t.size; ++i) d[i] = static_cast<float>(sd * rng.normal());
  }
}

}  // namespace hearth::train
