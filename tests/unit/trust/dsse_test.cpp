#include <gtest/gtest.h>

#include "hearth/core/base64.h"
#include "hearth/trust/dsse.h"

namespace hearth::trust {
namespace {

// The test vector from the DSSE spec (protocol.md, "Test case"):
// PAE("http://example.com/HelloWorld", "hello world")
//   = "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
TEST(Dsse, PaeSpecVector) {
  EXPECT_EQ(pae("http://example.com/HelloWorld", "hello world"),
            "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
}

TEST(Dsse, PaeLengthsAreBytesNotCharacters) {
  // "é" is two bytes in UTF-8; the empty body has length 0.
  EXPECT_EQ(pae("t\xc3\xa9", ""), "DSSEv1 3 t\xc3\xa9 0 ");
}

TEST(Base64, Rfc4648Vectors) {
  // RFC 4648 §10.
  const std::pair<const char*, const char*> v[] = {{"", ""},
                                                   {"f", "Zg=="},
                                                   {"fo", "Zm8="},
                                                   {"foo", "Zm9v"},
                                                   {"foob", "Zm9vYg=="},
                                                   {"fooba", "Zm9vYmE="},
                                                   {"foobar", "Zm9vYmFy"}};
  for (auto [plain, enc] : v) {
    EXPECT_EQ(base64_encode(plain), enc);
    auto d = base64_decode(enc);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, plain);
  }
  std::string bin = {'\0', '\xff', '\x80'};
  EXPECT_EQ(*base64_decode(base64_encode(bin)), bin);
}

TEST(Base64, RefusesMalformedInput) {
  for (const char* s : {"Zg=", "Z===", "Zm9v!A==", "=Zm9", "Zg==Zg==", "Zm 9"}) {
    EXPECT_FALSE(base64_decode(s).ok()) << s;
  }
}

}  // namespace
}  // namespace hearth::trust
