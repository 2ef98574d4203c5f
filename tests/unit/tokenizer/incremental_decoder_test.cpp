// Streaming decode never emits broken UTF-8.
#include <gtest/gtest.h>

#include <random>

#include "hearth/tokenizer/utf8.h"
#include "test_vocab.h"

namespace hearth::tokenizer {
namespace {

using testing::byte_id;
using testing::make;

TEST(IncrementalDecoder, HoldsSplitCharacterUntilComplete) {
  auto tok =
      make(testing::spm_spec({{"\xE2\x96\x81"
                               "a",
                               -1}}));  // 259 "▁a"
  ASSERT_TRUE(tok);
  IncrementalDecoder dec(*tok);
  // "é" = C3 A9 arrives as two byte tokens.
  EXPECT_EQ(dec.push(byte_id(0xC3)), "");
  EXPECT_EQ(dec.pending_bytes(), 1u);
  EXPECT_EQ(dec.push(byte_id(0xA9)), "\xC3\xA9");
  EXPECT_EQ(dec.pending_bytes(), 0u);
  // 🦙 = F0 9F A6 99 over four tokens, then a normal token.
  EXPECT_EQ(dec.push(byte_id(0xF0)), "");
  EXPECT_EQ(dec.push(byte_id(0x9F)), "");
  EXPECT_EQ(dec.push(byte_id(0xA6)), "");
  EXPECT_EQ(dec.push(byte_id(0x99)), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(dec.push(259), " a");
  EXPECT_EQ(dec.flush(), "");
}

TEST(IncrementalDecoder, InvalidBytesBecomeReplacementCharacters) {
  auto tok = make(testing::spm_spec({{"a", -1}}));  // 259 "a"
  ASSERT_TRUE(tok);
  IncrementalDecoder dec(*tok);
  // C3 then "a": C3 can never complete, so U+FFFD then "a".
  EXPECT_EQ(dec.push(byte_id(0xC3)), "");
  EXPECT_EQ(dec.push(259),
            "\xEF\xBF\xBD"
            "a");
  // A stray continuation byte and 0xFF are replaced at once.
  EXPECT_EQ(dec.push(byte_id(0x80)), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.push(byte_id(0xFF)), "\xEF\xBF\xBD");
  // E2 82 then end of stream: one U+FFFD for the unfinished character.
  EXPECT_EQ(dec.push(byte_id(0xE2)), "");
  EXPECT_EQ(dec.push(byte_id(0x82)), "");
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.pending_bytes(), 0u);
  // E2 82 then "a": the maximal subpart E2 82 is one U+FFFD.
  EXPECT_EQ(dec.push_bytes("\xE2\x82"), "");
  EXPECT_EQ(dec.push_bytes("a"),
            "\xEF\xBF\xBD"
            "a");
  // A surrogate encoding (ED A0 80) is ill-formed: ED, then A0 and 80 each (3 U+FFFD).
  EXPECT_EQ(dec.push_bytes("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(IncrementalDecoder, RandomByteTokensAlwaysGiveValidUtf8) {
  auto tok = make(testing::spm_spec({}));
  ASSERT_TRUE(tok);
  std::mt19937 rng(7);
  std::string all_valid_input;
  for (int round = 0; round < 200; ++round) {
    IncrementalDecoder dec(*tok);
    std::string out;
    std::string raw;
    for (int i = 0; i < 40; ++i) {
      const uint8_t b = static_cast<uint8_t>(rng() % 256);
      raw.push_back(static_cast<char>(b));
      const std::string piece = dec.push(byte_id(b));
      ASSERT_TRUE(is_valid_utf8(piece));
      out += piece;
    }
    out += dec.flush();
    ASSERT_TRUE(is_valid_utf8(out));
    if (is_valid_utf8(raw)) {
      EXPECT_EQ(out, raw);
    }
  }
}

TEST(IncrementalDecoder, ValidTextPassesThroughUnchanged) {
  auto tok = make(testing::spm_spec({}));
  ASSERT_TRUE(tok);
  const std::string text = "caf\xC3\xA9 \xE6\x88\x91 \xF0\x9F\xA6\x99!";
  IncrementalDecoder dec(*tok);
  std::string out;
  for (char c : text) out += dec.push(byte_id(static_cast<uint8_t>(c)));
  out += dec.flush();
  EXPECT_EQ(out, text);
}

}  // namespace
}  // namespace hearth::tokenizer
