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
  std::string_view name;      // "1b", "3b", "7b", "8x7b"
  std::string_view shape_of;  // the real model whose shape it copies
  int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_expert, n_expert_used, n_ctx;
  float rope_base;
  bool tied_output;
};

const SyntheticPreset* find_preset(std::string_view name);
std::vector<const SyntheticPreset*> all_presets();

// Chooses each tensor's stored type. The recipes live in the quantize module
// (quantize::synthetic_recipe); the engine only writes what it is told.
using TypeChooser = std::function<Result<TensorType>(std::string_view tensor_name, const std::vector<uint64_t>& ne)>;

// Estimated bytes of the file for a preset whose tensors get the chooser's types.
Result<uint64_t> estimate_synthetic_bytes(const SyntheticPreset& p, const TypeChooser& choose);

// Path of the cached file for (preset, type_label), creating it first if needed with the
// chooser's types (progress on stderr). type_label names the recipe in the file name.
Result<std::string> ensure_synthetic_model(const SyntheticPreset& p, std::string_view type_label,
                                           const TypeChooser& choose, int n_threads);

std::string synthetic_cache_dir();

}  // namespace hearth::eval
