// Byte-level BPE on a hand-made vocabulary; expectations are worked out by hand beside them.
#include <gtest/gtest.h>

#include "test_vocab.h"

namespace hearth::tokenizer {
namespace {

using testing::make;
using Ids = std::vector<int32_t>;

// "Ġ" is U+0120, GPT-2's stand-in for the space byte.
VocabSpec hello_spec(const std::string& pre = "gpt-2") {
  VocabSpec s;
  s.model = "gpt2";
  s.pre = pre;
  s.tokens = {"h",
              "e",
              "l",
              "o",
              "\xC4\xA0",
              "w",
              "r",
              "d",  // 0..7
              "he",
              "ll",
              "llo",
              "hello",
              "\xC4\xA0w",
              "or",  // 8..13
              "\xC4\xA0wor",
              "ld",
              "\xC4\xA0world",
              ",",
              "\xC4\xA0,",  // 14..18
              "<|endoftext|>",
              "i",
              "hi"};  // 19..21
  s.token_types.assign(s.tokens.size(), 1);
  s.token_types[19] = 3;
  s.merges = {"h e", "l l",          "ll o", "he llo",         "\xC4\xA0 w",
              "o r", "\xC4\xA0w or", "l d",  "\xC4\xA0wor ld", "\xC4\xA0 ,"};
  s.eos_id = 19;
  s.bos_id = 19;
  return s;
}

TEST(Bpe, MergesByRank) {
  auto tok = make(hello_spec());
  ASSERT_TRUE(tok);
  // "hello": h e l l o. Ranks: h e 0, l l 1 -> he ll o; ll o 2 -> he llo; he llo 3 -> hello.
  // " world": Ġ w 4 -> Ġw o r l d; o r 5; Ġw or 6; l d 7; Ġwor ld 8 -> Ġworld.
  EXPECT_EQ(tok->encode("hello world", false, false), (Ids{11, 16}));
  // "held": h e 0 -> he l d; l d 7 -> he ld; "he ld" has no rank.
  EXPECT_EQ(tok->encode("held", false, false), (Ids{8, 15}));
}

TEST(Bpe, BytesWithoutTokensAreDropped) {
  auto tok = make(hello_spec());
  ASSERT_TRUE(tok);
  // "z" is not in the vocabulary and neither is its byte: llama.cpp drops it.
  EXPECT_EQ(tok->encode("hez", false, false), (Ids{8}));
}

TEST(Bpe, IgnoreMergesEmitsWholeWordTokens) {
  // gpt-2: "hi" has no merge, so h i. llama-bpe (ignore_merges): "hi" is a token, so hi.
  auto gpt2 = make(hello_spec("gpt-2"));
  auto llama3 = make(hello_spec("llama-bpe"));
  ASSERT_TRUE(gpt2 && llama3);
  EXPECT_EQ(gpt2->encode("hi", false, false), (Ids{0, 20}));
  EXPECT_EQ(llama3->encode("hi", false, false), (Ids{21}));
  EXPECT_TRUE(llama3->add_bos());  // llama3 vocabularies add BOS by default
  EXPECT_FALSE(gpt2->add_bos());
}

TEST(Bpe, ParseSpecial) {
  auto tok = make(hello_spec());
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("hello<|endoftext|>hello", false, true), (Ids{11, 19, 11}));
  // As text, '<' '|' ... are not in this vocabulary; only the letters survive:
  // "hello<|endoftext|>hello" pre-splits into hello, <|, endoftext, |>, hello.
  const Ids as_text = tok->encode("hello<|endoftext|>hello", false, false);
  EXPECT_EQ(as_text.front(), 11);
  EXPECT_EQ(as_text.back(), 11);
  EXPECT_EQ(std::count(as_text.begin(), as_text.end(), 19), 0);
}

TEST(Bpe, DecodeUndoesByteMappingAndCleansSpaces) {
  auto tok = make(hello_spec());
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->token_to_piece(16), " world");
  EXPECT_EQ(tok->token_to_piece(4), " ");
  EXPECT_EQ(tok->token_to_piece(19), "");
  EXPECT_EQ(tok->token_to_piece(19, true), "<|endoftext|>");
  EXPECT_EQ(tok->decode(Ids{11, 16}), "hello world");
  // gpt-2 vocabularies clean up " ," -> "," when decoding (llama.cpp clean_spaces).
  EXPECT_EQ(tok->decode(Ids{11, 18, 16}), "hello, world");
  EXPECT_TRUE(tok->is_eog(19));
}

TEST(Bpe, RejectsUnknownPreTokenizerAndMissingMerges) {
  VocabSpec s = hello_spec("no-such-pre");
  EXPECT_EQ(Tokenizer::create(s).status().code(), ErrorCode::kNotFound);
  VocabSpec m = hello_spec();
  m.merges.clear();
  EXPECT_FALSE(Tokenizer::create(m).ok());
}

}  // namespace
}  // namespace hearth::tokenizer
