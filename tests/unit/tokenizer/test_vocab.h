// Small hand-made vocabularies for the tokenizer tests.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "hearth/tokenizer/tokenizer.h"

namespace hearth::tokenizer::testing {

// SentencePiece vocabulary: 0 <unk>, 1 <s>, 2 </s>, 3..258 the byte tokens <0x00>..<0xFF>,
// then `pieces` (normal tokens) with their scores from id 259 on.
inline VocabSpec spm_spec(const std::vector<std::pair<std::string, float>>& pieces) {
  VocabSpec s;
  s.model = "llama";
  s.tokens = {"<unk>", "<s>", "</s>"};
  s.token_types = {2, 3, 3};
  s.scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    s.tokens.push_back(buf);
    s.token_types.push_back(6);
    s.scores.push_back(0);
  }
  for (const auto& [text, score] : pieces) {
    s.tokens.push_back(text);
    s.token_types.push_back(1);
    s.scores.push_back(score);
  }
  return s;
}

inline constexpr int32_t kFirstPiece = 259;
inline int32_t byte_id(uint8_t b) { return 3 + b; }

inline std::unique_ptr<Tokenizer> make(VocabSpec spec) {
  auto r = Tokenizer::create(std::move(spec));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}

}  // namespace hearth::tokenizer::testing
