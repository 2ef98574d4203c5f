#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "hearth/core/atomic_file.h"
#include "hearth/model/model.h"
#include "hearth/store/audit_log.h"
#include "hearth/store/model_import.h"
#include "hearth/trust/model_description.h"
#include "hearth/trust/model_resolver.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/trust_policy.h"
#include "shared_data.h"

namespace hearth::trust {
namespace {

namespace fs = std::filesystem;

TEST(Resolver, LocalPathRules) {
  EXPECT_TRUE(looks_like_local_path("model.gguf"));
  EXPECT_TRUE(looks_like_local_path("/abs/model"));
  EXPECT_TRUE(looks_like_local_path("./m"));
  EXPECT_TRUE(looks_like_local_path("../m"));
  EXPECT_FALSE(looks_like_local_path("acme/stories:v1"));
  EXPECT_FALSE(looks_like_local_path("stories"));
}

TEST(Resolver, ImportSignVerifyLoadRoundTripWithAudit) {
  HEARTH_REQUIRE_SHARED(shared);
  fs::path home = testing::make_temp_dir("hearth-resolve");
  auto st = store::Store::open(home.string());
  std::string file = (shared / "models/stories260K-Q8_0.gguf").string();
  store::ImportOptions io;
  io.version = 2;
  auto imp = store::import_gguf(*st, file, *store::parse_reference("tiny/stories:q8"), io);
  ASSERT_TRUE(imp.ok()) << imp.status().message();
  auto key = *PrivateKey::generate(KeyAlgorithm::kEcdsaP256);
  ASSERT_TRUE(sign_model(*st, *store::parse_reference("tiny/stories:q8"), key).ok());
  fs::create_directories(home / "trust");
  ASSERT_TRUE(write_file_atomic((home / "trust/tiny.pub").string(), key.public_key().pem()).ok());
  ASSERT_TRUE(write_file_atomic(
                  (home / "trust/policy.json").string(),
                  std::string_view(R"({"publishers":[{"name":"tiny-lab","key":"tiny.pub","models":["tiny/*"]}]})"))
                  .ok());

  // Provenance for inspect: the signature is listed and trusted, the config facts are there.
  auto policy = load_policy((home / "trust/policy.json").string());
  ASSERT_TRUE(policy.ok()) << policy.status().message();
  auto prov = describe_model(*st, *store::parse_reference("tiny/stories:q8"), *policy);
  ASSERT_TRUE(prov.ok()) << prov.status().message();
  ASSERT_EQ(prov->signatures.size(), 1u);
  EXPECT_EQ(prov->signatures[0].status, "trusted");
  EXPECT_EQ(prov->signatures[0].publisher, "tiny-lab");
  EXPECT_EQ(prov->signatures[0].signed_version, 2u);
  EXPECT_EQ(prov->facts.architecture, "llama");
  EXPECT_NE(format_provenance(*prov).find("signature:    key"), std::string::npos);

  ResolveOptions opts;
  opts.home = home.string();
  opts.purpose = "run";
  auto r = resolve_model("tiny/stories:q8", opts);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_NE(r->artifact(), nullptr);
  const VerifiedArtifact& a = *r->artifact();
  EXPECT_EQ(a.gguf_path(), st->blob_path(imp->weights.digest));
  EXPECT_EQ(a.weights_digest(), *store::sha256_file(file));
  EXPECT_EQ(a.gguf_size(), fs::file_size(file));
  EXPECT_EQ(a.manifest_digest(), imp->manifest);
  EXPECT_EQ(a.publisher(), "tiny-lab");
  EXPECT_EQ(a.publisher_key_id(), key.public_key().key_id());
  EXPECT_EQ(a.version(), 2u);
  EXPECT_EQ(a.model_name(), "tiny/stories");
  EXPECT_TRUE(a.is_signed());
  // The weights blob is byte-identical to the imported file.
  EXPECT_EQ(*read_file(a.gguf_path()), *read_file(file));

  // Audit log: import, sign and verify, each a JSON line. The load is recorded by whoever
  // loads, after it succeeded or failed (never by the resolver, before the load).
  std::ifstream log(store::audit_log_path(home.string()));
  std::vector<std::string> events;
  for (std::string line; std::getline(log, line);) {
    auto j = nlohmann::json::parse(line);
    events.push_back(j["event"].get<std::string>() + ":" + j["outcome"].get<std::string>());
  }
  EXPECT_EQ(events, (std::vector<std::string>{"import:ok", "sign:ok", "verify:ok"}));

  // After an upgrade to version 3 is accepted, the old version 2 is a rollback.
  io.version = 3;
  ASSERT_TRUE(store::import_gguf(*st, file, *store::parse_reference("tiny/stories:next"), io).ok());
  ASSERT_TRUE(sign_model(*st, *store::parse_reference("tiny/stories:next"), key).ok());
  ASSERT_TRUE(resolve_model("tiny/stories:next", opts).ok());
  auto old = resolve_model("tiny/stories:q8", opts);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(old.status().message().find("rollback"), std::string::npos);
  fs::remove_all(home);
}

// A store at `home` holding `file` as name:tag, signed with a key the policy trusts.
store::ImportResult import_signed(const fs::path& home, const std::string& file, const std::string& ref) {
  auto st = store::Store::open(home.string());
  store::ImportOptions io;
  io.version = 1;
  auto imp = store::import_gguf(*st, file, *store::parse_reference(ref), io);
  EXPECT_TRUE(imp.ok()) << imp.status().message();
  auto key = *PrivateKey::generate(KeyAlgorithm::kEcdsaP256);
  EXPECT_TRUE(sign_model(*st, *store::parse_reference(ref), key).ok());
  fs::create_directories(home / "trust");
  EXPECT_TRUE(write_file_atomic((home / "trust/k.pub").string(), key.public_key().pem()).ok());
  EXPECT_TRUE(write_file_atomic((home / "trust/policy.json").string(),
                                std::string_view(R"({"publishers":[{"name":"acme","key":"k.pub","models":["**"]}]})"))
                  .ok());
  return *imp;
}

// The audit's time-of-check/time-of-use attack: the blob file is replaced after verification.
// The artifact hands out the mapping that was hashed, so the swap changes nothing it serves.
TEST(Resolver, BlobSwappedAfterVerificationIsNotWhatGetsLoaded) {
  HEARTH_REQUIRE_SHARED(shared);
  fs::path home = testing::make_temp_dir("hearth-swap");
  const std::string good = (shared / "models/stories260K-Q8_0.gguf").string();
  const std::string evil = (shared / "models/stories260K-f32.gguf").string();
  store::ImportResult imp = import_signed(home, good, "acme/stories:v1");
  ResolveOptions opts;
  opts.home = home.string();
  auto r = resolve_model("acme/stories:v1", opts);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const VerifiedArtifact& a = *r->artifact();
  ASSERT_NE(a.weights(), nullptr);
  // Swap the blob for another valid model (a new inode under the same name, as an attacker
  // with write access to the store directory would).
  ASSERT_TRUE(write_file_atomic(a.gguf_path(), *read_file(evil)).ok());
  ASSERT_EQ(*store::sha256_file(a.gguf_path()), *store::sha256_file(evil));

  EXPECT_EQ(store::sha256_of(a.weights()->bytes()), imp.weights.digest);
  auto m = model::Model::load(a.weights());
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ((*m)->file_bytes(), fs::file_size(good));
  const gguf::TensorInfo* wq = (*m)->gguf().find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(wq, nullptr);
  EXPECT_EQ(wq->type, TensorType::Q8_0);  // the verified model, not the f32 one swapped in
  // A fresh resolve sees the swap and refuses it.
  auto again = resolve_model("acme/stories:v1", opts);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kDataLoss);
  fs::remove_all(home);
}

// Without shared data: the bytes the artifact serves hash to the verified digest after a swap.
TEST(Resolver, VerifiedMappingKeepsTheVerifiedBytes) {
  fs::path home = testing::make_temp_dir("hearth-swap2");
  const std::string file = (home / "m.gguf").string();
  ASSERT_TRUE(write_file_atomic(file, std::string(100000, 'g')).ok());
  store::ImportResult imp;
  {
    auto st = store::Store::open(home.string());
    auto weights = st->ingest_file(file, store::kModelWeightMediaType);
    ASSERT_TRUE(weights.ok());
    weights->annotations[std::string(store::kAnnotationTitle)] = "model.gguf";
    auto config = st->put_blob(R"({"config":{"format":"gguf"}})", store::kModelConfigMediaType);
    store::Manifest m;
    m.artifact_type = std::string(store::kModelArtifactType);
    m.config = *config;
    m.layers.push_back(*weights);
    m.annotations[std::string(store::kAnnotationVersion)] = "1";
    ASSERT_TRUE(st->set_tag("acme/fake", "v1", *st->put_manifest(m)).ok());
    imp.weights = *weights;
  }
  ResolveOptions opts;
  opts.home = home.string();
  opts.allow_unsigned = true;
  auto r = resolve_model("acme/fake:v1", opts);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const VerifiedArtifact& a = *r->artifact();
  ASSERT_TRUE(write_file_atomic(a.gguf_path(), std::string(100000, 'e')).ok());
  ASSERT_NE(a.weights(), nullptr);
  EXPECT_EQ(store::sha256_of(a.weights()->bytes()), imp.weights.digest);
  EXPECT_EQ(static_cast<char>(a.weights()->bytes()[0]), 'g');
  fs::remove_all(home);
}

}  // namespace
}  // namespace hearth::trust
