// SentencePiece BPE on hand-made vocabularies; every expectation is worked out by hand in the
// comment above it.
#include <gtest/gtest.h>

#include "test_vocab.h"

namespace hearth::tokenizer {
namespace {

using testing::byte_id;
using testing::kFirstPiece;
using testing::make;
using testing::spm_spec;
using Ids = std::vector<int32_t>;

// ids: 259 ▁, 260 a, 261 b, 262 c, 263 ab, 264 bc, 265 abc, 266 ▁a
VocabSpec abc_spec() {
  return spm_spec({{"\xE2\x96\x81", -1},
                   {"a", -1},
                   {"b", -1},
                   {"c", -1},
                   {"ab", -2},
                   {"bc", -0.5f},
                   {"abc", -3},
                   {"\xE2\x96\x81"
                    "a",
                    -4}});
}

TEST(Spm, MergesHighestScoreFirst) {
  auto tok = make(abc_spec());
  ASSERT_TRUE(tok);
  // "abc" -> "▁abc" -> symbols ▁ a b c. Pairs: ▁a -4, ab -2, bc -0.5. bc wins (-0.5), then
  // a+bc = abc (-3) beats ▁a (-4); ▁abc is no token. Result: ▁ abc.
  EXPECT_EQ(tok->encode("abc", false, false), (Ids{259, 265}));
  // "ab" -> ▁ a b: ab (-2) beats ▁a (-4); ▁ab is no token.
  EXPECT_EQ(tok->encode("ab", false, false), (Ids{259, 263}));
  // "a" -> ▁a (the only pair).
  EXPECT_EQ(tok->encode("a", false, false), (Ids{266}));
}

TEST(Spm, EqualScoresMergeLeftmostFirst) {
  // 259 a, 260 aa; add_space_prefix off, so "aaaaa": pairs (0,1) (1,2) (2,3) (3,4) all -1; leftmost first
  // gives aa a a a, then (2,3) -> aa aa a; "aaa"/"aaaa" are no tokens. Result: aa aa a.
  VocabSpec s = spm_spec({{"a", -1}, {"aa", -1}});
  s.add_space_prefix = false;
  auto tok2 = make(s);
  ASSERT_TRUE(tok2);
  EXPECT_EQ(tok2->encode("aaaaa", false, false), (Ids{260, 260, 259}));
}

TEST(Spm, ByteFallbackForUnknownCharacters) {
  auto tok = make(abc_spec());
  ASSERT_TRUE(tok);
  // "é" is C3 A9 and no token: ▁ then the two byte tokens.
  EXPECT_EQ(tok->encode("\xC3\xA9", false, false), (Ids{259, byte_id(0xC3), byte_id(0xA9)}));
  // A newline has no piece: byte token <0x0A>.
  EXPECT_EQ(tok->encode("a\n", false, false), (Ids{266, byte_id(0x0A)}));
}

TEST(Spm, InvalidUtf8FallsBackToBytes) {
  auto tok = make(abc_spec());
  ASSERT_TRUE(tok);
  // A stray continuation byte and a truncated 3-byte sequence: each byte as itself.
  EXPECT_EQ(tok->encode("\x80"
                        "a\xE2\x82",
                        false, false),
            (Ids{259, byte_id(0x80), 260, byte_id(0xE2), byte_id(0x82)}));
}

TEST(Spm, MissingByteTokenBecomesUnknown) {
  VocabSpec s;
  s.model = "llama";
  s.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "x"};
  s.token_types = {2, 3, 3, 1, 1};
  auto tok = make(s);
  ASSERT_TRUE(tok);
  // "y" has no piece and no <0x79> byte token: <unk> (id 0).
  EXPECT_EQ(tok->encode("xy", false, false), (Ids{3, 4, 0}));
}

TEST(Spm, AddSpecialAddsBos) {
  auto tok = make(abc_spec());
  ASSERT_TRUE(tok);
  EXPECT_TRUE(tok->add_bos());  // SentencePiece default when add_bos_token is missing
  EXPECT_EQ(tok->encode("a", true, false), (Ids{1, 266}));
  EXPECT_EQ(tok->encode("", true, false), (Ids{1}));
  EXPECT_EQ(tok->encode("", false, false), (Ids{}));
  VocabSpec s = abc_spec();
  s.add_bos = false;
  s.add_eos = true;
  auto tok2 = make(s);
  EXPECT_EQ(tok2->encode("a", true, false), (Ids{266, 2}));
}

TEST(Spm, ParseSpecialMatchesControlTokens) {
  auto tok = make(abc_spec());
  ASSERT_TRUE(tok);
  // With parse_special "<s>" is token 1 and the text after it gets the space prefix again.
  EXPECT_EQ(tok->encode("a<s>a", false, true), (Ids{266, 1, 266}));
  // Without, "<s>" is text: ▁a, then '<' 's' '>' have no pieces and fall back to bytes.
  EXPECT_EQ(tok->encode("a<s>a", false, false), (Ids{266, byte_id('<'), byte_id('s'), byte_id('>'), 260}));
}

TEST(Spm, PiecesAndDecode) {
  auto tok = make(abc_spec());
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->token_to_piece(266), " a");
  EXPECT_EQ(tok->token_to_piece(byte_id(0x41)), "A");
  EXPECT_EQ(tok->token_to_piece(1), "");
  EXPECT_EQ(tok->token_to_piece(1, true), "<s>");
  EXPECT_EQ(tok->token_to_piece(0, true), "<unk>");
  EXPECT_EQ(tok->token_to_piece(-5), "");
  EXPECT_EQ(tok->token_to_piece(100000), "");
  // The leading space that encode() added is dropped again.
  EXPECT_EQ(tok->decode(Ids{266, 265}), "aabc");
  // llama.cpp's detokenize: a BOS kept in the ids renders as nothing and uses up the strip.
  EXPECT_EQ(tok->decode(Ids{1, 266}), " a");
  EXPECT_EQ(tok->decode(Ids{1, 266}, {.remove_special = true}), " a");
  EXPECT_EQ(tok->decode(Ids{1, 266}, {.render_special = true}), "<s> a");
}

