// SentencePiece-style BPE (llama.cpp's llm_tokenizer_spm): start from UTF-8 characters and
// repeatedly merge the adjacent pair whose concatenation is the highest-scoring token (ties:
// leftmost first); pieces that are not tokens fall back to <0xXX> byte tokens.
// Ref: Kudo & Richardson 2018, "SentencePiece"; llama.cpp commit 074bea2.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "hearth/tokenizer/vocab.h"

namespace hearth::tokenizer {

// Appends the tokens of `text` (whose spaces are already escaped as U+2581) to `out`.
void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);

}  // namespace hearth::tokenizer
