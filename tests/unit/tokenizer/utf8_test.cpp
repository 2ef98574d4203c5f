// UTF-8 decoding and validation.
#include <gtest/gtest.h>

#include "hearth/tokenizer/utf8.h"

namespace hearth::tokenizer {
namespace {

using Cps = std::vector<uint32_t>;

TEST(Utf8, LenientDecodeReplacesEachBadByte) {
  EXPECT_EQ(decode_utf8_lenient("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\xA6\x99"), (Cps{'a', 0xE9, 0x20AC, 0x1F999}));
  // Stray continuation, truncated sequence at the end (two bad bytes), 0xFF.
  EXPECT_EQ(decode_utf8_lenient("\x80"
                                "a\xE2\x82"),
            (Cps{0xFFFD, 'a', 0xFFFD, 0xFFFD}));
  EXPECT_EQ(decode_utf8_lenient("\xFF"), (Cps{0xFFFD}));
  // F7 BF BF BF encodes 0x1FFFFF, beyond Unicode: one U+FFFD for the sequence.
  EXPECT_EQ(decode_utf8_lenient("\xF7\xBF\xBF\xBF"), (Cps{0xFFFD}));
}

TEST(Utf8, EncodeRoundTrip) {
  for (uint32_t cp : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    EXPECT_EQ(decode_utf8_lenient(encode_utf8(cp)), (Cps{cp}));
  }
}

TEST(Utf8, NextSequence) {
  using K = Utf8Sequence;
  auto check = [](std::string_view s, K::Kind kind, size_t len) {
    const Utf8Sequence r = next_utf8_sequence(s);
    EXPECT_EQ(r.kind, kind) << s.size();
    EXPECT_EQ(r.length, len) << s.size();
  };
  check("a", K::kComplete, 1);
  check("\xC3\xA9", K::kComplete, 2);
  check("\xC3", K::kIncomplete, 1);
  check("\xF0\x9F\xA6", K::kIncomplete, 3);
  check("\xC0\x80", K::kInvalid, 1);      // overlong lead
  check("\xE0\x80\x80", K::kInvalid, 1);  // overlong: E0 needs A0..BF next
  check("\xED\xA0\x80", K::kInvalid, 1);  // surrogate: ED needs 80..9F next
  check(
      "\xE2\x82"
      "a",
      K::kInvalid, 2);  // maximal subpart E2 82
  check("\xF4\x90\x80\x80", K::kInvalid, 1);
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9llo \xF0\x9F\xA6\x99"));
  EXPECT_FALSE(is_valid_utf8("\xC3"));
}

}  // namespace
}  // namespace hearth::tokenizer
