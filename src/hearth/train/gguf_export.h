// Writes a trained Llama as a standard GGUF: general.architecture = llama with the llama.* keys
// that hearth's loader and llama.cpp read, the SentencePiece vocabulary under tokenizer.ggml.*,
// and the weights as F32 or F16 (norm vectors stay F32, as llama.cpp's converter writes them).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/core/tensor_type.h"
#include "hearth/gguf/gguf_writer.h"
#include "hearth/tokenizer/vocab.h"
#include "hearth/train/llama_params.h"

namespace hearth::train {

// Adds the model's metadata, vocabulary and tensors to `out`. Converted tensor bytes are kept
// in `storage`, which must outlive the write. `type` is F32 or F16.
Status add_llama_model(gguf::GgufWriter& out, const LlamaParams& p, const float* w, const tokenizer::VocabSpec& vocab,
                       TensorType type, std::string_view name, std::vector<std::vector<std::byte>>& storage);

// The whole file, written atomically.
Status export_gguf(const std::string& path, const LlamaParams& p, const float* w, const tokenizer::VocabSpec& vocab,
                   TensorType type, std::string_view name);

}  // namespace hearth::train
