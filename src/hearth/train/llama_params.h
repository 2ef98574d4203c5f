// The trainable Llama: its shape, and every weight as one slice of a flat f32 vector (so that the
// optimizer, the checkpoint and gradient clipping see one array). Tensor names and layouts are
// GGUF's: a matrix is [rows][cols] row-major with ne = {cols, rows}, as hearth's loader binds it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::train {

struct LlamaShape {
  int64_t n_vocab = 512;
  int64_t n_ctx = 256;  // training context (also written as llama.context_length)
  int64_t n_embd = 128;
  int64_t n_layer = 4;
  int64_t n_head = 4;
  int64_t n_head_kv = 4;
  int64_t n_ff = 384;
  float norm_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  bool tied_output = true;  // output head = token_embd (no output.weight)

  int64_t head_dim() const { return n_embd / n_head; }
  int64_t n_embd_kv() const { return n_head_kv * head_dim(); }
  Status validate() const;
};

// Named presets (README states their sizes): nano, micro, tiny.
Result<LlamaShape> preset_shape(std::string_view name, int64_t n_vocab, int64_t n_ctx);

// One tensor: its GGUF name, ne (ne[0] = row length) and where it lives in the flat vector.
struct ParamTensor {
  std::string name;
  std::vector<int64_t> ne;
  size_t offset = 0;
  size_t size = 0;
  bool is_matrix = false;  // 2-D weights take weight decay; norms do not
};

// Offsets of one layer's tensors in the flat vector.
struct LayerSlots {
  size_t attn_norm, wq, wk, wv, wo, ffn_norm, ffn_gate, ffn_up, ffn_down;
};

class LlamaParams {
 public:
  explicit LlamaParams(const LlamaShape& shape);
  const LlamaShape& shape() const { return shape_; }
  size_t n_params() const { return n_params_; }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  size_t token_embd() const { return token_embd_; }
  size_t output_norm() const { return output_norm_; }
  size_t output() const { return output_; }  // == token_embd() when tied
  const LayerSlots& layer(int64_t il) const { return layers_[static_cast<size_t>(il)]; }

 private:
  size_t add(std::string name, std::vector<int64_t> ne, bool is_matrix);
  LlamaShape shape_;
  std::vector<ParamTensor> tensors_;
  std::vector<LayerSlots> layers_;
  size_t token_embd_ = 0, output_norm_ = 0, output_ = 0;
  size_t n_params_ = 0;
};

// Deterministic random numbers (splitmix64): small, fast, and its whole state is one u64, which
// the checkpoint stores.
struct SplitMix64 {
  uint64_t state = 0;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal();                                                            // N(0, 1)
};

// GPT-2-style initialization: N(0, 0.02) for matrices, the residual projections (wo, ffn_down)
// scaled by 1/sqrt(2 n_layer), norms at 1.
void init_params(const LlamaParams& p, std::vector<float>& w, uint64_t seed);

}  // namespace hearth::train
