// GPT-2 byte alphabet (openai/gpt-2 encoder.py bytes_to_unicode).
#include <gtest/gtest.h>

#include <set>

#include "hearth/tokenizer/byte_encoding.h"

namespace hearth::tokenizer {
namespace {

TEST(ByteEncoding, KnownValues) {
  EXPECT_EQ(byte_to_unicode('!'), uint32_t('!'));
  EXPECT_EQ(byte_to_unicode('~'), uint32_t('~'));
  EXPECT_EQ(byte_to_unicode(0x00), 0x100u);  // first non-printable byte
  EXPECT_EQ(byte_to_unicode(' '), 0x120u);   // "Ġ", the 33rd (0x00..0x20)
  EXPECT_EQ(byte_to_unicode('\n'), 0x10Au);  // "Ċ"
  EXPECT_EQ(byte_to_unicode(0x7F), 0x121u);  // after the 33 low bytes
  EXPECT_EQ(byte_to_unicode(0xA0), 0x142u);  // 0x7F..0xA0 are 34 bytes: 0x121..0x142
  EXPECT_EQ(byte_to_unicode(0xAD), 0x143u);  // the soft hyphen is the 68th and last
  EXPECT_EQ(byte_to_unicode(0xAE), 0xAEu);
  EXPECT_EQ(byte_encode("a b\n"),
            "a\xC4\xA0"
            "b\xC4\x8A");
}

TEST(ByteEncoding, IsABijection) {
  std::set<uint32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = byte_to_unicode(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(cp).second);
    EXPECT_EQ(unicode_to_byte(cp), b);
  }
  EXPECT_EQ(unicode_to_byte(0x144), -1);
  EXPECT_EQ(unicode_to_byte(0x20), -1);
  EXPECT_EQ(unicode_to_byte(0xAD), -1);
}

}  // namespace
}  // namespace hearth::tokenizer
