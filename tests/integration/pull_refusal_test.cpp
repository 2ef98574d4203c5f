// pull refuses before it downloads: an unsigned or untrusted model, or a manifest over the
// layer caps, costs no layer download and leaves no partial or lock file behind. Redirects:
// uploads never follow one, downloads only to the same origin unless allowed. --limit-rate is
// one budget across parallel ranges.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "hearth/registry/http_client.h"
#include "hearth/registry/model_transfer.h"
#include "hearth/registry/rate_pacer.h"
#include "hearth/registry/registry_server.h"
#include "registry_process.h"
#include "test_nodes.h"

namespace hearth::registry {
namespace {

namespace fs = std::filesystem;
using hearth::testing::Node;

class Mirror {
 public:
  explicit Mirror(const fs::path& home) : server_(home.string()) {
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

// Files left in the peer's store tmp area.
std::vector<std::string> tmp_files(const store::Store& st) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(st.tmp_dir())) out.push_back(e.path().filename().string());
  return out;
}

struct Served {
  Node node{"hearth-refuse-src"};
  Node peer{"hearth-refuse-peer"};
  store::Digest weights;
};

void import_model(Served& s, const fs::path& model) {
  s.node.import(model, "acme/stories:v1", 1);
  auto m = s.node.store->read_manifest(*s.node.store->resolve(*store::parse_reference("acme/stories:v1")));
  s.weights = m->layers.at(0).digest;
}

TEST(PullRefusal, UnsignedModelIsRefusedBeforeAnyLayerIsDownloaded) {
  HEARTH_REQUIRE_SHARED(shared);
  Served s;
  import_model(s, shared / "models/stories260K-Q8_0.gguf");
  s.peer.trust(hearth::testing::new_key(), "acme/*");
  Mirror mirror(s.node.home);
  PullOptions pull;
  pull.sources = {mirror.url()};
  auto r = pull_model(*s.peer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("before downloading"), std::string::npos) << r.status().message();
  EXPECT_EQ(mirror.served(), 0u);  // not one layer byte
  EXPECT_FALSE(s.peer.store->has_blob(s.weights));
  EXPECT_TRUE(tmp_files(*s.peer.store).empty());
}

TEST(PullRefusal, UntrustedSignatureIsRefusedBeforeTheWeightsAreDownloaded) {
  HEARTH_REQUIRE_SHARED(shared);
  Served s;
  import_model(s, shared / "models/stories260K-Q8_0.gguf");
  s.node.sign("acme/stories:v1", hearth::testing::new_key());  // a stranger's key
  s.peer.trust(hearth::testing::new_key(), "acme/*");
  Mirror mirror(s.node.home);
  PullOptions pull;
  pull.sources = {mirror.url()};
  auto r = pull_model(*s.peer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_FALSE(s.peer.store->has_blob(s.weights));
  EXPECT_LT(mirror.served(), 64u << 10);  // the signature bundle only, never the weights
  EXPECT_TRUE(tmp_files(*s.peer.store).empty());
}

TEST(PullRefusal, LayerCountAndDeclaredSizeAreCapped) {
  HEARTH_REQUIRE_SHARED(shared);
  Served s;
  import_model(s, shared / "models/stories260K-Q8_0.gguf");
  auto key = hearth::testing::new_key();
  s.node.sign("acme/stories:v1", key);
  s.peer.trust(key, "acme/*");
  Mirror mirror(s.node.home);
  PullOptions pull;
  pull.sources = {mirror.url()};
  pull.max_layers = 0;
  auto r = pull_model(*s.peer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("layers"), std::string::npos) << r.status().message();
  pull.max_layers = 64;
  pull.max_total_bytes = 1000;
  r = pull_model(*s.peer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(mirror.served(), 0u);
  EXPECT_TRUE(tmp_files(*s.peer.store).empty());
  // Within the caps it goes through.
  pull.max_total_bytes = uint64_t{1} << 30;
  r = pull_model(*s.peer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(s.peer.store->has_blob(s.weights));
}

// A registry that serves other bytes than the digest names: the pull fails DataLoss and
// leaves neither the partial download nor the per-blob lock file behind.
TEST(PullRefusal, CorruptBlobLeavesNoPartialOrLockFile) {
  HEARTH_REQUIRE_SHARED(shared);
  Served s;
  import_model(s, shared / "models/stories260K-Q8_0.gguf");
  auto key = hearth::testing::new_key();
  s.node.sign("acme/stories:v1", key);
  s.peer.trust(key, "acme/*");
  {
    std::string bytes = *read_file(s.node.store->blob_path(s.weights));
    bytes[bytes.size() / 2] ^= 0x20;
    ASSERT_TRUE(write_file_atomic(s.node.store->blob_path(s.weights), bytes).ok());
  }
  Mirror mirror(s.node.home);
  PullOptions pull;
  pull.sources = {mirror.url()};
  pull.remote.retries = 0;
  auto r = pull_model(*s.peer.store, *store::parse_reference("acme/stories:v1"), pull);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDataLoss) << r.status().message();
  EXPECT_GT(mirror.served(), 0u);
  EXPECT_FALSE(s.peer.store->has_blob(s.weights));
  EXPECT_TRUE(tmp_files(*s.peer.store).empty());
}

// A one-request-per-connection HTTP server on loopback that answers every request with
// `response` and counts requests.
class CannedServer {
 public:
  explicit CannedServer(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 8);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0 || stop_) {
          if (c >= 0) ::close(c);
          return;
        }
        char buf[65536];
        std::string req;
        // Headers, then whatever body arrives within the first reads (uploads are small here).
        while (req.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          req.append(buf, static_cast<size_t>(n));
        }
        ++requests_;
        (void)!::send(c, response_.data(), response_.size(), MSG_NOSIGNAL);
        ::shutdown(c, SHUT_WR);
        while (::recv(c, buf, sizeof buf, 0) > 0) {
        }
        ::close(c);
      }
    });
  }
  ~CannedServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_; }

 private:
  std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