TEST(Spm, RoundTripsArbitraryText) {
  auto tok = make(abc_spec());
  ASSERT_TRUE(tok);
  for (const char* text : {"abc abc", "  two leading", "tab\tand\nnewline", "caf\xC3\xA9", "\xF0\x9F\xA6\x99 llama",
                           "cab bac", "trailing  "}) {
    const auto ids = tok->encode(text, false, false);
    EXPECT_EQ(tok->decode(ids), text);
  }
}

TEST(Spm, IsEogAndIds) {
  auto tok = make(abc_spec());
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->bos(), 1);
  EXPECT_EQ(tok->eos(), 2);
  EXPECT_EQ(tok->unk(), 0);
  EXPECT_TRUE(tok->is_eog(2));
  EXPECT_FALSE(tok->is_eog(1));
  EXPECT_FALSE(tok->is_eog(kFirstPiece));
  EXPECT_EQ(tok->n_vocab(), 267);
}

TEST(Spm, RejectsBadSpecs) {
  VocabSpec empty;
  empty.model = "llama";
  EXPECT_FALSE(Tokenizer::create(empty).ok());
  VocabSpec dup = spm_spec({{"a", 0}, {"a", 0}});
  auto r = Tokenizer::create(dup);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("duplicates"), std::string::npos);
  VocabSpec short_scores = spm_spec({{"a", 0}});
  short_scores.scores.resize(3);
  EXPECT_FALSE(Tokenizer::create(short_scores).ok());
  VocabSpec unknown_model = spm_spec({});
  unknown_model.model = "t5";
  EXPECT_EQ(Tokenizer::create(unknown_model).status().code(), ErrorCode::kUnimplemented);
}

}  // namespace
}  // namespace hearth::tokenizer
