// LoRA adapters in the store: `hearth finetune --sign-key --import` puts a signed adapter there
// with a signed provenance attestation naming the base model's and the training data's
// digests; `run --lora NAME:TAG` verifies it like a model and gives the same text as the file;
// an untrusted, unsigned or tampered adapter is refused with one clear error.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_helpers.h"
#include "hearth/core/sha256.h"
#include "http_test_client.h"
#include "shared_data.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using cli_test::count_error_lines;
using cli_test::run;
using json = nlohmann::json;

// A private $HEARTH_HOME with the f32 test model as demo/base:v1 signed by 'acme', whom the
// policy trusts for demo/*; 'other' is a key the policy does not list. data.txt: the first
// 20 KB of the Alice text.
class CliAdapterStore : public ::testing::Test {
 protected:
  void SetUp() override {
    HEARTH_REQUIRE_SHARED(shared);
    home_ = testing::make_temp_dir("hearth-adapter-home");
    setenv("HEARTH_HOME", home_.c_str(), 1);
    base_file_ = (shared / "models" / "stories260K-f32.gguf").string();
    data_ = (home_ / "data.txt").string();
    {
      std::ifstream in(shared / "models" / "alice_in_wonderland.txt", std::ios::binary);
      std::string text(20000, '\0');
      in.read(text.data(), static_cast<std::streamsize>(text.size()));
      text.resize(static_cast<size_t>(in.gcount()));
      std::ofstream(data_, std::ios::binary) << text;
    }
    ASSERT_EQ(sh("import " + base_file_ + " demo/base:v1"), 0);
    ASSERT_EQ(sh("keygen --out " + path("acme")), 0);
    ASSERT_EQ(sh("keygen --out " + path("other")), 0);
    ASSERT_EQ(sh("sign demo/base:v1 --key " + path("acme.key")), 0);
    ASSERT_EQ(sh("trust add " + path("acme.pub") + " --models 'demo/*' --name acme"), 0);
  }
  void TearDown() override {
    unsetenv("HEARTH_HOME");
    if (!home_.empty()) fs::remove_all(home_);
  }
  int sh(const std::string& args) {
    return std::system((std::string(HEARTH_BIN) + " " + args + " >/dev/null 2>&1").c_str());
  }
  std::string path(const std::string& name) const { return (home_ / name).string(); }
  // finetune BASE on data.txt into OUT (3 steps), with extra flags.
  cli_test::Output finetune(const std::string& base, const std::string& out, const std::string& extra) {
    return run("finetune " + base + " --data " + data_ + " --out " + path(out) + " --steps 3 -t 2 --lr 0.01 " + extra);
  }

  fs::path home_;
  std::string base_file_, data_;
};

const std::string kGen = " -p \"Alice was\" -n 16 --temp 0 -t 2 ";

