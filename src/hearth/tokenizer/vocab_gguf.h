// Reads a tokenizer's VocabSpec from GGUF metadata (the tokenizer.ggml.* keys). The only
// tokenizer file that knows about GGUF.
#pragma once

#include "hearth/core/status.h"
#include "hearth/tokenizer/vocab.h"

namespace hearth::gguf {
class GgufFile;
}

namespace hearth::tokenizer {

// NotFound when the file has no tokenizer (no tokenizer.ggml.model or tokens);
// InvalidArgument when a key has the wrong type or the arrays disagree in length.
Result<VocabSpec> vocab_spec_from_gguf(const gguf::GgufFile& file);

}  // namespace hearth::tokenizer
