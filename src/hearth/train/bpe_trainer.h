// Trains a SentencePiece-style BPE vocabulary with byte fallback (tokenizer.ggml.model =
// "llama"), which hearth's tokenizer (and llama.cpp's) then reads from the model file.
// Layout, as SentencePiece writes it: <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF>,
// then the kept characters and the merged pieces, each scored by the order it was learned in
// (the encoder merges the best-scored adjacent pair first). Spaces are U+2581 and start a
// word; pieces never cross a word boundary or a newline.
// Reference: Kudo & Richardson 2018 (SentencePiece); Sennrich et al. 2016 (BPE).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/tokenizer/vocab.h"

namespace hearth::train {

struct BpeOptions {
  int64_t vocab_size = 512;       // total, including the 3 special and 256 byte tokens
  double char_coverage = 0.9995;  // characters kept as tokens (the rest fall back to bytes)
};

// Trains on `texts` (UTF-8; documents or paragraphs). Fails when vocab_size leaves no room
// beyond the special and byte tokens, or the text is empty.
Result<tokenizer::VocabSpec> train_bpe(const std::vector<std::string_view>& texts, const BpeOptions& opts);

}  // namespace hearth::train
