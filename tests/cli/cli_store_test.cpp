// Store references through the CLI: `hearth inspect REF` shows the manifest digest, the
// signatures and the provenance (text and --json), and refuses unsigned or untrusted models with
// one error line, as `run` does.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_helpers.h"
#include "hearth/store/digest.h"
#include "shared_data.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using cli_test::count_error_lines;
using cli_test::ends_with_error_line;
using cli_test::run;

// A private $HEARTH_HOME with the f32 test model imported as demo/stories:v1, signed by 'acme'
// whom the policy trusts for demo/*; demo/unsigned:v1 (the F16 model, not signed) and
// demo/stranger:v1 (the Q8_0 model, signed by a key the policy does not list). The local-import
// records are removed, so the unsigned models stand for models from elsewhere.
class CliStore : public ::testing::Test {
 protected:
  void SetUp() override {
    HEARTH_REQUIRE_SHARED(shared);
    shared_ = shared;
    home_ = testing::make_temp_dir("hearth-home");
    setenv("HEARTH_HOME", home_.c_str(), 1);
    model_ = (shared_ / "models" / "stories260K-f32.gguf").string();
    ASSERT_EQ(sh("import " + model_ + " demo/stories:v1"), 0);
    // Different files: the same file imported twice in one second is the same manifest, and a
    // signature belongs to the manifest, not to the tag.
    ASSERT_EQ(sh("import " + (shared_ / "models" / "stories260K-F16.gguf").string() + " demo/unsigned:v1"), 0);
    ASSERT_EQ(sh("import " + (shared_ / "models" / "stories260K-Q8_0.gguf").string() + " demo/stranger:v1"), 0);
    ASSERT_EQ(sh("keygen --out " + (home_ / "acme").string()), 0);
    ASSERT_EQ(sh("keygen --out " + (home_ / "other").string()), 0);
    ASSERT_EQ(sh("sign demo/stories:v1 --key " + (home_ / "acme.key").string()), 0);
    ASSERT_EQ(sh("sign demo/stranger:v1 --key " + (home_ / "other.key").string()), 0);
    ASSERT_EQ(sh("trust add " + (home_ / "acme.pub").string() + " --models 'demo/*' --name acme"), 0);
    // As if the models had come from elsewhere (a pull): an unsigned model this host imported
    // itself would run as a local import (CliStore.LocalImportsRunUnsignedUnlessThePolicyDeniesLocalPaths).
    fs::remove_all(home_ / "store" / "local-imports");
  }
  void TearDown() override {
    unsetenv("HEARTH_HOME");
    if (!home_.empty()) fs::remove_all(home_);
  }
  int sh(const std::string& args) {
    return std::system((std::string(HEARTH_BIN) + " " + args + " >/dev/null 2>&1").c_str());
  }

  fs::path shared_, home_;
  std::string model_;
};

// `hearth import` on this host: the model runs unsigned without --allow-unsigned, described as a
// local import, unless the policy denies local paths; --sign-key signs it at once.
TEST_F(CliStore, LocalImportsRunUnsignedUnlessThePolicyDeniesLocalPaths) {
  const std::string gen = " -p 'Once upon a time' --temp 0 -c 512 -n 8";
  ASSERT_EQ(sh("import " + (shared_ / "models" / "stories260K-Q4_0.gguf").string() + " mine/q4:v1"), 0);
  auto ran = run("run mine/q4:v1" + gen);
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_NE(ran.err.find("imported locally from " + (shared_ / "models" / "stories260K-Q4_0.gguf").string() +
                         " by this host (unsigned)"),
            std::string::npos)
      << ran.err;
  EXPECT_EQ(ran.out, run("run " + (shared_ / "models" / "stories260K-Q4_0.gguf").string() + gen).out);
  auto shown = run("inspect mine/q4:v1");
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("imported locally from"), std::string::npos) << shown.out;
  ASSERT_EQ(sh("trust set local_paths deny"), 0);
  auto denied = run("run mine/q4:v1" + gen);
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_EQ(count_error_lines(denied.err), 1) << denied.err;
  EXPECT_NE(denied.err.find("'mine/q4:v1' refused: it was imported locally from"), std::string::npos) << denied.err;
  EXPECT_NE(denied.err.find("\"local_paths\": \"deny\""), std::string::npos) << denied.err;
  // Signed at import by a key the policy trusts: runs under "deny" too.
  ASSERT_EQ(sh("trust add " + (home_ / "acme.pub").string() + " --models 'mine/*' --name acme"), 0);
  auto signed_import = run("import " + (shared_ / "models" / "stories260K-Q4_K_M.gguf").string() +
                           " mine/qk:v1 --sign-key " + (home_ / "acme.key").string());
  ASSERT_EQ(signed_import.exit_code, 0) << signed_import.err;
  EXPECT_NE(signed_import.out.find("signed with key"), std::string::npos) << signed_import.out;
  auto signed_run = run("run mine/qk:v1" + gen);
  EXPECT_EQ(signed_run.exit_code, 0) << signed_run.err;
  EXPECT_EQ(signed_run.err.find("imported locally"), std::string::npos) << signed_run.err;
  // A bad key fails before anything is imported.
  auto bad_key = run("import " + model_ + " mine/bad:v1 --sign-key " + (home_ / "nope.key").string());
  EXPECT_NE(bad_key.exit_code, 0);
  EXPECT_EQ(run("inspect mine/bad:v1 --allow-unsigned").exit_code == 0, false);
}

