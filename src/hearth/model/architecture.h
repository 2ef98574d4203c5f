// Architecture registry. Each supported architecture is one small file (arch_<name>.cpp) that
// reads its `<arch>.*` hyper-parameters and binds its tensors into ModelWeights; the forward
// pass is shared. Adding an architecture = one file plus one line in architecture.cpp.
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
// Binds the FFN (dense SwiGLU, or Mixtral-style experts when hp.n_expert > 0).
Status bind_ffn(const HParams& hp, LayerWeights& l, WeightBinder& b, int il, bool norm_bias, bool norm_optional);

// Architecture entry points (one file each).
Status load_llama(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& b);
Status load_qwen2(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& b);
Status load_stablelm(const gguf::GgufFile& file, HParams& hp, ModelWeights& w, WeightBinder& b);

}  // namespace hearth::model
