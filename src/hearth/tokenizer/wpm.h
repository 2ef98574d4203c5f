// WordPiece (BERT, llama.cpp's llm_tokenizer_wpm): normalize (NFD accent stripping,
// lowercasing, dropping control characters), split on whitespace and around punctuation and
// CJK characters, then cut each word greedily into the longest vocabulary pieces. The GGUF
// vocabulary stores word-initial pieces with a U+2581 prefix and continuation pieces ("##x"
// in BERT's vocab.txt) bare; a word with an unmatchable rest becomes [UNK].
// Ref: Devlin et al. 2019 (BERT), google-research/bert tokenization.py.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/tokenizer/vocab.h"

namespace hearth::tokenizer {

// The normalized words of `text` (BERT's BasicTokenizer).
std::vector<std::string> wpm_preprocess(std::string_view text);

// Appends the tokens of `text` to `out`.
void wpm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);

}  // namespace hearth::tokenizer
