// Declarative trust cases: each cases/*.json describes an artifact (a model in a fresh store,
// its signatures, the trust policy, tampering, rollback state) and the error code that
// resolving it must give. The format:
//   model:  {"name": "acme/stories", "tag": "v1", "version": 1}       (defaults shown)
//   sign:   [{"key": "publisher"|"publisher_ed25519"|"stranger", "name": <signed name>}]
//   policy: the policy file, with publisher "key" naming one of the keys above
//   tamper: "weights"|"config"|"manifest"|"signature"|"signature_payload"|"relabel"
//           (relabel: a second layer "extra.bin" is added before signing; then a new manifest
//           swaps the two layers' media types, is tagged in place, and carries the old signature)
//   seen_version: a version already accepted from "publisher" (rollback state)
//   resolve: what to resolve ("MANIFEST" is replaced by the manifest digest, "LOCAL" is a
//            plain file path); default name:tag
//   allow_unsigned: the --allow-unsigned flag
//   expect: "ok" or an error code name (status.h)
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "hearth/core/atomic_file.h"
#include "hearth/core/base64.h"
#include "hearth/store/store.h"
#include "hearth/trust/model_resolver.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/sigstore_bundle.h"
#include "hearth/trust/version_lock.h"
#include "shared_data.h"

namespace hearth::trust {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<fs::path> case_files() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(HEARTH_TRUST_CASES_DIR)) {
    if (e.path().extension() == ".json") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void overwrite(const std::string& path, std::string_view bytes) { ASSERT_TRUE(write_file_atomic(path, bytes).ok()); }

// Runs one case; returns the outcome's error code name.
std::string run_case(const json& c, const fs::path& home) {
  auto st = store::Store::open(home.string());
  EXPECT_TRUE(st.ok());
  std::map<std::string, PrivateKey> keys = {
      {"publisher", *PrivateKey::generate(KeyAlgorithm::kEcdsaP256)},
      {"publisher_ed25519", *PrivateKey::generate(KeyAlgorithm::kEd25519)},
      {"stranger", *PrivateKey::generate(KeyAlgorithm::kEcdsaP256)},
  };
  fs::create_directories(home / "trust/keys");
  for (auto& [label, key] : keys) overwrite((home / "trust/keys" / (label + ".pub")).string(), key.public_key().pem());

  json model = c.value("model", json::object());
  std::string name = model.value("name", "acme/stories");
  std::string tag = model.value("tag", "v1");
  uint64_t version = model.value("version", 1);
  auto weights = st->put_blob("GGUF fake weights for " + name, store::kModelWeightMediaType);
  weights->annotations[std::string(store::kAnnotationTitle)] = "model.gguf";
  auto config = st->put_blob(R"({"config":{"format":"gguf"}})", store::kModelConfigMediaType);
  store::Manifest m;
  m.artifact_type = std::string(store::kModelArtifactType);
  m.config = *config;
  m.layers.push_back(*weights);
  std::string tamper = c.value("tamper", "");
  if (tamper == "relabel") {
    auto extra = st->put_blob("GGUF other weights", "application/vnd.example.adapter");
    extra->annotations[std::string(store::kAnnotationTitle)] = "extra.bin";
    m.layers.push_back(*extra);
  }
  m.annotations[std::string(store::kAnnotationVersion)] = std::to_string(version);
  store::Digest manifest = *st->put_manifest(m);
  EXPECT_TRUE(st->set_tag(name, tag, manifest).ok());
  store::Reference ref = *store::parse_reference(name + ":" + tag);

  std::vector<store::Digest> sig_manifests;
  for (const auto& s : c.value("sign", json::array())) {
    auto r = sign_model(*st, ref, keys.at(s.at("key").get<std::string>()), s.value("name", ""));
    EXPECT_TRUE(r.ok()) << r.status().message();
    sig_manifests.push_back(r->signature_manifest);
  }

  if (c.contains("policy")) {
    json p = c["policy"];
    for (auto& pub : p["publishers"]) pub["key"] = "keys/" + pub["key"].get<std::string>() + ".pub";
    if (p["publishers"].is_null()) p.erase("publishers");
    overwrite((home / "trust/policy.json").string(), p.dump());
  }
  if (c.contains("seen_version")) {
    VersionLock lock(home.string());
    EXPECT_TRUE(lock.check_and_record(name, keys.at("publisher").public_key().key_id(), c["seen_version"]).ok());
  }

  if (tamper == "relabel") {
    store::Manifest swapped = m;
    std::swap(swapped.layers[0].media_type, swapped.layers[1].media_type);
    store::Digest d = *st->put_manifest(swapped);
    EXPECT_TRUE(st->set_tag(name, tag, d).ok());
    auto sm = st->read_manifest(sig_manifests.at(0));
    EXPECT_TRUE(store_signature(*st, d, *st->read_blob(sm->layers.at(0).digest, 1 << 20)).ok());
    weights = st->read_manifest(d)->layers[1];  // what the verifier would now load
  }
  if (tamper == "weights") overwrite(st->blob_path(weights->digest), "GGUF evil weights");
  if (tamper == "config") overwrite(st->blob_path(config->digest), "{}");
  if (tamper == "manifest") {
    std::string bytes = *st->read_blob(manifest, 1 << 20);
    bytes.insert(bytes.size() - 1, " ");
    overwrite(st->blob_path(manifest), bytes);
  }
  if (tamper == "signature" || tamper == "signature_payload") {
    auto sm = st->read_manifest(sig_manifests.at(0));
    store::Digest bundle_digest = sm->layers.at(0).digest;
    if (tamper == "signature") {
      overwrite(st->blob_path(bundle_digest), "{\"mediaType\":\"forged\"}");
    } else {
      // An attacker edits the statement (claims version 99) and keeps the old signature.
      auto b = *parse_bundle(*st->read_blob(bundle_digest, 1 << 20));
      json stmt = json::parse(b.envelope.payload);
      stmt["predicate"]["hearth"]["version"] = 99;
      b.envelope.payload = stmt.dump();
      EXPECT_TRUE(st->update_refs([&](store::RefsTable& t) {
                      t.referrers[manifest].clear();
                      return ok_status();
                    }).ok());
      EXPECT_TRUE(store_signature(*st, manifest, serialize_bundle(b)).ok());
    }
  }

  std::string target = c.value("resolve", ref.to_string());
  if (auto pos = target.find("MANIFEST"); pos != std::string::npos) target.replace(pos, 8, manifest.str());
  if (target == "LOCAL") {
    target = (home / "local-model.gguf").string();
    overwrite(target, "GGUF local");
  }
  ResolveOptions opts;
  opts.home = home.string();
  opts.allow_unsigned = c.value("allow_unsigned", false);
  opts.purpose = "test";
  auto r = resolve_model(target, opts);
  if (!r.ok()) return std::string(error_code_name(r.status().code())) + " (" + r.status().message() + ")";
  // A store model resolves to its verified weights blob.
  if (!r->is_local_path()) {
    EXPECT_EQ(r->gguf_path(), st->blob_path(weights->digest));
  }
  return "ok";
}

TEST(TrustCases, EveryCaseGivesItsExpectedOutcome) {
  auto files = case_files();
  ASSERT_GE(files.size(), 20u);
  for (const auto& f : files) {
    std::ifstream in(f);
    json c = json::parse(in);
    fs::path home = testing::make_temp_dir("hearth-case");
    std::string got = run_case(c, home);
    std::string want = c.at("expect");
    EXPECT_EQ(got.substr(0, got.find(' ')), want)
        << f.filename() << ": " << c.value("description", "") << "\n  got " << got;
    fs::remove_all(home);
  }
}

}  // namespace
}  // namespace hearth::trust
