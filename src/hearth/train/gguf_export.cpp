#include "hearth/train/gguf_export.h"

#include <cstring>

#include "hearth/kernels/fp16.h"

namespace hearth::train {

Status add_llama_model(gguf::GgufWriter& out, const LlamaParams& p, const float* w, const tokenizer::VocabSpec& vocab,
                       TensorType type, std::string_view name, std::vector<std::vector<std::byte>>& storage) {
  if (type != TensorType::F32 && type != TensorType::F16) {
    return make_error(ErrorCode::kInvalidArgument, "a trained model is written as f32 or f16, not {}", type_name(type));
  }
  if (static_cast<int64_t>(vocab.tokens.size()) != p.shape().n_vocab) {
    return make_error(ErrorCode::kInvalidArgument, "the vocabulary has {} tokens; the model has {}",
                      vocab.tokens.size(), p.shape().n_vocab);
  }
  const LlamaShape& s = p.shape();
  out.set_string("general.architecture", "llama");
  out.set_string("general.name", std::string(name));
  out.set_u32("general.file_type", type == TensorType::F32 ? 0 : 1);  // ALL_F32, MOSTLY_F16
  out.set_u32("llama.vocab_size", static_cast<uint32_t>(s.n_vocab));
  out.set_u32("llama.context_length", static_cast<uint32_t>(s.n_ctx));
  out.set_u32("llama.embedding_length", static_cast<uint32_t>(s.n_embd));
  out.set_u32("llama.block_count", static_cast<uint32_t>(s.n_layer));
  out.set_u32("llama.feed_forward_length", static_cast<uint32_t>(s.n_ff));
  out.set_u32("llama.attention.head_count", static_cast<uint32_t>(s.n_head));
  out.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  out.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(s.head_dim()));
  out.set_f32("llama.rope.freq_base", s.rope_freq_base);
  out.set_f32("llama.attention.layer_norm_rms_epsilon", s.norm_eps);

  out.set_string("tokenizer.ggml.model", vocab.model);
  out.set_array_strings("tokenizer.ggml.tokens", vocab.tokens);
  out.set_array_f32("tokenizer.ggml.scores", vocab.scores);
  out.set_array_i32("tokenizer.ggml.token_type", vocab.token_types);
  if (vocab.bos_id) out.set_u32("tokenizer.ggml.bos_token_id", *vocab.bos_id);
  if (vocab.eos_id) out.set_u32("tokenizer.ggml.eos_token_id", *vocab.eos_id);
  if (vocab.unk_id) out.set_u32("tokenizer.ggml.unknown_token_id", *vocab.unk_id);
  if (vocab.add_bos) out.set_bool("tokenizer.ggml.add_bos_token", *vocab.add_bos);
  if (vocab.add_eos) out.set_bool("tokenizer.ggml.add_eos_token", *vocab.add_eos);
  if (vocab.add_space_prefix) out.set_bool("tokenizer.ggml.add_space_prefix", *vocab.add_space_prefix);

  for (const ParamTensor& t : p.tensors()) {
    std::vector<uint64_t> ne(t.ne.begin(), t.ne.end());
    const float* src = w + t.offset;
    if (type == TensorType::F32 || !t.is_matrix) {
      HEARTH_TRY(out.add_tensor(t.name, TensorType::F32, ne,
                                {reinterpret_cast<const std::byte*>(src), t.size * sizeof(float)}));
      continue;
    }
    std::vector<std::byte>& buf = storage.emplace_back(t.size * sizeof(uint16_t));
    for (size_t i = 0; i < t.size; ++i) {
      const uint16_t h = kernels::fp32_to_fp16(src[i]);
      std::memcpy(buf.data() + i * sizeof h, &h, sizeof h);
    }
    HEARTH_TRY(out.add_tensor(t.name, TensorType::F16, ne, buf));
  }
  return ok_status();
}

Status export_gguf(const std::string& path, const LlamaParams& p, const float* w, const tokenizer::VocabSpec& vocab,
                   TensorType type, std::string_view name) {
  gguf::GgufWriter out;
  std::vector<std::vector<std::byte>> storage;
  HEARTH_TRY(add_llama_model(out, p, w, vocab, type, name, storage));
  return out.write(path);
}

}  // namespace hearth::train
