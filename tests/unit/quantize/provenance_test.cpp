// Provenance statements and the safety of the output: digests checked against independently
// computed values (the FIPS 180-2 test vector, OpenSSL's one-shot SHA256(), and the model
// digest recorded in ../shared/reference), atomic output, refusing to overwrite the input or
// to requantize silently, and a write that fails part-way leaving nothing behind.
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "hearth/core/atomic_file.h"
#include "hearth/core/sha256.h"
#include "hearth/quantize/provenance.h"
#include "hearth/quantize/quantize_model.h"
#include "shared_data.h"

namespace hearth::quantize {
namespace {

namespace fs = std::filesystem;

std::string one_shot_sha256(const fs::path& p) {
  auto s = read_file(p.string());
  EXPECT_TRUE(s.ok());
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s->data()), s->size(), md);
  char hex[2 * SHA256_DIGEST_LENGTH + 1];
  for (int i = 0; i < SHA256_DIGEST_LENGTH; ++i) std::snprintf(hex + 2 * i, 3, "%02x", md[i]);
  return hex;
}

TEST(Sha256Test, KnownVector) {
  const std::string abc = "abc";  // FIPS 180-2, appendix B.1
  EXPECT_EQ(sha256_hex(std::as_bytes(std::span<const char>(abc.data(), abc.size()))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

class ProvenanceTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = hearth::testing::make_temp_dir("hearth-provenance"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ProvenanceTest, StatementParsesAndItsDigestsAreRight) {
  HEARTH_REQUIRE_SHARED(shared);
  const fs::path in = shared / "models" / "stories260K-f32.gguf";
  const fs::path out = dir_ / "s-q8_0.gguf";
  QuantizeParams p;
  p.recipe.ftype = FileType::kQ8_0;
  ASSERT_TRUE(quantize_model(in.string(), out.string(), p).ok());
  QuantizeProvenance pv;
  pv.recipe = "Q8_0";
  pv.file_type = 7;
  pv.hearth_version = "9.9.9";
  pv.started_unix = 0;
  pv.finished_unix = 86400;
  const std::string path = provenance_path_for(out.string());
  EXPECT_EQ(path, out.string() + ".provenance.json");
  ASSERT_TRUE(write_provenance(path, out.string(), in.string(), "", pv).ok());

  auto text = read_file(path);
  ASSERT_TRUE(text.ok());
  const auto j = nlohmann::json::parse(*text);
  EXPECT_EQ(j["_type"], "https://in-toto.io/Statement/v1");
  EXPECT_EQ(j["predicateType"], "https://slsa.dev/provenance/v1");
  ASSERT_EQ(j["subject"].size(), 1u);
  EXPECT_EQ(j["subject"][0]["name"], "s-q8_0.gguf");
  EXPECT_EQ(j["subject"][0]["digest"]["sha256"], one_shot_sha256(out));
  const auto& bd = j["predicate"]["buildDefinition"];
  EXPECT_EQ(bd["buildType"], std::string(kQuantizeBuildType));
  EXPECT_EQ(bd["externalParameters"]["recipe"], "Q8_0");
  EXPECT_EQ(bd["externalParameters"]["file_type"], 7);
  ASSERT_EQ(bd["resolvedDependencies"].size(), 1u);
  EXPECT_EQ(bd["resolvedDependencies"][0]["name"], "stories260K-f32.gguf");
  // The reference records the input model's digest.
  std::ifstream ref(shared / "reference" / "perplexity.json");
  const auto rj = nlohmann::json::parse(ref);
  EXPECT_EQ(bd["resolvedDependencies"][0]["digest"]["sha256"], rj["results"]["stories260K-f32.gguf"]["model_sha256"]);
  const auto& rd = j["predicate"]["runDetails"];
  EXPECT_EQ(rd["builder"]["version"]["hearth"], "9.9.9");
  EXPECT_EQ(rd["metadata"]["startedOn"], "1970-01-01T00:00:00Z");
  EXPECT_EQ(rd["metadata"]["finishedOn"], "1970-01-02T00:00:00Z");
}

TEST_F(ProvenanceTest, RecordsTheImatrixDigest) {
  HEARTH_REQUIRE_SHARED(shared);
  const fs::path in = shared / "models" / "stories260K-f32.gguf";
  const fs::path im = dir_ / "x.imatrix.gguf";
  ASSERT_TRUE(write_file_atomic(im.string(), std::string_view("not really an imatrix")).ok());
  const fs::path out = dir_ / "o.gguf";
  ASSERT_TRUE(write_file_atomic(out.string(), std::string_view("output")).ok());
  QuantizeProvenance pv;
  ASSERT_TRUE(write_provenance(provenance_path_for(out.string()), out.string(), in.string(), im.string(), pv).ok());
  const auto j = nlohmann::json::parse(*read_file(provenance_path_for(out.string())));
  const auto& deps = j["predicate"]["buildDefinition"]["resolvedDependencies"];
  ASSERT_EQ(deps.size(), 2u);
  EXPECT_EQ(deps[1]["name"], "x.imatrix.gguf");
  EXPECT_EQ(deps[1]["digest"]["sha256"], one_shot_sha256(im));
  EXPECT_EQ(j["subject"][0]["digest"]["sha256"], one_shot_sha256(out));
}

TEST_F(ProvenanceTest, NeverOverwritesTheInput) {
  HEARTH_REQUIRE_SHARED(shared);
  const fs::path copy = dir_ / "model.gguf";
  fs::copy_file(shared / "models" / "stories260K-f32.gguf", copy);
  const std::string before = one_shot_sha256(copy);
  QuantizeParams p;
  p.recipe.ftype = FileType::kQ4_0;
  auto r = quantize_model(copy.string(), copy.string(), p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  // The same file through another path.
  auto r2 = quantize_model(copy.string(), (dir_ / "." / "model.gguf").string(), p);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(one_shot_sha256(copy), before);
}

TEST_F(ProvenanceTest, RequantizingNeedsAFlag) {
  HEARTH_REQUIRE_SHARED(shared);
  const fs::path q8 = shared / "models" / "stories260K-Q8_0.gguf";
  QuantizeParams p;
  p.recipe.ftype = FileType::kQ4_0;
  auto r = quantize_model(q8.string(), (dir_ / "re.gguf").string(), p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("--allow-requantize"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "re.gguf"));
  p.allow_requantize = true;
  auto ok = quantize_model(q8.string(), (dir_ / "re.gguf").string(), p);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_TRUE(fs::exists(dir_ / "re.gguf"));
}

TEST_F(ProvenanceTest, AFailedWriteLeavesNothingBehind) {
  HEARTH_REQUIRE_SHARED(shared);
  // A file-size limit makes the write fail part-way, as a full disk would.
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* prev = signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  QuantizeParams p;
  p.recipe.ftype = FileType::kQ8_0;
  auto r = quantize_model((shared / "models" / "stories260K-f32.gguf").string(), (dir_ / "big.gguf").string(), p);
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, prev);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("big.gguf"), std::string::npos) << r.status().to_string();
  EXPECT_TRUE(fs::is_empty(dir_)) << "a partial or temporary file was left in " << dir_;
}

TEST_F(ProvenanceTest, KeepsAGivenInputName) {
  // Quantizing a store model: the input is a blob named by its digest; the statement names the
  // reference it was resolved from.
  const fs::path in = dir_ / "0123abcd";
  ASSERT_TRUE(write_file_atomic(in.string(), std::string_view("input")).ok());
  const fs::path out = dir_ / "o.gguf";
  ASSERT_TRUE(write_file_atomic(out.string(), std::string_view("output")).ok());
  QuantizeProvenance pv;
  pv.input.name = "acme/stories:v1@sha256:0123abcd";
  ASSERT_TRUE(write_provenance(provenance_path_for(out.string()), out.string(), in.string(), "", pv).ok());
  const auto j = nlohmann::json::parse(*read_file(provenance_path_for(out.string())));
  const auto& dep = j["predicate"]["buildDefinition"]["resolvedDependencies"][0];
  EXPECT_EQ(dep["name"], "acme/stories:v1@sha256:0123abcd");
  EXPECT_EQ(dep["digest"]["sha256"], one_shot_sha256(in));
}

}  // namespace
}  // namespace hearth::quantize