TEST_F(CliAdapterStore, SignedAdapterCarriesProvenanceAndRunsByReference) {
  const auto ft = finetune("demo/base:v1", "ft.gguf", "--sign-key " + path("acme.key") + " --import demo/ft:v1");
  ASSERT_EQ(ft.exit_code, 0) << ft.err;
  EXPECT_NE(ft.out.find("provenance attestation: sha256:"), std::string::npos) << ft.out;
  EXPECT_TRUE(fs::exists(path("ft.gguf.provenance.json")));
  EXPECT_TRUE(fs::exists(path("ft.gguf.provenance.sigstore.json")));

  const auto v = run("verify demo/ft:v1");
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("signed by acme"), std::string::npos) << v.out;

  // The store knows it is a LoRA adapter for llama; the attestation is verified and names the
  // adapter, the verified base and the data by digest, with the training parameters.
  const auto text = run("inspect demo/ft:v1");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("adapter:      LoRA for llama, rank 8, alpha 16, targets attn_k,"), std::string::npos)
      << text.out;
  const auto i = run("inspect demo/ft:v1 --json");
  ASSERT_EQ(i.exit_code, 0) << i.err;
  const json doc = json::parse(i.out);
  const json& prov = doc["provenance"];
  EXPECT_EQ(prov["adapter"]["type"], "lora");
  EXPECT_EQ(prov["adapter"]["rank"], 8);
  EXPECT_EQ(prov["model"]["architecture"], "llama");
  ASSERT_EQ(prov["attestations"].size(), 1u) << i.out;
  const json& att = prov["attestations"][0];
  EXPECT_EQ(att["verified"], true);
  EXPECT_EQ(att["publisher"], "acme");
  const json& st = att["statement"];
  EXPECT_EQ(st["subject"][0]["digest"]["sha256"], *sha256_file_hex(path("ft.gguf")));
  const json& bd = st["predicate"]["buildDefinition"];
  EXPECT_EQ(bd["buildType"], "urn:hearth:build-type:finetune-lora:v1");
  EXPECT_EQ(bd["externalParameters"]["rank"], 8);
  EXPECT_EQ(bd["externalParameters"]["alpha"], 16.0);
  EXPECT_EQ(bd["externalParameters"]["steps"], 3);
  EXPECT_EQ(bd["externalParameters"]["seed"], 1);
  EXPECT_EQ(bd["externalParameters"]["lr"], 0.01);
  EXPECT_EQ(bd["externalParameters"]["targets"].size(), 7u);
  const json& deps = bd["resolvedDependencies"];
  ASSERT_EQ(deps.size(), 2u);
  EXPECT_EQ(deps[0]["annotations"]["role"], "base-model");
  EXPECT_EQ(deps[0]["name"].get<std::string>().rfind("demo/base:v1@sha256:", 0), 0u) << deps[0];
  EXPECT_EQ(deps[0]["digest"]["sha256"], *sha256_file_hex(base_file_));  // the imported weights blob
  EXPECT_EQ(deps[1]["annotations"]["role"], "training-data");
  EXPECT_EQ(deps[1]["name"], "data.txt");
  EXPECT_EQ(deps[1]["digest"]["sha256"], *sha256_file_hex(data_));

  // By reference (tag or digest, with or without a scale) = by file.
  const auto by_file = run("run " + base_file_ + kGen + "--lora " + path("ft.gguf"));
  const auto by_ref = run("run demo/base:v1" + kGen + "--lora demo/ft:v1");
  const auto by_digest = run("run demo/base:v1" + kGen + "--lora demo/ft@" + doc["manifest_digest"].get<std::string>());
  const auto zero = run("run demo/base:v1" + kGen + "--lora demo/ft:v1:0");
  const auto plain = run("run demo/base:v1" + kGen);
  ASSERT_EQ(by_file.exit_code, 0) << by_file.err;
  ASSERT_EQ(by_ref.exit_code, 0) << by_ref.err;
  ASSERT_EQ(by_digest.exit_code, 0) << by_digest.err;
  ASSERT_EQ(zero.exit_code, 0) << zero.err;
  EXPECT_EQ(by_ref.out, by_file.out);
  EXPECT_EQ(by_digest.out, by_file.out);
  EXPECT_EQ(zero.out, plain.out);
  EXPECT_NE(by_ref.out, plain.out);  // the adapter changes the text (lr 0.01)

  // An adapter is not a model, and a model is not an adapter.
  const auto as_model = run("run demo/ft:v1" + kGen);
  EXPECT_EQ(as_model.exit_code, 2);
  EXPECT_EQ(count_error_lines(as_model.err), 1) << as_model.err;
  EXPECT_NE(as_model.err.find("demo/ft:v1 is a LoRA adapter, not a model: run its base model with --lora demo/ft:v1"),
            std::string::npos)
      << as_model.err;
  const auto as_adapter = run("run demo/base:v1" + kGen + "--lora demo/base:v1");
  EXPECT_EQ(as_adapter.exit_code, 2);
  EXPECT_NE(as_adapter.err.find("demo/base:v1: general.type is missing, not \"adapter\""), std::string::npos)
      << as_adapter.err;
}