TEST_F(CliStore, InspectSignedReferenceShowsDigestSignaturesAndProvenance) {
  auto o = run("inspect demo/stories:v1");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("signed by acme"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("manifest:     sha256:"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("(acme), signed 'demo/stories' v1: trusted"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("layer:        "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("general.architecture"), std::string::npos) << o.out;  // the GGUF part is still there

  auto j = run("inspect demo/stories:v1 --json");
  ASSERT_EQ(j.exit_code, 0) << j.err;
  nlohmann::json doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["reference"], "demo/stories:v1");
  const std::string digest = doc["manifest_digest"];
  EXPECT_EQ(digest.rfind("sha256:", 0), 0u) << digest;
  EXPECT_NE(o.out.find(digest), std::string::npos);  // text and JSON agree
  ASSERT_EQ(doc["signatures"].size(), 1u);
  EXPECT_EQ(doc["signatures"][0]["publisher"], "acme");
  EXPECT_EQ(doc["signatures"][0]["verified"], true);
  EXPECT_EQ(doc["signatures"][0]["status"], "trusted");
  EXPECT_EQ(doc["signatures"][0]["signed_name"], "demo/stories");
  EXPECT_EQ(doc["provenance"]["version"], 1);
  EXPECT_EQ(doc["provenance"]["signed"], true);
  EXPECT_EQ(doc["provenance"]["model"]["architecture"], "llama");
  EXPECT_FALSE(doc["provenance"]["layers"].empty());
  EXPECT_FALSE(doc["tensors"].empty());

  // A plain file has no store fields.
  auto f = run("inspect " + model_ + " --json");
  ASSERT_EQ(f.exit_code, 0) << f.err;
  nlohmann::json fdoc = nlohmann::json::parse(f.out);
  EXPECT_FALSE(fdoc.contains("manifest_digest"));
  EXPECT_EQ(fdoc["tensors"], doc["tensors"]);
}

// An unsigned or untrusted store model is not loaded, but inspect still shows its facts and
// signatures from the store, and why it is refused (exit 0: nothing of it ran).
TEST_F(CliStore, InspectShowsUnverifiedModelsWithoutLoadingThem) {
  auto unsigned_ = run("inspect demo/unsigned:v1");
  ASSERT_EQ(unsigned_.exit_code, 0) << unsigned_.err;
  EXPECT_NE(unsigned_.out.find("store model: demo/unsigned:v1 (NOT VERIFIED, not loaded)"), std::string::npos)
      << unsigned_.out;
  EXPECT_NE(unsigned_.out.find("model:        llama, 293K parameters, F16"), std::string::npos) << unsigned_.out;
  EXPECT_NE(unsigned_.out.find("not verified: 'demo/unsigned:v1' refused: the model is not signed"), std::string::npos)
      << unsigned_.out;
  EXPECT_EQ(unsigned_.out.find("totals:"), std::string::npos) << "the GGUF was read: " << unsigned_.out;

  auto stranger = run("inspect demo/stranger:v1 --json");
  ASSERT_EQ(stranger.exit_code, 0) << stranger.err;
  nlohmann::json sdoc = nlohmann::json::parse(stranger.out);
  EXPECT_EQ(sdoc["verified"], false);
  EXPECT_NE(sdoc["refusal"].get<std::string>().find("trust policy does not list"), std::string::npos) << stranger.out;
  EXPECT_FALSE(sdoc.contains("tensors"));

  auto missing = run("inspect demo/nothing:v9");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_EQ(count_error_lines(missing.err), 1) << missing.err;
  EXPECT_NE(missing.err.find("demo/nothing:v9"), std::string::npos) << missing.err;

  // --allow-unsigned shows it, with no signature.
  auto allowed = run("inspect demo/unsigned:v1 --allow-unsigned --json");
  ASSERT_EQ(allowed.exit_code, 0) << allowed.err;
  nlohmann::json doc = nlohmann::json::parse(allowed.out);
  EXPECT_TRUE(doc["signatures"].empty());
  EXPECT_EQ(doc["provenance"]["signed"], false);
  auto allowed_text = run("inspect demo/stranger:v1 --allow-unsigned");
  ASSERT_EQ(allowed_text.exit_code, 0) << allowed_text.err;
  EXPECT_NE(allowed_text.out.find("UNSIGNED, allowed by operator"), std::string::npos) << allowed_text.out;
  EXPECT_NE(allowed_text.out.find("key not in the trust policy"), std::string::npos) << allowed_text.out;
}

TEST_F(CliStore, InspectUsesHearthModelLikeRun) {
  setenv("HEARTH_MODEL", "demo/stories:v1", 1);
  auto o = run("inspect --json");
  unsetenv("HEARTH_MODEL");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(nlohmann::json::parse(o.out)["reference"], "demo/stories:v1");
}

TEST_F(CliStore, QuantizeSignsItsProvenanceAndAttachesItInTheStore) {
  const std::string out = (home_ / "q8.gguf").string();
  auto q = run("quantize " + model_ + " " + out + " Q8_0 --sign-key " + (home_ / "acme.key").string() +
               " --import demo/q8:v1");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  // The signed statement beside the file: a DSSE envelope over the in-toto statement.
  std::ifstream bf(out + ".provenance.sigstore.json");
  ASSERT_TRUE(bf.good());
  nlohmann::json bundle = nlohmann::json::parse(bf);
  EXPECT_EQ(bundle["dsseEnvelope"]["payloadType"], "application/vnd.in-toto+json");

  // In the store: the model is signed by acme, and the provenance is an attestation of it.
  auto text = run("inspect demo/q8:v1");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("signed 'demo/q8' v1: trusted"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("attestation:  https://slsa.dev/provenance/v1, key "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("(acme): verified"), std::string::npos) << text.out;
  auto j = run("inspect demo/q8:v1 --json");
  ASSERT_EQ(j.exit_code, 0) << j.err;
  nlohmann::json doc = nlohmann::json::parse(j.out);
  ASSERT_EQ(doc["signatures"].size(), 1u);  // the attestation is not counted as a signature
  ASSERT_EQ(doc["provenance"]["attestations"].size(), 1u) << j.out;
  const auto& a = doc["provenance"]["attestations"][0];
  EXPECT_EQ(a["verified"], true);
  EXPECT_EQ(a["statement"]["predicate"]["buildDefinition"]["buildType"], "urn:hearth:build-type:quantize:v1");
  EXPECT_EQ(a["statement"]["predicate"]["buildDefinition"]["externalParameters"]["recipe"], "Q8_0");
  auto v = run("verify demo/q8:v1");
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("signed by acme"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("attestation:"), std::string::npos) << v.out;
  // It loads.
  auto r = run("run demo/q8:v1 -p 'Once upon a time' --temp 0 -c 256 -n 4");
  EXPECT_EQ(r.exit_code, 0) << r.err;

  // The attestation travels with the model: export, import on another node that trusts acme.
  const std::string tar = (home_ / "q8.tar").string();
  ASSERT_EQ(sh("bundle export demo/q8:v1 " + tar), 0);
  fs::path node2 = testing::make_temp_dir("hearth-node2");
  setenv("HEARTH_HOME", node2.c_str(), 1);
  ASSERT_EQ(sh("trust add " + (home_ / "acme.pub").string() + " --models 'demo/*' --name acme"), 0);
  ASSERT_EQ(sh("bundle import " + tar), 0);
  auto there = run("inspect demo/q8:v1");
  setenv("HEARTH_HOME", home_.c_str(), 1);
  fs::remove_all(node2);
  ASSERT_EQ(there.exit_code, 0) << there.err;
  EXPECT_NE(there.out.find("attestation:  https://slsa.dev/provenance/v1"), std::string::npos) << there.out;
  EXPECT_NE(there.out.find("(acme): verified"), std::string::npos) << there.out;

  // Signed by a key the policy does not list: the attestation does not make it trusted.
  auto o = run("quantize " + model_ + " " + (home_ / "q8o.gguf").string() + " Q8_0 --sign-key " +
               (home_ / "other.key").string() + " --import demo/q8o:v1");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  auto refused = run("inspect demo/q8o:v1");
  EXPECT_EQ(refused.exit_code, 0) << refused.err;
  EXPECT_NE(refused.out.find("not verified: "), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("trust policy does not list"), std::string::npos) << refused.out;
  auto shown = run("inspect demo/q8o:v1 --allow-unsigned");
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("attestation:  https://slsa.dev/provenance/v1"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find(": key not in the trust policy\nattestation"), std::string::npos) << shown.out;
}

TEST_F(CliStore, QuantizeBadSigningInputsFailFastWithOneErrorLine) {
  const std::string out = (home_ / "bad.gguf").string();
  auto missing_key = run("quantize " + model_ + " " + out + " Q8_0 --sign-key " + (home_ / "nope.key").string());
  EXPECT_NE(missing_key.exit_code, 0);
  EXPECT_EQ(count_error_lines(missing_key.err), 1) << missing_key.err;
  EXPECT_NE(missing_key.err.find("nope.key"), std::string::npos) << missing_key.err;
  EXPECT_FALSE(fs::exists(out));
  auto no_prov =
      run("quantize " + model_ + " " + out + " Q8_0 --no-provenance --sign-key " + (home_ / "acme.key").string());
  EXPECT_NE(no_prov.exit_code, 0);
  EXPECT_EQ(count_error_lines(no_prov.err), 1) << no_prov.err;
  EXPECT_FALSE(fs::exists(out));
  auto bad_ref = run("quantize " + model_ + " " + out + " Q8_0 --import 'Not A Ref'");
  EXPECT_NE(bad_ref.exit_code, 0);
  EXPECT_EQ(count_error_lines(bad_ref.err), 1) << bad_ref.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(CliStore, QuantizeFromAStoreReferenceIsVerifiedAndRecorded) {
  const std::string out = (home_ / "from-store.gguf").string();
  auto q = run("quantize demo/stories:v1 " + out + " Q8_0");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  std::ifstream pf(out + ".provenance.json");
  nlohmann::json st = nlohmann::json::parse(pf);
  const std::string input = st["predicate"]["buildDefinition"]["resolvedDependencies"][0]["name"];
  EXPECT_EQ(input.rfind("demo/stories:v1@sha256:", 0), 0u) << input;
  // The input's digest is that of the verified bytes that were quantized: the imported file's.
  auto want = store::sha256_file(model_);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(st["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"],
            std::string(want->hex()));

  auto refused = run("quantize demo/unsigned:v1 " + (home_ / "u.gguf").string() + " Q8_0");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_EQ(count_error_lines(refused.err), 1) << refused.err;
  EXPECT_NE(refused.err.find("not signed"), std::string::npos) << refused.err;
  EXPECT_FALSE(fs::exists(home_ / "u.gguf"));
  auto allowed = run("quantize demo/unsigned:v1 " + (home_ / "u.gguf").string() + " Q8_0 --allow-unsigned");
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
}

// One flipped byte in a tagged manifest: gc refuses and names it (it used to delete the
// model's weights), store check reports it, and only `store repair --drop-broken` drops it.
TEST_F(CliStore, GcRefusesABrokenManifestUntilAnExplicitRepair) {
  nlohmann::json refs = nlohmann::json::parse(std::ifstream(home_ / "store/refs.json"));
  const std::string digest = refs["repositories"]["demo/unsigned"]["tags"]["v1"];
  const fs::path blob = home_ / "store/blobs/sha256" / digest.substr(7);
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(10);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 1);
    f.seekp(10);
    f.write(&c, 1);
  }
  const size_t blobs_before =
      std::distance(fs::directory_iterator(home_ / "store/blobs/sha256"), fs::directory_iterator{});
  auto gc = run("gc");
  EXPECT_NE(gc.exit_code, 0);
  EXPECT_EQ(count_error_lines(gc.err), 1) << gc.err;
  EXPECT_NE(gc.err.find("demo/unsigned:v1"), std::string::npos) << gc.err;
  EXPECT_EQ(std::distance(fs::directory_iterator(home_ / "store/blobs/sha256"), fs::directory_iterator{}),
            static_cast<std::ptrdiff_t>(blobs_before));
  auto check = run("store check");
  EXPECT_NE(check.exit_code, 0);
  EXPECT_NE(check.out.find("demo/unsigned@" + digest), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("store repair --drop-broken"), std::string::npos) << check.out;
  auto bare = run("store repair");
  EXPECT_NE(bare.exit_code, 0);
  EXPECT_NE(bare.err.find("--drop-broken"), std::string::npos) << bare.err;
  auto repair = run("store repair --drop-broken");
  EXPECT_EQ(repair.exit_code, 0) << repair.err;
  EXPECT_NE(repair.out.find("dropped demo/unsigned:v1"), std::string::npos) << repair.out;
  EXPECT_EQ(run("gc").exit_code, 0);
  // The other models are intact and still load.
  EXPECT_EQ(run("inspect demo/stories:v1").exit_code, 0);
}

// The parse of an untrusted model runs in the parser sandbox (seccomp: no network, no
// processes, no files opened, no writes): inspect, import, verify and bundle import. The test
// hook makes the sandboxed parser attempt a forbidden call; the process is killed, the command
// fails naming the sandbox, and nothing is stored. Without the hook the same commands succeed.
TEST_F(CliStore, TheModelParseRunsInASandboxThatKillsForbiddenCalls) {
  const std::string tar = (home_ / "stories.tar").string();
  ASSERT_EQ(sh("bundle export demo/stories:v1 " + tar), 0);
  const std::string q8 = (shared_ / "models" / "stories260K-Q8_0.gguf").string();
  // The bundle imported into a second home that trusts acme: the import, then inspect there.
  auto import_elsewhere = [&] {
    fs::path node2 = testing::make_temp_dir("hearth-node2");
    setenv("HEARTH_HOME", node2.c_str(), 1);
    EXPECT_EQ(sh("trust add " + (home_ / "acme.pub").string() + " --models 'demo/*' --name acme"), 0);
    auto bundled = run("bundle import " + tar);
    auto after = run("inspect demo/stories:v1");
    setenv("HEARTH_HOME", home_.c_str(), 1);
    fs::remove_all(node2);
    return std::make_pair(bundled, after);
  };
  for (const char* hook : {"socket", "fork", "open", "write"}) {
    SCOPED_TRACE(hook);
    setenv("HEARTH_SANDBOX_TEST_HOOK", hook, 1);
    auto inspected = run("inspect " + model_);
    auto imported = run("import " + q8 + " demo/hooked:v1");
    auto verified = run("verify demo/stories:v1");
    auto [bundled, after] = import_elsewhere();
    unsetenv("HEARTH_SANDBOX_TEST_HOOK");
    for (const auto* o : {&inspected, &imported, &verified, &bundled}) {
      EXPECT_NE(o->exit_code, 0) << o->out;
      EXPECT_NE(o->err.find("the parser was killed by its sandbox"), std::string::npos) << o->err;
      EXPECT_TRUE(ends_with_error_line(o->err)) << o->err;
    }
    EXPECT_EQ(inspected.out, "");
    EXPECT_NE(after.exit_code, 0) << "the refused bundle's model was tagged: " << after.out;
    EXPECT_NE(run("inspect demo/hooked:v1").exit_code, 0) << "the refused import was tagged";
  }
  auto inspected = run("inspect " + model_);
  ASSERT_EQ(inspected.exit_code, 0) << inspected.err;
  EXPECT_NE(inspected.out.find("general.architecture"), std::string::npos) << inspected.out;
  auto verified = run("verify demo/stories:v1");
  ASSERT_EQ(verified.exit_code, 0) << verified.err;
  EXPECT_NE(verified.out.find("parsed in the sandbox"), std::string::npos) << verified.out;
  auto [bundled, after] = import_elsewhere();
  EXPECT_EQ(bundled.exit_code, 0) << bundled.err;
  EXPECT_EQ(after.exit_code, 0) << after.err;
}

}  // namespace
}  // namespace hearth
