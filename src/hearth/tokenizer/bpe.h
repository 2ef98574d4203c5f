// Byte-level BPE (GPT-2 style, llama.cpp's llm_tokenizer_bpe): the pre-tokenizer splits the
// text into words, each word's bytes are mapped to GPT-2's byte alphabet, and within a word
// the adjacent pair with the lowest merge rank is merged until no ranked pair remains.
// Ref: Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword Units";
// Radford et al. 2019 (GPT-2) for the byte-level alphabet.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "hearth/tokenizer/pretokenizer.h"
#include "hearth/tokenizer/vocab.h"

namespace hearth::tokenizer {

// Appends the tokens of `text` to `out`.
void bpe_tokenize(const Vocab& vocab, const PreTokenizer& pre, std::string_view text, std::vector<int32_t>& out);

}  // namespace hearth::tokenizer
