#include "hearth/train/base_model.h"

#include <string>

#include "hearth/kernels/quant.h"

namespace hearth::train {

Result<BaseModel> read_base_model(const gguf::GgufFile& f, int64_t n_ctx) {
  auto bad = [&]<typename... Args>(fmt::format_string<Args...> format, Args&&... args) {
    return make_error(ErrorCode::kUnimplemented, "{}: {}", f.name(),
                      fmt::vformat(format, fmt::make_format_args(args...)));
  };
  auto arch = f.get_string("general.architecture");
  if (!arch.ok() || *arch != "llama") return bad("finetuning supports llama-architecture models");
  auto u = [&](const char* key, int64_t fallback) -> int64_t {
    auto v = f.get_uint(key);
    return v.ok() ? static_cast<int64_t>(*v) : fallback;
  };
  if (u("llama.expert_count", 0) > 0) return bad("mixture-of-experts models cannot be finetuned yet");
  if (f.find("llama.rope.scaling.type") != nullptr || f.find("llama.rope.scale_linear") != nullptr ||
      f.find_tensor("rope_freqs.weight") != nullptr) {
    return bad("models with RoPE scaling cannot be finetuned yet");
  }
  BaseModel b;
  LlamaShape& s = b.shape;
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (embd == nullptr)
    return make_error(ErrorCode::kInvalidArgument, "{}: tensor 'token_embd.weight' is missing", f.name());
  s.n_vocab = static_cast<int64_t>(embd->ne[1]);
  s.n_embd = u("llama.embedding_length", 0);
  s.n_layer = u("llama.block_count", 0);
  s.n_ff = u("llama.feed_forward_length", 0);
  s.n_head = u("llama.attention.head_count", 0);
  s.n_head_kv = u("llama.attention.head_count_kv", s.n_head);
  s.n_ctx = std::min<int64_t>(n_ctx, u("llama.context_length", n_ctx));
  if (auto e = f.get_f32("llama.attention.layer_norm_rms_epsilon"); e.ok()) s.norm_eps = *e;
  if (auto r = f.get_f32("llama.rope.freq_base"); r.ok()) s.rope_freq_base = *r;
  s.tied_output = f.find_tensor("output.weight") == nullptr;
  if (s.n_head > 0 && s.n_embd % s.n_head == 0 &&
      u("llama.rope.dimension_count", s.n_embd / s.n_head) != s.n_embd / s.n_head) {
    return bad("partial rotary embeddings cannot be finetuned yet");
  }
  if (s.n_head > 0 && u("llama.attention.key_length", s.n_embd / s.n_head) != s.n_embd / s.n_head) {
    return bad("a head size other than n_embd / n_head cannot be finetuned yet");
  }
  HEARTH_TRY(s.validate().with_context(f.name()));
  for (const auto& t : f.tensors()) {
    if (std::string_view(t.name).ends_with(".bias")) return bad("tensor '{}': biases cannot be finetuned yet", t.name);
  }
  const LlamaParams p(s);
  b.w.resize(p.n_params());
  for (const ParamTensor& pt : p.tensors()) {
    const gguf::TensorInfo* t = f.find_tensor(pt.name);
    if (t == nullptr) return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}' is missing", f.name(), pt.name);
    const int64_t cols = pt.ne[0], rows = pt.ne.size() > 1 ? pt.ne[1] : 1;
    if (static_cast<int64_t>(t->ne[0]) != cols || static_cast<int64_t>(t->n_elements) != cols * rows) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}' has an unexpected shape", f.name(), pt.name);
    }
    if (!kernels::can_dequantize(t->type)) {
      return bad("tensor '{}' of type {} cannot be dequantized", pt.name, type_name(t->type));
    }
    const auto rb = row_bytes(t->type, static_cast<uint64_t>(cols));
    if (!rb || *rb * static_cast<uint64_t>(rows) > t->data.size()) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}' is truncated", f.name(), pt.name);
    }
    for (int64_t r = 0; r < rows; ++r) {
      kernels::dequantize_row(t->type, t->data.data() + static_cast<size_t>(r) * *rb, b.w.data() + pt.offset + r * cols,
                              cols);
    }
  }
  return b;
}

}  // namespace hearth::train
