#include <gtest/gtest.h>

#include "hearth/store/digest.h"

namespace hearth::store {
namespace {

TEST(Digest, Sha256KnownVectors) {
  // FIPS 180-2 appendix B.1 ("abc") and the empty message.
  EXPECT_EQ(sha256_of(std::string_view("abc")).str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_of(std::string_view("")).str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // FIPS 180-2 B.2: the 448-bit message, fed in two parts through the streaming hasher.
  Sha256 h;
  h.update(std::string_view("abcdbcdecdefdefgefghfghighij"));
  h.update(std::string_view("hijkijkljklmklmnlmnomnopnopq"));
  EXPECT_EQ(h.finish().str(), "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Digest, ParsesOnlyStrictSha256) {
  const std::string good = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  auto d = Digest::parse(good);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->hex(), good.substr(7));
  EXPECT_EQ(d->raw()[0], 0xba);
  EXPECT_EQ(d->raw()[31], 0xad);
  EXPECT_EQ(Digest::from_raw(d->raw()), *d);
}

TEST(Digest, RefusesPathTraversalAndMalformedValues) {
  const std::string hex64 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  const char* bad[] = {
      "sha256:../../../../etc/passwd",
      "sha256:../blobs/sha256/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f200",
      "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a/",
      "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",  // uppercase
      "sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015",  // short
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      "",
      "sha256:",
  };
  for (const char* s : bad) {
    auto d = Digest::parse(s);
    EXPECT_FALSE(d.ok()) << s;
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), ErrorCode::kInvalidArgument) << s;
    }
  }
  EXPECT_FALSE(Digest::parse("sha256:" + hex64 + "0").ok());  // long
  std::string with_nul = "sha256:" + hex64;
  with_nul[20] = '\0';
  EXPECT_FALSE(Digest::parse(with_nul).ok());
}

}  // namespace
}  // namespace hearth::store
