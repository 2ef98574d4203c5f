// Loads a reference case from ../shared/reference: the JSON description and its logits.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hearth::testing {

struct ReferenceCase {
  std::string model;  // file name, e.g. stories260K-f32.gguf
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> generated_ids;
  std::vector<float> generated_margins;
  int64_t n_vocab = 0;
  std::vector<float> logits;  // [n_positions][n_vocab]
  int64_t n_positions() const { return static_cast<int64_t>(prompt_ids.size() + generated_ids.size()); }
  const float* row(int64_t p) const { return logits.data() + p * n_vocab; }
};

// Reads <dir>/<stem>.json and its logits file; throws std::runtime_error on malformed data.
ReferenceCase load_reference_case(const std::filesystem::path& dir, const std::string& stem);

// The model file for a reference model name (stories260K-* in models/, synth-* in models/synth/).
std::filesystem::path model_path(const std::filesystem::path& shared, const std::string& model_stem);

}  // namespace hearth::testing
