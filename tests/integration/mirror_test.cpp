// `hearth registry serve` as a LAN mirror: round trip, source order, Range, resume, read-only.
#include <thread>

#include <gtest/gtest.h>

#include "hearth/registry/http_client.h"
#include "hearth/registry/model_transfer.h"
#include "hearth/registry/registry_server.h"
#include "registry_process.h"
#include "test_nodes.h"

namespace hearth::registry {
namespace {

using hearth::testing::Node;

class Mirror {
 public:
  explicit Mirror(const std::filesystem::path& home) : server_(home.string()) {
    EXPECT_TRUE(server_.bind("127.0.0.1", 0).ok());
    thread_ = std::thread([this] { (void)server_.serve(); });
    url_ = "http://127.0.0.1:" + std::to_string(server_.port());
    EXPECT_TRUE(hearth::testing::wait_http(url_, 10));
  }
  ~Mirror() {
    server_.stop();
    thread_.join();
  }
  const std::string& url() const { return url_; }
  uint64_t served() const { return server_.blob_bytes_served(); }

 private:
  RegistryServer server_;
  std::thread thread_;
  std::string url_;
};

TEST(Mirror, PeerPullsThroughRegistryServeAfterAnUnreachableSource) {
  HEARTH_REQUIRE_SHARED(shared);
  auto model = shared / "models/stories260K-Q8_0.gguf";
  Node node("hearth-mirror"), peer("hearth-peer");
  auto key = hearth::testing::new_key();
  store::Digest manifest = node.import(model, "acme/stories:v1", 1);
  node.sign("acme/stories:v1", key);
  Mirror mirror(node.home);
  peer.trust(key, "acme/*");
  PullOptions pull;
  pull.sources = {"http://127.0.0.1:" + std::to_string(hearth::testing::free_port()), mirror.url()};
  pull.remote.retries = 0;
  auto r = pull_model(*peer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->source, mirror.url());
  EXPECT_EQ(r->manifest, manifest);
  EXPECT_EQ(r->signatures, 1u);  // through the referrers API this time
  EXPECT_TRUE(peer.store->check()->ok());
}

TEST(Mirror, ServesRangesTagsAndRefusesWrites) {
  HEARTH_REQUIRE_SHARED(shared);
  auto model = shared / "models/stories260K-Q8_0.gguf";
  Node node("hearth-mirror");
  node.import(model, "acme/stories:v1", 1);
  node.import(shared / "models/stories260K-Q4_0.gguf", "other/model:v1", 1);
  Mirror mirror(node.home);
  store::Digest weights = *store::sha256_file(model.string());
  std::string bytes = *read_file(model.string());
  HttpClient http;
  HttpRequest req;
  req.url = mirror.url() + "/v2/acme/stories/blobs/" + weights.str();
  req.headers = {"Range: bytes=100-199"};
  auto r = http.send(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 206);
  EXPECT_EQ(r->body, bytes.substr(100, 100));
  // A blob is served only under a name whose manifests reach it.
  req.headers.clear();
  req.url = mirror.url() + "/v2/other/model/blobs/" + weights.str();
  EXPECT_EQ(http.send(req)->status, 404);
  req.url = mirror.url() + "/v2/acme/stories/blobs/sha256:..%2F..%2Fetc%2Fpasswd";
  EXPECT_NE(http.send(req)->status, 200);
  req.url = mirror.url() + "/v2/acme/stories/tags/list";
  EXPECT_NE(http.send(req)->body.find("\"v1\""), std::string::npos);
  req.method = "PUT";
  req.url = mirror.url() + "/v2/acme/stories/manifests/evil";
  req.body = "{}";
  EXPECT_EQ(http.send(req)->status, 405);
  req.method = "HEAD";
  req.body.clear();
  req.url = mirror.url() + "/v2/acme/stories/manifests/v1";
  auto head = http.send(req);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("docker-content-digest"),
            node.store->resolve(*store::parse_reference("acme/stories:v1"))->str());
}

TEST(Mirror, TruncatedDownloadResumesWithRange) {
  HEARTH_REQUIRE_SHARED(shared);
  auto model = shared / "models/stories260K-Q8_0.gguf";
  Node node("hearth-mirror"), peer("hearth-peer");
  store::Digest manifest = node.import(model, "acme/stories:v1", 1);
  Mirror mirror(node.home);
  // An earlier pull was interrupted after the first half of the weights.
  store::Digest weights = *store::sha256_file(model.string());
  std::string bytes = *read_file(model.string());
  uint64_t half = bytes.size() / 2;
  ASSERT_TRUE(write_file_atomic(peer.store->partial_path(weights), std::string_view(bytes).substr(0, half)).ok());
  auto m = node.store->read_manifest(manifest);
  uint64_t all_blobs = m->config.size + m->layers[0].size;

  PullOptions pull;
  pull.sources = {mirror.url()};
  pull.allow_unsigned = true;
  uint64_t before = mirror.served();
  auto r = pull_model(*peer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(mirror.served() - before, all_blobs - half);  // only the missing tail crossed the wire
  EXPECT_TRUE(peer.store->verify_blob(weights).ok());
  EXPECT_FALSE(std::filesystem::exists(peer.store->partial_path(weights)));
}

TEST(Mirror, ConcurrentPullsOfOneModelIntoOneStore) {
  HEARTH_REQUIRE_SHARED(shared);
  auto model = shared / "models/stories260K-Q8_0.gguf";
  Node node("hearth-mirror"), peer("hearth-peer");
  node.import(model, "acme/stories:v1", 1);
  Mirror mirror(node.home);
  // Four pullers (as separate processes would) on one store, paced so that they overlap.
  std::vector<std::thread> pullers;
  std::vector<Status> results(4);
  for (int i = 0; i < 4; ++i) {
    pullers.emplace_back([&, i] {
      auto st = store::Store::open(peer.home.string());
      PullOptions pull;
      pull.sources = {mirror.url()};
      pull.allow_unsigned = true;
      pull.remote.max_recv_bytes_per_second = 1 << 20;
      auto r = pull_model(*st, *store::parse_reference("acme/stories:v1"), pull);
      results[i] = r.ok() ? ok_status() : r.status();
    });
  }
  for (auto& t : pullers) t.join();
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(peer.store->check()->ok());
  EXPECT_TRUE(peer.store->resolve(*store::parse_reference("acme/stories:v1")).ok());
}

TEST(Mirror, CorruptPartialIsDiscardedNotTrusted) {
  HEARTH_REQUIRE_SHARED(shared);
  auto model = shared / "models/stories260K-Q8_0.gguf";
  Node node("hearth-mirror"), peer("hearth-peer");
  node.import(model, "acme/stories:v1", 1);
  Mirror mirror(node.home);
  store::Digest weights = *store::sha256_file(model.string());
  // A partial file with garbage: the resumed result cannot match the digest.
  ASSERT_TRUE(write_file_atomic(peer.store->partial_path(weights), std::string(1000, 'z')).ok());
  PullOptions pull;
  pull.sources = {mirror.url()};
  pull.allow_unsigned = true;
  auto r = pull_model(*peer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("hash"), std::string::npos) << r.status().message();
  EXPECT_FALSE(peer.store->has_blob(weights));
  EXPECT_FALSE(std::filesystem::exists(peer.store->partial_path(weights)));
  // The next attempt starts clean and succeeds.
  auto again = pull_model(*peer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_TRUE(again.ok()) << again.status().message();
}

}  // namespace
}  // namespace hearth::registry
