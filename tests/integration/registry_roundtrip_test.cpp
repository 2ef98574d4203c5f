// Round trips through the real docker-registry (distribution 2.8, no referrers API).
#include <gtest/gtest.h>

#include "hearth/registry/http_client.h"
#include "hearth/registry/model_transfer.h"
#include "hearth/trust/model_description.h"
#include "hearth/trust/model_resolver.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/sigstore_bundle.h"
#include "hearth/trust/trust_policy.h"
#include "registry_process.h"
#include "test_nodes.h"

namespace hearth::registry {
namespace {

using hearth::testing::DockerRegistry;
using hearth::testing::Node;

class DockerRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    registry_ = DockerRegistry::start(&why);
    if (!registry_) {
      if (hearth::testing::running_in_ci()) FAIL() << why;
      GTEST_SKIP() << why;
    }
  }
  std::unique_ptr<DockerRegistry> registry_;
};

TEST_F(DockerRegistryTest, PushPullVerifyWithSignatureReferrer) {
  HEARTH_REQUIRE_SHARED(shared);
  auto model = shared / "models/stories260K-Q8_0.gguf";
  Node publisher("hearth-pub"), consumer("hearth-con");
  auto key = hearth::testing::new_key();
  store::Digest manifest = publisher.import(model, "acme/stories:v1", 1);
  publisher.sign("acme/stories:v1", key);

  PushOptions push;
  push.target = registry_->url();
  push.remote.upload_chunk = 64 << 10;  // force chunked PATCH uploads for the weights
  auto pushed = push_model(*publisher.store, *store::parse_reference("acme/stories:v1"), push);
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  EXPECT_EQ(pushed->manifest, manifest);
  EXPECT_EQ(pushed->signatures, 1u);
  // docker-registry 2.8 does not process `subject`, so the tag-schema index carries the signature.
  EXPECT_TRUE(pushed->used_referrers_fallback);
  RegistryClient client(registry_->url(), {});
  auto fallback = client.get_manifest("acme/stories", "sha256-" + std::string(manifest.hex()));
  ASSERT_TRUE(fallback.ok()) << fallback.status().message();
  auto index = store::parse_index(fallback->bytes);
  ASSERT_TRUE(index.ok());
  ASSERT_EQ(index->manifests.size(), 1u);
  EXPECT_EQ(index->manifests[0].artifact_type, store::kSigstoreBundleMediaType);

  consumer.trust(key, "acme/*");
  PullOptions pull;
  pull.sources = {registry_->url()};
  pull.remote.parallel_threshold = 64 << 10;  // exercise parallel ranges on the 379 KB weights
  auto pulled = pull_model(*consumer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_TRUE(pulled.ok()) << pulled.status().message();
  EXPECT_EQ(pulled->manifest, manifest);
  EXPECT_EQ(pulled->signatures, 1u);
  // Byte-identical weights, and the load seam accepts the reference.
  trust::ResolveOptions ro;
  ro.home = consumer.home.string();
  auto resolved = trust::resolve_model("acme/stories:v1", ro);
  ASSERT_TRUE(resolved.ok()) << resolved.status().message();
  EXPECT_EQ(*store::sha256_file(resolved->gguf_path()), *store::sha256_file(model.string()));
  EXPECT_TRUE(consumer.store->check()->ok());
  // Pulling again fetches nothing (pinned).
  auto again = pull_model(*consumer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->already_present);
}

// A signed provenance statement (as `hearth quantize --sign-key --import` stores it) is pushed and
// pulled with the model's signature, and checks out on the other side.
TEST_F(DockerRegistryTest, ProvenanceAttestationTravelsWithTheModel) {
  HEARTH_REQUIRE_SHARED(shared);
  auto model = shared / "models/stories260K-Q8_0.gguf";
  Node publisher("hearth-pub"), consumer("hearth-con");
  auto key = hearth::testing::new_key();
  store::Digest manifest = publisher.import(model, "acme/stories:v1", 1);
  publisher.sign("acme/stories:v1", key);
  const std::string statement =
      R"({"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"m.gguf","digest":{"sha256":")" +
      std::string(store::sha256_file(model.string())->hex()) +
      R"("}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}})";
  auto bundle = trust::sign_in_toto(statement, key);
  ASSERT_TRUE(bundle.ok());
  ASSERT_TRUE(trust::store_attestation(*publisher.store, manifest, trust::serialize_bundle(*bundle),
                                       "https://slsa.dev/provenance/v1")
                  .ok());
  PushOptions push;
  push.target = registry_->url();
  auto pushed = push_model(*publisher.store, *store::parse_reference("acme/stories:v1"), push);
  ASSERT_TRUE(pushed.ok()) << pushed.status().message();
  EXPECT_EQ(pushed->signatures, 1u);
  EXPECT_EQ(pushed->attestations, 1u);

  consumer.trust(key, "acme/*");
  PullOptions pull;
  pull.sources = {registry_->url()};
  auto pulled = pull_model(*consumer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_TRUE(pulled.ok()) << pulled.status().message();
  EXPECT_EQ(pulled->signatures, 1u);
  EXPECT_EQ(pulled->attestations, 1u);
  auto policy = trust::load_policy(trust::default_policy_path(consumer.home.string()));
  ASSERT_TRUE(policy.ok());
  auto p = trust::describe_model(*consumer.store, *store::parse_reference("acme/stories:v1"), *policy);
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->signatures.size(), 1u);
  EXPECT_EQ(p->signatures[0].status, "trusted");
  ASSERT_EQ(p->attestations.size(), 1u);
  EXPECT_EQ(p->attestations[0].status, "verified");
  EXPECT_EQ(p->attestations[0].predicate_type, "https://slsa.dev/provenance/v1");
  trust::ResolveOptions ro;
  ro.home = consumer.home.string();
  auto resolved = trust::resolve_model("acme/stories:v1", ro);
  ASSERT_TRUE(resolved.ok()) << resolved.status().message();
  EXPECT_TRUE(resolved->artifact()->notes().empty());
}

