// Every remote value is hostile: a fake registry (on hearth's own HTTP adapter) serves lies,
// and pull must refuse each one without leaving anything visible in the store.
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "hearth/http/http_server.h"
#include "hearth/registry/model_transfer.h"
#include "registry_process.h"
#include "test_nodes.h"

namespace hearth::registry {
namespace {

using hearth::testing::Node;

// Serves whatever body the test put at a path (GET and HEAD), and {} at /v2/.
class FakeRegistry {
 public:
  FakeRegistry() {
    http::HttpServerOptions o;
    o.port = 0;
    server_ = http::HttpServer::create(o).value();
    put("/v2/", "{}", "application/json");
    server_->route("GET", ".*", [this](const http::HttpRequest& req) {
      std::lock_guard l(mu_);
      http::HttpResponse r;
      auto it = content_.find(req.path);
      if (it == content_.end()) {
        r.status = 404;
        r.body = R"({"errors":[{"code":"NOT_FOUND","message":"not here"}]})";
        return r;
      }
      r.body = it->second.first;
      r.content_type = it->second.second;
      return r;
    });
    EXPECT_TRUE(server_->bind().ok());
    thread_ = std::thread([this] { (void)server_->serve(); });
    EXPECT_TRUE(hearth::testing::wait_http(url(), 10));
  }
  ~FakeRegistry() {
    server_->stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  void manifest(const std::string& name, const std::string& ref, const std::string& body) {
    put("/v2/" + name + "/manifests/" + ref, body, std::string(store::kOciManifestMediaType));
  }
  void blob(const std::string& name, const store::Digest& d, const std::string& body) {
    put("/v2/" + name + "/blobs/" + d.str(), body, "application/octet-stream");
  }

 private:
  void put(const std::string& path, const std::string& body, const std::string& type) {
    std::lock_guard l(mu_);
    content_[path] = {body, type};
  }

  std::unique_ptr<http::HttpServer> server_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::string>> content_;
  std::thread thread_;
};

std::string model_manifest(const std::string& config_digest, uint64_t config_size, const std::string& weights_digest,
                           uint64_t weights_size) {
  return std::string(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)") +
         R"("artifactType":"application/vnd.cncf.model.manifest.v1+json",)" +
         R"("config":{"mediaType":"application/vnd.cncf.model.config.v1+json","digest":")" + config_digest +
         R"(","size":)" + std::to_string(config_size) + R"(},"layers":[{"mediaType":)" +
         R"("application/vnd.cncf.model.weight.v1.raw","digest":")" + weights_digest + R"(","size":)" +
         std::to_string(weights_size) + R"(,"annotations":{"org.opencontainers.image.title":"m.gguf"}}]})";
}

Result<PullResult> pull_from(FakeRegistry& fake, Node& node, const std::string& ref) {
  PullOptions opts;
  opts.sources = {fake.url()};
  opts.allow_unsigned = true;  // so that only the hostile values can cause refusal
  opts.remote.retries = 0;
  return pull_model(*node.store, *store::parse_reference(ref), opts);
}

void expect_store_untouched(Node& node) {
  auto check = node.store->check();
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok());
  EXPECT_EQ(check->blobs_checked, 0u);
  EXPECT_TRUE(node.store->list()->empty());
}

TEST(HostileRegistry, BlobLongerThanDeclaredIsCutOffAndRejected) {
  FakeRegistry fake;
  Node node("hearth-hostile");
  std::string config = "{}", weights = "GGUF honest weights";
  store::Digest cd = store::sha256_of(config), wd = store::sha256_of(weights);
  fake.manifest("evil/long", "v1", model_manifest(cd.str(), config.size(), wd.str(), weights.size()));
  fake.blob("evil/long", cd, config);
  fake.blob("evil/long", wd, weights + std::string(1 << 20, 'X'));  // a 1 MiB tail
  auto r = pull_from(fake, node, "evil/long:v1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDataLoss) << r.status().message();
  EXPECT_NE(r.status().message().find("cut off"), std::string::npos);
  EXPECT_FALSE(node.store->has_blob(wd));
  EXPECT_FALSE(std::filesystem::exists(node.store->partial_path(wd)));
  EXPECT_TRUE(node.store->list()->empty());
}

TEST(HostileRegistry, BlobWithWrongContentIsRejected) {
  FakeRegistry fake;
  Node node("hearth-hostile");
  std::string config = "{}", weights = "GGUF honest weights";
  store::Digest cd = store::sha256_of(config), wd = store::sha256_of(weights);
  fake.manifest("evil/swap", "v1", model_manifest(cd.str(), config.size(), wd.str(), weights.size()));
  fake.blob("evil/swap", cd, config);
  fake.blob("evil/swap", wd, "GGUF wicked weights");  // same length, other bytes
  auto r = pull_from(fake, node, "evil/swap:v1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDataLoss) << r.status().message();
  EXPECT_FALSE(node.store->has_blob(wd));
  EXPECT_TRUE(node.store->list()->empty());
}

TEST(HostileRegistry, DigestPathTraversalIsRefused) {
  FakeRegistry fake;
  Node node("hearth-hostile");
  int i = 0;
  for (const char* evil : {"sha256:../../../../../tmp/hearth-pwned", "sha256:/etc/passwd",
                           "sha256:0000000000000000000000000000000000000000000000000000000000000000/../../x"}) {
    std::string name = "evil/path" + std::to_string(i++);
    fake.manifest(name, "v1", model_manifest(evil, 2, evil, 10));
    auto r = pull_from(fake, node, name + ":v1");
    ASSERT_FALSE(r.ok()) << evil;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << r.status().message();
  }
  EXPECT_FALSE(std::filesystem::exists("/tmp/hearth-pwned"));
  expect_store_untouched(node);
}

TEST(HostileRegistry, DeclaredSizeBeyondTheDiskIsRefusedUpFront) {
  FakeRegistry fake;
  Node node("hearth-hostile");
  std::string config = "{}";
  store::Digest cd = store::sha256_of(config);
  store::Digest wd = store::sha256_of(std::string_view("never sent"));
  fake.manifest("evil/bomb", "v1", model_manifest(cd.str(), config.size(), wd.str(), 1ull << 62));
  fake.blob("evil/bomb", cd, config);
  fake.blob("evil/bomb", wd, "never sent");
  auto r = pull_from(fake, node, "evil/bomb:v1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kResourceExhausted) << r.status().message();
  EXPECT_FALSE(std::filesystem::exists(node.store->partial_path(wd)));
  EXPECT_TRUE(node.store->list()->empty());
}

TEST(HostileRegistry, OversizedManifestIsRefused) {
  FakeRegistry fake;
  Node node("hearth-hostile");
  fake.manifest("evil/huge", "v1", std::string(store::kMaxManifestBytes + 1, ' '));
  auto r = pull_from(fake, node, "evil/huge:v1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kOutOfRange) << r.status().message();
  expect_store_untouched(node);
}

TEST(HostileRegistry, ManifestNotMatchingTheRequestedDigestIsRefused) {
  FakeRegistry fake;
  Node node("hearth-hostile");
  std::string body = model_manifest(store::sha256_of(std::string_view("{}")).str(), 2,
                                    store::sha256_of(std::string_view("w")).str(), 1);
  std::string asked = store::sha256_of(std::string_view("something else")).str();
  fake.manifest("evil/pin", asked, body);
  auto r = pull_from(fake, node, "evil/pin@" + asked);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDataLoss) << r.status().message();
  expect_store_untouched(node);
}

}  // namespace
}  // namespace hearth::registry