std::string redirect_to(const std::string& location) {
  return "HTTP/1.1 307 Temporary Redirect\r\nLocation: " + location +
         "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
}

TEST(Redirects, DownloadsFollowOnlyTheSameOriginUnlessAllowed) {
  CannedServer storage("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
  CannedServer registry(redirect_to(storage.url() + "/blob"));
  HttpClient http;
  HttpRequest req;
  req.url = registry.url() + "/v2/x/blobs/sha256:00";
  auto r = http.send(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("another origin"), std::string::npos) << r.status().message();
  EXPECT_EQ(storage.requests(), 0);
  req.redirects = Redirects::kAny;  // configured: the registry hands blobs to a storage host
  r = http.send(req);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(storage.requests(), 1);

  // The same origin is followed by default.
  CannedServer self(redirect_to("/elsewhere"));
  req.url = self.url() + "/start";
  req.redirects = Redirects::kSameOrigin;
  r = http.send(req);
  ASSERT_FALSE(r.ok());  // it redirects to itself forever: stopped after 5 hops
  EXPECT_NE(r.status().message().find("more than 5"), std::string::npos) << r.status().message();
  EXPECT_EQ(self.requests(), 6);
}

TEST(Redirects, UploadsNeverFollowOne) {
  CannedServer elsewhere("HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  for (const char* method : {"PUT", "PATCH", "POST"}) {
    CannedServer registry(redirect_to(elsewhere.url() + "/upload"));
    HttpClient http;
    HttpRequest req;
    req.method = method;
    req.url = registry.url() + "/v2/x/blobs/uploads/1";
    req.body = "model bytes";
    req.redirects = Redirects::kAny;  // even when downloads may go anywhere
    auto r = http.send(req);
    ASSERT_FALSE(r.ok()) << method;
    EXPECT_EQ(r.status().code(), ErrorCode::kPermissionDenied);
    EXPECT_NE(r.status().message().find("uploads never follow"), std::string::npos) << r.status().message();
    EXPECT_EQ(registry.requests(), 1);
  }
  EXPECT_EQ(elsewhere.requests(), 0);
}

TEST(Redirects, OriginComparesSchemeHostAndPort) {
  EXPECT_EQ(url_origin("http://Example.com/a"), "http://example.com:80");
  EXPECT_EQ(url_origin("http://example.com:80/b?x"), "http://example.com:80");
  EXPECT_NE(url_origin("https://example.com/a"), url_origin("http://example.com/a"));
  EXPECT_NE(url_origin("http://example.com:8080/"), url_origin("http://example.com/"));
  EXPECT_EQ(url_origin("http://user@evil.example@good.example/"), "http://good.example:80");
  EXPECT_EQ(url_origin("http://[::1]:5000/v2/"), "http://[::1]:5000");
}

// --limit-rate: four parallel ranges share one budget; the last byte of 4 x 250 bytes at
// 1000 B/s is due at 1 s, where four per-range budgets would have let it through at 0.25 s.
TEST(RateLimit, ParallelRangesShareOneBudget) {
  RatePacer pacer(1000);
  std::vector<std::thread> ranges;
  std::atomic<int64_t> latest{0};
  for (int i = 0; i < 4; ++i) {
    ranges.emplace_back([&] {
      for (int k = 0; k < 5; ++k) {
        int64_t due = pacer.reserve(50).count();
        int64_t prev = latest.load();
        while (due > prev && !latest.compare_exchange_weak(prev, due)) {
        }
      }
    });
  }
  for (auto& t : ranges) t.join();
  EXPECT_EQ(latest.load(), 1000000);  // microseconds
  EXPECT_EQ(RatePacer(0).reserve(1u << 30).count(), 0);
  // No overflow for a large model at a low rate: 1 TiB at 1 MB/s is due after 1099511.627776 s.
  EXPECT_EQ(RatePacer(1000000).reserve(uint64_t{1} << 40).count(), int64_t{1099511627776});
}

}  // namespace
}  // namespace hearth::registry
