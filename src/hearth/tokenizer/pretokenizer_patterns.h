// The pre-tokenizer settings for each `tokenizer.ggml.pre` name: the split patterns (from the
// models' tokenizer.json, as adapted by llama.cpp) and the per-model encoding flags.
#pragma once

#include <string_view>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::tokenizer {

struct PreTokenizerConfig {
  std::vector<std::string_view> patterns;
  bool ignore_merges = false;  // a word that is already a token is emitted whole
  bool add_bos = false;        // default for add_bos_token when the file does not say
  bool clean_spaces = true;    // detokenizer removes spaces before punctuation
};

// Settings for `pre` ("" means the legacy default). NotFound for an unknown name.
Result<PreTokenizerConfig> pretokenizer_config(std::string_view pre);

}  // namespace hearth::tokenizer