TEST_F(DockerRegistryTest, UnsignedAndWrongKeyAreRefusedOnPull) {
  HEARTH_REQUIRE_SHARED(shared);
  auto model = shared / "models/stories260K-Q8_0.gguf";
  Node publisher("hearth-pub"), consumer("hearth-con");
  auto key = hearth::testing::new_key();
  publisher.import(model, "acme/plain:v1", 1);
  PushOptions push;
  push.target = registry_->url();
  ASSERT_TRUE(push_model(*publisher.store, *store::parse_reference("acme/plain:v1"), push).ok());
  consumer.trust(key, "acme/*");
  PullOptions pull;
  pull.sources = {registry_->url()};
  auto refused = pull_model(*consumer.store, *store::parse_reference("acme/plain:v1"), pull);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnauthenticated) << refused.status().message();
  EXPECT_FALSE(consumer.store->resolve(*store::parse_reference("acme/plain:v1")).ok());
  pull.allow_unsigned = true;
  ASSERT_TRUE(pull_model(*consumer.store, *store::parse_reference("acme/plain:v1"), pull).ok());

  // Signed by a key the consumer does not trust.
  auto stranger = hearth::testing::new_key();
  publisher.import(model, "acme/other:v1", 1);
  publisher.sign("acme/other:v1", stranger);
  ASSERT_TRUE(push_model(*publisher.store, *store::parse_reference("acme/other:v1"), push).ok());
  pull.allow_unsigned = false;
  auto wrong = pull_model(*consumer.store, *store::parse_reference("acme/other:v1"), pull);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), ErrorCode::kUnauthenticated) << wrong.status().message();
}

TEST_F(DockerRegistryTest, VersionLockUpgradeAndRollback) {
  HEARTH_REQUIRE_SHARED(shared);
  Node publisher("hearth-pub"), consumer("hearth-con");
  auto key = hearth::testing::new_key();
  store::Digest v1 = publisher.import(shared / "models/stories260K-Q8_0.gguf", "acme/stories:latest", 1);
  publisher.sign("acme/stories:latest", key);
  PushOptions push;
  push.target = registry_->url();
  ASSERT_TRUE(push_model(*publisher.store, *store::parse_reference("acme/stories:latest"), push).ok());
  consumer.trust(key, "acme/*");
  PullOptions pull;
  pull.sources = {registry_->url()};
  auto ref = *store::parse_reference("acme/stories:latest");
  ASSERT_TRUE(pull_model(*consumer.store, ref, pull).ok());

  // The publisher releases version 2 under the same tag.
  store::Digest v2 = publisher.import(shared / "models/stories260K-Q4_0.gguf", "acme/stories:latest", 2);
  publisher.sign("acme/stories:latest", key);
  ASSERT_TRUE(push_model(*publisher.store, ref, push).ok());
  auto locked = pull_model(*consumer.store, ref, pull);
  ASSERT_TRUE(locked.ok());
  EXPECT_TRUE(locked->already_present);
  EXPECT_EQ(*consumer.store->resolve(ref), v1);  // the pin holds
  pull.upgrade = true;
  auto upgraded = pull_model(*consumer.store, ref, pull);
  ASSERT_TRUE(upgraded.ok()) << upgraded.status().message();
  EXPECT_TRUE(upgraded->tag_moved);
  EXPECT_EQ(*consumer.store->resolve(ref), v2);

  // A hostile or stale registry serves the older (validly signed) version 1 again.
  ASSERT_TRUE(publisher.store->set_tag("acme/stories", "latest", v1).ok());
  ASSERT_TRUE(push_model(*publisher.store, ref, push).ok());
  auto rollback = pull_model(*consumer.store, ref, pull);
  ASSERT_FALSE(rollback.ok());
  EXPECT_EQ(rollback.status().code(), ErrorCode::kPermissionDenied) << rollback.status().message();
  EXPECT_EQ(*consumer.store->resolve(ref), v2);
}

}  // namespace
}  // namespace hearth::registry
