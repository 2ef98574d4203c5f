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

namespace hearth::engine {

struct SyntheticPreset {
  std::string_view name;      // "1b", "3b", "7b", "8x7b"
  std::string_view shape_of;  // the real model whose shape it copies
  int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_expert, n_expert_used, n_ctx;
  float rope_base;
  bool tied_output;
};

const SyntheticPreset* find_preset(std::string_view name);
std::vector<const SyntheticPreset*> all_presets();

// Chooses each tensor's stored type for a file type name ("q4_k_m", "q8_0", "f16", ...).
// Returns an error for unknown names.
using TypeChooser = std::function<TensorType(std::string_view tensor_name, const std::vector<uint64_t>& ne)>;
Result<TypeChooser> default_type_chooser(std::string_view file_type, int64_t n_layer, int64_t n_expert);

// Estimated bytes of the file for a preset and file type.
Result<uint64_t> estimate_synthetic_bytes(const SyntheticPreset& p, std::string_view file_type);

// Path of the cached file, creating it first if needed (progress on stderr).
Result<std::string> ensure_synthetic_model(const SyntheticPreset& p, std::string_view file_type, int n_threads);

std::string synthetic_cache_dir();

}  // namespace hearth::engine
