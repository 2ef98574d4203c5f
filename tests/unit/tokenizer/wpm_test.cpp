// WordPiece on a hand-made vocabulary; expectations are worked out by hand beside them.
#include <gtest/gtest.h>

#include "hearth/tokenizer/wpm.h"
#include "test_vocab.h"

namespace hearth::tokenizer {
namespace {

using testing::make;
using Ids = std::vector<int32_t>;

// Word-initial pieces carry U+2581 ("▁"); continuations ("##x" in vocab.txt) are bare.
VocabSpec bert_spec() {
  VocabSpec s;
  s.model = "bert";
  s.tokens = {"[PAD]",
              "[UNK]",
              "[CLS]",
              "[SEP]",  // 0..3
              "\xE2\x96\x81hello",
              "\xE2\x96\x81un",
              "aff",
              "able",  // 4..7
              "\xE2\x96\x81,",
              "\xE2\x96\x81!",
              "\xE2\x96\x81"
              "apfel",
              "\xE2\x96\x81"
              "a"};  // 8..11
  s.token_types = {3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
  s.unk_id = 1;
  s.bos_id = 2;
  s.sep_id = 3;
  s.pad_id = 0;
  return s;
}

TEST(Wpm, Preprocess) {
  // NFD + lowercase, accents dropped, punctuation split off, CJK characters one per word,
  // control characters (ZWJ U+200D) removed, whitespace splits.
  EXPECT_EQ(wpm_preprocess("Hello, UNAFFABLE!"), (std::vector<std::string>{"hello", ",", "unaffable", "!"}));
  EXPECT_EQ(wpm_preprocess("\xC3\x84pfel  Vi\xE1\xBB\x87t"),  // Äpfel Việt
            (std::vector<std::string>{"apfel", "viet"}));
  EXPECT_EQ(wpm_preprocess("\xE6\x88\x91\xE6\x83\xB3"
                           "a"),  // 我想a
            (std::vector<std::string>{"\xE6\x88\x91", "\xE6\x83\xB3", "a"}));
  EXPECT_EQ(wpm_preprocess("a\xE2\x80\x8D"
                           "b"),
            (std::vector<std::string>{"ab"}));
  EXPECT_EQ(wpm_preprocess(" \t\n"), (std::vector<std::string>{}));
}

TEST(Wpm, GreedyLongestPieces) {
  auto tok = make(bert_spec());
  ASSERT_TRUE(tok);
  // hello | , | un aff able | !
  EXPECT_EQ(tok->encode("Hello, UNAFFABLE!", false, false), (Ids{4, 8, 5, 6, 7, 9}));
  // "Äpfel" -> "apfel": the longest piece ▁apfel beats ▁a.
  EXPECT_EQ(tok->encode("\xC3\x84pfel", false, false), (Ids{10}));
  // "unx": ▁un then "x" has no piece, so the whole word is [UNK].
  EXPECT_EQ(tok->encode("unx hello", false, false), (Ids{1, 4}));
  // add_special wraps in [CLS] ... [SEP].
  EXPECT_EQ(tok->encode("hello", true, false), (Ids{2, 4, 3}));
}

TEST(Wpm, Decode) {
  auto tok = make(bert_spec());
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->token_to_piece(4), " hello");
  EXPECT_EQ(tok->token_to_piece(6), "aff");
  // Pieces joined, then " ," and " !" cleaned up; the leading space stays (no space prefix
  // flag for WordPiece, as in llama.cpp).
  EXPECT_EQ(tok->decode(Ids{4, 8, 5, 6, 7, 9}), " hello, unaffable!");
}

}  // namespace
}  // namespace hearth::tokenizer