// serve --lora NAME:TAG: verified at start, listed at /lora-adapters, applied per request.
TEST_F(CliAdapterStore, ServerTakesAStoreAdapter) {
  ASSERT_EQ(finetune(base_file_, "ft.gguf", "--sign-key " + path("acme.key") + " --import demo/ft:v1").exit_code, 0);
  http_test::ServeProcess serve("demo/base:v1", {"--parallel", "1", "--lora", "demo/ft:v1:0"});
  ASSERT_TRUE(serve.ok()) << serve.log();
  auto post = [&](const std::string& extra) {
    const std::string body = R"({"prompt":"Alice was","max_tokens":16,"temperature":0)" + extra + "}";
    const std::string r = http_test::exchange(serve.port(),
                                              "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: "
                                              "close\r\nContent-Type: application/json\r\nContent-Length: " +
                                                  std::to_string(body.size()) + "\r\n\r\n" + body,
                                              30);
    EXPECT_EQ(http_test::status_of(r), 200) << r;
    const json j = json::parse(r.substr(r.find("\r\n\r\n") + 4), nullptr, false);
    return j.is_discarded() ? std::string("<bad>") : j["choices"][0]["text"].get<std::string>();
  };
  const std::string list =
      http_test::exchange(serve.port(), "GET /lora-adapters HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 30);
  // Listed under its reference (parsed from the mapping that verification hashed, not re-read
  // from the blob's path).
  EXPECT_NE(list.find("\"path\":\"demo/ft:v1\""), std::string::npos) << list;
  const std::string base = post("");
  const std::string adapted = post(R"(,"lora":[{"id":0,"scale":1}])");
  EXPECT_NE(adapted, base);
  EXPECT_EQ(post(R"(,"lora":[{"id":0,"scale":0}])"), base);
}

TEST_F(CliAdapterStore, UntrustedUnsignedAndTamperedAdaptersAreRefused) {
  ASSERT_EQ(finetune(base_file_, "other.gguf", "--sign-key " + path("other.key") + " --import demo/other:v1").exit_code,
            0);
  const auto untrusted = run("run demo/base:v1" + kGen + "--lora demo/other:v1");
  EXPECT_NE(untrusted.exit_code, 0);
  EXPECT_EQ(count_error_lines(untrusted.err), 1) << untrusted.err;
  EXPECT_NE(untrusted.err.find("'demo/other:v1' refused: signed by key"), std::string::npos) << untrusted.err;
  EXPECT_NE(untrusted.err.find("which the trust policy does not list"), std::string::npos) << untrusted.err;
  // serve verifies it before it binds.
  const auto serve = run("serve demo/base:v1 --port 0 --lora demo/other:v1");
  EXPECT_NE(serve.exit_code, 0);
  EXPECT_EQ(count_error_lines(serve.err), 1) << serve.err;
  EXPECT_NE(serve.err.find("'demo/other:v1' refused: signed by key"), std::string::npos) << serve.err;

  const auto unsigned_ft = finetune(base_file_, "u.gguf", "--import demo/unsigned:v1");
  ASSERT_EQ(unsigned_ft.exit_code, 0) << unsigned_ft.err;
  EXPECT_FALSE(fs::exists(path("u.gguf.provenance.sigstore.json")));
  // Imported here it would run as a local import; without the record it stands for an unsigned
  // adapter from elsewhere.
  fs::remove_all(home_ / "store" / "local-imports");
  const auto refused = run("run demo/base:v1" + kGen + "--lora demo/unsigned:v1");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_EQ(count_error_lines(refused.err), 1) << refused.err;
  EXPECT_NE(refused.err.find("'demo/unsigned:v1' refused: the model is not signed"), std::string::npos) << refused.err;
  EXPECT_EQ(run("run demo/base:v1" + kGen + "--lora demo/unsigned:v1 --allow-unsigned").exit_code, 0);

  // One byte changed in the signed adapter's blob: refused even with --allow-unsigned.
  ASSERT_EQ(finetune(base_file_, "ft.gguf", "--sign-key " + path("acme.key") + " --import demo/ft:v1").exit_code, 0);
  const fs::path blob = home_ / "store" / "blobs" / "sha256" / *sha256_file_hex(path("ft.gguf"));
  ASSERT_TRUE(fs::exists(blob)) << blob;
  ASSERT_EQ(chmod(blob.c_str(), 0644), 0);
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(6000);
    f.put('X');
  }
  for (const std::string flags : {"", "--allow-unsigned"}) {
    const auto tampered = run("run demo/base:v1" + kGen + "--lora demo/ft:v1 " + flags);
    EXPECT_NE(tampered.exit_code, 0) << flags;
    EXPECT_EQ(count_error_lines(tampered.err), 1) << tampered.err;
    EXPECT_NE(tampered.err.find("'demo/ft:v1' refused:"), std::string::npos) << tampered.err;
    EXPECT_NE(tampered.err.find("(tampered or corrupt)"), std::string::npos) << tampered.err;
  }
}

}  // namespace
}  // namespace hearth
