// Synthetic models: random-weight GGUF files with the shapes of real architectures, so that an
// operator can qualify hardware without downloading weights. Speed does not depend on the
// weights' values. Files are cached ($XDG_CACHE_HOME/hearth/synthetic, else ~/.cache/...).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/core/tensor_type.h"

namespace hearth::eval {

struct SyntheticPreset {
  std::string_view name;      // "1b", "3b", "7b", "8x7b", "qwen3-1.7b", "gemma3-1b", "phi3-mini", "llama3.2-1b"
  std::string_view shape_of;  // the real model whose shape it copies
  std::string_view arch;      // general.architecture: llama, qwen3, gemma3 or phi3
  int64_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_expert, n_expert_used, n_ctx;
  float rope_base;
  bool tied_output;
  float norm_eps;            // attention.layer_norm_rms_epsilon
  int64_t n_swa;             // gemma3: sliding window (0: none)
  int64_t swa_pattern;       // gemma3: layer il slides when il % pattern < pattern - 1
  float rope_base_swa;       // gemma3: the sliding layers' RoPE base
  float llama3_rope_factor;  // > 0: a rope_freqs tensor of Llama 3.1 scaling (low 1, high 4, original 8192)
};

const SyntheticPreset* find_preset(std::string_view name);
std::vector<const SyntheticPreset*> all_presets();

// A few-MB copy of a preset for tests: the same architecture, tensors and keys (head ratio,
// sliding pattern, tied output, rope_freqs, experts), with n_embd 256, head_dim 32, n_ff 512,
// vocab 512 and at most 7 layers. Its name and shape_of are the original's.
SyntheticPreset miniature(const SyntheticPreset& p);

// Chooses each tensor's stored type. The recipes live in the quantize module
// (quantize::synthetic_recipe); the engine only writes what it is told.
using TypeChooser = std::function<Result<TensorType>(std::string_view tensor_name, const std::vector<uint64_t>& ne)>;

// Estimated bytes of the file for a preset whose tensors get the chooser's types.
Result<uint64_t> estimate_synthetic_bytes(const SyntheticPreset& p, const TypeChooser& choose);

// Path of the cached file for (preset, type_label), creating it first if needed with the
// chooser's types (progress on stderr). type_label names the recipe in the file name.
Result<std::string> ensure_synthetic_model(const SyntheticPreset& p, std::string_view type_label,
                                           const TypeChooser& choose, int n_threads);

// Writes the preset's file at `path` (no cache, no size checks): random N(0, 0.02) weights,
// norms of 1, the chooser's types. Used by ensure_synthetic_model and by tests (miniature()).
Status write_synthetic_model(const SyntheticPreset& p, const std::string& path, const TypeChooser& choose,
                             int n_threads);

std::string synthetic_cache_dir();

}  // namespace hearth::eval
