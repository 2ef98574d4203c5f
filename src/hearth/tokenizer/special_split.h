// Splits input text around special tokens written in it, before the model's tokenizer runs
// (llama.cpp's tokenizer_st_partition). Special tokens are tried longest text first; each one
// splits every remaining text fragment at all of its occurrences, left to right. User-defined
// tokens are always split out; control and unknown tokens only with `parse_special`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "hearth/tokenizer/vocab.h"

namespace hearth::tokenizer {

struct TextFragment {
  int32_t token = kNoToken;  // a special token, or kNoToken for raw text
  size_t offset = 0;         // raw text: bytes [offset, offset + length) of the input
  size_t length = 0;
};

std::vector<TextFragment> split_special_tokens(const Vocab& vocab, std::string_view text, bool parse_special);

}  // namespace hearth::tokenizer
