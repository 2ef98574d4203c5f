#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "hearth/core/base64.h"
#include "hearth/trust/model_statement.h"
#include "hearth/trust/sigstore_bundle.h"

namespace hearth::trust {
namespace {

using store::Digest;

store::Manifest sample_manifest() {
  store::Manifest m;
  m.artifact_type = std::string(store::kModelArtifactType);
  m.config.media_type = std::string(store::kModelConfigMediaType);
  m.config.digest = store::sha256_of(std::string_view("config"));
  m.config.size = 6;
  store::Descriptor w;
  w.media_type = std::string(store::kModelWeightMediaType);
  w.digest = store::sha256_of(std::string_view("weights"));
  w.size = 7;
  w.annotations[std::string(store::kAnnotationTitle)] = "model.gguf";
  m.layers.push_back(w);
  m.annotations[std::string(store::kAnnotationVersion)] = "4";
  return m;
}

TEST(ModelStatement, FollowsModelSigningV1Layout) {
  auto s = statement_for_manifest(sample_manifest(), "acme/stories");
  ASSERT_TRUE(s.ok());
  auto j = nlohmann::json::parse(serialize_statement(*s));
  EXPECT_EQ(j["_type"], "https://in-toto.io/Statement/v1");
  EXPECT_EQ(j["predicateType"], "https://model_signing/signature/v1.0");
  ASSERT_EQ(j["subject"].size(), 1u);
  EXPECT_EQ(j["subject"][0]["name"], "acme/stories");
  // Resources sorted by name: "config.json" < "model.gguf".
  ASSERT_EQ(j["predicate"]["resources"].size(), 2u);
  EXPECT_EQ(j["predicate"]["resources"][0]["name"], "config.json");
  EXPECT_EQ(j["predicate"]["resources"][0]["algorithm"], "sha256");
  EXPECT_EQ(j["predicate"]["resources"][1]["name"], "model.gguf");
  EXPECT_EQ(j["predicate"]["serialization"]["method"], "files");
  // Subject digest = sha256 over the raw resource digests in order (model-signing v1.0).
  store::Sha256 h;
  for (const char* content : {"config", "weights"}) {
    auto raw = store::sha256_of(std::string_view(content)).raw();
    h.update(std::string_view(reinterpret_cast<const char*>(raw.data()), 32));
  }
  EXPECT_EQ("sha256:" + j["subject"][0]["digest"]["sha256"].get<std::string>(), h.finish().str());
  EXPECT_EQ(j["predicate"]["hearth"]["version"], 4);
  auto back = parse_statement(serialize_statement(*s));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(match_statement(*back, sample_manifest()).ok());
}

TEST(ModelStatement, MismatchesAreUnauthenticated) {
  auto s = *statement_for_manifest(sample_manifest(), "acme/stories");
  auto m = sample_manifest();
  m.layers[0].digest = store::sha256_of(std::string_view("other weights"));
  EXPECT_EQ(match_statement(s, m).code(), ErrorCode::kUnauthenticated);
  m = sample_manifest();
  m.annotations[std::string(store::kAnnotationVersion)] = "5";
  EXPECT_EQ(match_statement(s, m).code(), ErrorCode::kUnauthenticated);
  m = sample_manifest();
  m.layers.push_back(m.layers[0]);
  m.layers[1].annotations[std::string(store::kAnnotationTitle)] = "extra.bin";
  EXPECT_EQ(match_statement(s, m).code(), ErrorCode::kUnauthenticated);
  m = sample_manifest();
  m.layers[0].annotations[std::string(store::kAnnotationTitle)] = "../evil";
  EXPECT_EQ(statement_for_manifest(m, "x").status().code(), ErrorCode::kInvalidArgument);
}

store::Manifest two_layer_manifest() {
  store::Manifest m = sample_manifest();
  store::Descriptor extra;
  extra.media_type = "application/vnd.example.adapter";
  extra.digest = store::sha256_of(std::string_view("adapter"));
  extra.size = 7;
  extra.annotations[std::string(store::kAnnotationTitle)] = "extra.bin";
  m.layers.push_back(extra);
  return m;
}

// Mix-and-match: the same blobs under the same names, but with their roles or order changed.
TEST(ModelStatement, RelabelledOrReorderedLayersAreUnauthenticated) {
  auto signed_s = parse_statement(serialize_statement(*statement_for_manifest(two_layer_manifest(), "acme/stories")));
  ASSERT_TRUE(signed_s.ok()) << signed_s.status().message();
  EXPECT_TRUE(signed_s->has_layout);
  ASSERT_EQ(signed_s->layers.size(), 2u);
  EXPECT_EQ(signed_s->layers[0].media_type, store::kModelWeightMediaType);
  EXPECT_TRUE(match_statement(*signed_s, two_layer_manifest()).ok());

  auto relabelled = two_layer_manifest();
  std::swap(relabelled.layers[0].media_type, relabelled.layers[1].media_type);
  Status st = match_statement(*signed_s, relabelled);
  EXPECT_EQ(st.code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(st.message().find("relabelled or reordered"), std::string::npos) << st.message();

  auto reordered = two_layer_manifest();
  std::swap(reordered.layers[0], reordered.layers[1]);
  EXPECT_EQ(match_statement(*signed_s, reordered).code(), ErrorCode::kUnauthenticated);

  auto config_relabelled = two_layer_manifest();
  config_relabelled.config.media_type = "application/vnd.example.other";
  EXPECT_EQ(match_statement(*signed_s, config_relabelled).code(), ErrorCode::kUnauthenticated);
}

// A statement signed before the layout binding (no hearth.layers) is refused with a clear
// request to re-sign, rather than accepted on file names alone.
TEST(ModelStatement, StatementWithoutLayerBindingIsRefusedClearly) {
  auto j = nlohmann::json::parse(serialize_statement(*statement_for_manifest(sample_manifest(), "acme/stories")));
  j["predicate"]["hearth"].erase("layers");
  j["predicate"]["hearth"].erase("config");
  auto old = parse_statement(j.dump());
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_FALSE(old->has_layout);
  Status st = match_statement(*old, sample_manifest());
  EXPECT_EQ(st.code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(st.message().find("re-sign"), std::string::npos) << st.message();
  // Half a binding is malformed.
  auto half = nlohmann::json::parse(serialize_statement(*statement_for_manifest(sample_manifest(), "acme/stories")));
  half["predicate"]["hearth"].erase("config");
  EXPECT_EQ(parse_statement(half.dump()).status().code(), ErrorCode::kInvalidArgument);
  half["predicate"]["hearth"]["config"] = {{"mediaType", "x"}, {"digest", "sha256:../../etc"}};
  EXPECT_EQ(parse_statement(half.dump()).status().code(), ErrorCode::kInvalidArgument);
}

TEST(ModelStatement, InconsistentRootDigestIsRefused) {
  auto s = *statement_for_manifest(sample_manifest(), "acme/stories");
  auto j = nlohmann::json::parse(serialize_statement(s));
  j["subject"][0]["digest"]["sha256"] = std::string(64, '0');
  EXPECT_EQ(parse_statement(j.dump()).status().code(), ErrorCode::kInvalidArgument);
}

TEST(SigstoreBundle, KeyModeLayoutAndVerification) {
  auto key = *PrivateKey::generate(KeyAlgorithm::kEcdsaP256);
  auto s = *statement_for_manifest(sample_manifest(), "acme/stories");
  auto b = sign_statement(s, key);
  ASSERT_TRUE(b.ok());
  auto j = nlohmann::json::parse(serialize_bundle(*b));
  EXPECT_EQ(j["mediaType"], "application/vnd.dev.sigstore.bundle.v0.3+json");
  EXPECT_EQ(j["verificationMaterial"]["publicKey"]["hint"], key.public_key().key_id());
  EXPECT_EQ(j["dsseEnvelope"]["payloadType"], "application/vnd.in-toto+json");
  // The signature is over PAE(payloadType, payload), checked here with the key directly.
  std::string payload = *base64_decode(j["dsseEnvelope"]["payload"].get<std::string>());
  std::string sig = *base64_decode(j["dsseEnvelope"]["signatures"][0]["sig"].get<std::string>());
  EXPECT_TRUE(key.public_key().verify(pae("application/vnd.in-toto+json", payload), sig).ok());

  auto parsed = parse_bundle(j.dump());
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(open_bundle(*parsed, key.public_key()).ok());
  auto stranger = *PrivateKey::generate(KeyAlgorithm::kEcdsaP256);
  EXPECT_EQ(open_bundle(*parsed, stranger.public_key()).status().code(), ErrorCode::kUnauthenticated);
  // A payload swapped under the same signature fails.
  parsed->envelope.payload[10] ^= 1;
  EXPECT_EQ(open_bundle(*parsed, key.public_key()).status().code(), ErrorCode::kUnauthenticated);
}

}  // namespace
}  // namespace hearth::trust
