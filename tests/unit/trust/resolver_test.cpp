#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "hearth/core/atomic_file.h"
#include "hearth/store/audit_log.h"
#include "hearth/store/model_import.h"
#include "hearth/trust/model_resolver.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/provenance.h"
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
  ASSERT_TRUE(write_file_atomic((home / "trust/policy.json").string(),
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

  // Audit log: import, sign, verify and the load, each a JSON line.
  std::ifstream log(store::audit_log_path(home.string()));
  std::vector<std::string> events;
  for (std::string line; std::getline(log, line);) {
    auto j = nlohmann::json::parse(line);
    events.push_back(j["event"].get<std::string>() + ":" + j["outcome"].get<std::string>());
  }
  EXPECT_EQ(events, (std::vector<std::string>{"import:ok", "sign:ok", "verify:ok", "run:ok"}));

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

}  // namespace
}  // namespace hearth::trust
