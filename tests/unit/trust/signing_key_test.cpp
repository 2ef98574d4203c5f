#include <gtest/gtest.h>

#include "hearth/store/digest.h"
#include "hearth/trust/signing_key.h"

namespace hearth::trust {
namespace {

class SigningKeyTest : public ::testing::TestWithParam<KeyAlgorithm> {};

TEST_P(SigningKeyTest, SignVerifyAndRefuse) {
  auto key = PrivateKey::generate(GetParam());
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ(key->algorithm(), GetParam());
  auto sig = key->sign("message");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(key->public_key().verify("message", *sig).ok());
  EXPECT_EQ(key->public_key().verify("messagf", *sig).code(), ErrorCode::kUnauthenticated);
  std::string bad = *sig;
  bad[bad.size() / 2] ^= 1;
  EXPECT_EQ(key->public_key().verify("message", bad).code(), ErrorCode::kUnauthenticated);
  auto other = PrivateKey::generate(GetParam());
  EXPECT_EQ(other->public_key().verify("message", *sig).code(), ErrorCode::kUnauthenticated);
  // PEM round trips keep the key id: sha256 hex of the SubjectPublicKeyInfo PEM (the
  // model-signing key hint).
  auto again = PrivateKey::from_pem(key->private_pem(), "test");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->public_key().key_id(), key->public_key().key_id());
  EXPECT_EQ(key->public_key().key_id(), std::string(store::sha256_of(key->public_key().pem()).hex()));
  auto pub = PublicKey::from_pem(key->public_key().pem(), "test");
  ASSERT_TRUE(pub.ok());
  EXPECT_TRUE(pub->verify("message", *sig).ok());
}

INSTANTIATE_TEST_SUITE_P(Algorithms, SigningKeyTest,
                         ::testing::Values(KeyAlgorithm::kEcdsaP256, KeyAlgorithm::kEd25519));

TEST(SigningKey, RefusesGarbagePem) {
  EXPECT_EQ(PublicKey::from_pem("not a key", "x").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "x").status().code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace hearth::trust
