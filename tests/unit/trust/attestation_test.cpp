// Attestations (signed in-toto statements about a model, e.g. quantize provenance) stored as
// referrers: describe_model lists and checks them; the verifier never counts one as a
// signature of the model, whatever it claims.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "hearth/core/atomic_file.h"
#include "hearth/store/model_import.h"
#include "hearth/trust/model_description.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/model_statement.h"
#include "hearth/trust/sigstore_bundle.h"
#include "hearth/trust/trust_policy.h"
#include "hearth/trust/verifier.h"
#include "shared_data.h"

namespace hearth::trust {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSlsa = "https://slsa.dev/provenance/v1";

std::string statement_about(std::string_view sha256_hex, std::string_view predicate_type = kSlsa) {
  return R"({"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"m.gguf","digest":{"sha256":")" +
         std::string(sha256_hex) + R"("}}],"predicateType":")" + std::string(predicate_type) +
         R"(","predicate":{"buildDefinition":{"buildType":"urn:hearth:build-type:quantize:v1"}}})";
}

class Attestations : public ::testing::Test {
 protected:
  void SetUp() override {
    HEARTH_REQUIRE_SHARED(shared);
    home_ = testing::make_temp_dir("hearth-attest");
    st_.emplace(*store::Store::open(home_.string()));
    auto imp = store::import_gguf(*st_, (shared / "models/stories260K-Q8_0.gguf").string(), ref(), {});
    ASSERT_TRUE(imp.ok()) << imp.status().message();
    manifest_ = imp->manifest;
    weights_ = imp->weights.digest;
    fs::create_directories(home_ / "trust");
    ASSERT_TRUE(write_file_atomic((home_ / "trust/lab.pub").string(), key_.public_key().pem()).ok());
    ASSERT_TRUE(
        write_file_atomic((home_ / "trust/policy.json").string(),
                          std::string_view(R"({"publishers":[{"name":"lab","key":"lab.pub","models":["tiny/*"]}]})"))
            .ok());
    policy_ = *load_policy((home_ / "trust/policy.json").string());
  }
  void TearDown() override {
    if (!home_.empty()) fs::remove_all(home_);
  }
  static store::Reference ref() { return *store::parse_reference("tiny/stories:v1"); }
  void attest(const std::string& statement, const PrivateKey& key, std::string_view predicate = kSlsa) {
    auto b = sign_in_toto(statement, key);
    ASSERT_TRUE(b.ok()) << b.status().message();
    auto d = store_attestation(*st_, manifest_, serialize_bundle(*b), predicate);
    ASSERT_TRUE(d.ok()) << d.status().message();
  }

  fs::path home_;
  std::optional<store::Store> st_;
  store::Digest manifest_, weights_;
  PrivateKey key_ = *PrivateKey::generate(KeyAlgorithm::kEcdsaP256);
  PrivateKey stranger_ = *PrivateKey::generate(KeyAlgorithm::kEcdsaP256);
  TrustPolicy policy_;
};

TEST_F(Attestations, AreListedAndCheckedAgainstTheWeights) {
  attest(statement_about(weights_.hex()), key_);
  attest(statement_about(std::string(64, '0')), key_);  // about other weights
  attest(statement_about(weights_.hex()), stranger_);
  auto p = describe_model(*st_, ref(), policy_);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_TRUE(p->signatures.empty());
  ASSERT_EQ(p->attestations.size(), 3u);
  int verified = 0, other_weights = 0, unknown_key = 0;
  for (const auto& a : p->attestations) {
    EXPECT_EQ(a.predicate_type, kSlsa);
    if (a.status == "verified") {
      ++verified;
      EXPECT_EQ(a.publisher, "lab");
      EXPECT_NE(a.statement_json.find("urn:hearth:build-type:quantize:v1"), std::string::npos);
    }
    other_weights += a.status == "its subject is not this model's weights";
    unknown_key += a.status == "key not in the trust policy";
  }
  EXPECT_EQ(verified, 1);
  EXPECT_EQ(other_weights, 1);
  EXPECT_EQ(unknown_key, 1);
  EXPECT_NE(format_provenance(*p).find("attestation:  https://slsa.dev/provenance/v1, key "), std::string::npos);
}

TEST_F(Attestations, NeverCountAsASignature) {
  // Even a trusted key's attestation, and even one whose payload is a real model-signing
  // statement, does not sign the model when stored as an attestation.
  attest(statement_about(weights_.hex()), key_);
  auto m = st_->read_manifest(manifest_);
  ASSERT_TRUE(m.ok());
  auto s = statement_for_manifest(*m, "tiny/stories");
  ASSERT_TRUE(s.ok());
  auto b = sign_statement(*s, key_);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(store_attestation(*st_, manifest_, serialize_bundle(*b), kSlsa).ok());
  ArtifactVerifier v(*st_, policy_);
  auto r = v.verify(ref(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("the model is not signed"), std::string::npos) << r.status().message();
  // A real signature next to them still verifies.
  ASSERT_TRUE(sign_model(*st_, ref(), key_).ok());
  auto ok = v.verify(ref(), {});
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->publisher(), "lab");
  EXPECT_TRUE(ok->notes().empty());
}

TEST_F(Attestations, NeedAPredicateTypeOtherThanTheModelSignature) {
  auto b = sign_in_toto(statement_about(weights_.hex()), key_);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(store_attestation(*st_, manifest_, serialize_bundle(*b), "").ok());
  EXPECT_FALSE(store_attestation(*st_, manifest_, serialize_bundle(*b), kModelSigningPredicateType).ok());
}

}  // namespace
}  // namespace hearth::trust
