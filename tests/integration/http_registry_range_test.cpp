// The registry server's Range handling: one `bytes=` range checked against the blob's size
// (206 with the right Content-Range and Content-Length), anything else 416 with
// `Content-Range: bytes */SIZE`. Raw requests against a real RegistryServer on loopback.
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "hearth/registry/blob_range.h"
#include "hearth/registry/registry_server.h"
#include "http_test_client.h"
#include "registry_process.h"
#include "test_nodes.h"

namespace hearth::registry {
namespace {

using hearth::http_test::exchange;
using hearth::http_test::status_of;

TEST(BlobRange, OneSatisfiableRangeOnly) {
  struct Case {
    const char* header;
    uint64_t size;
    std::optional<std::pair<uint64_t, uint64_t>> want;
  };
  const Case cases[] = {
      {"bytes=0-99", 1000, {{0, 99}}},
      {"bytes=100-", 1000, {{100, 999}}},
      {"bytes=-10", 1000, {{990, 999}}},
      {"bytes=-5000", 1000, {{0, 999}}},       // a suffix longer than the blob is all of it
      {"bytes=990-5000", 1000, {{990, 999}}},  // an end past the blob is cut
      {"bytes=999-999", 1000, {{999, 999}}},
      {"bytes=1000-", 1000, std::nullopt},  // starts at the end
      {"bytes=5000-6000", 1000, std::nullopt},
      {"bytes=5-2", 1000, std::nullopt},
      {"bytes=-0", 1000, std::nullopt},
      {"bytes=0-1,5-6", 1000, std::nullopt},  // several ranges
      {"bytes=0-0", 0, std::nullopt},         // an empty blob has no bytes to range over
      {"bytes=abc-", 1000, std::nullopt},
      {"bytes=+1-2", 1000, std::nullopt},
      {"bytes=18446744073709551616-", 1000, std::nullopt},   // 2^64: no wrap
      {"bytes=0-18446744073709551615", 1000, std::nullopt},  // 20 digits
      {"items=0-1", 1000, std::nullopt},
      {"bytes=", 1000, std::nullopt},
      {"bytes=-", 1000, std::nullopt},
  };
  for (const Case& c : cases) {
    const auto r = parse_byte_range(c.header, c.size);
    ASSERT_EQ(r.has_value(), c.want.has_value()) << c.header;
    if (r) {
      EXPECT_EQ(r->first, c.want->first) << c.header;
      EXPECT_EQ(r->last, c.want->second) << c.header;
    }
  }
}

class RegistryRange : public ::testing::Test {
 protected:
  void SetUp() override {
    auto shared = hearth::testing::shared_dir();
    if (!shared) {
      if (hearth::testing::running_in_ci()) FAIL() << "../shared is missing; it is required under CI=true";
      GTEST_SKIP() << "../shared not found (set HEARTH_SHARED)";
    }
    const auto model = *shared / "models/stories260K-Q8_0.gguf";
    node_ = std::make_unique<hearth::testing::Node>("hearth-range");
    node_->import(model, "acme/stories:v1", 1);
    bytes_ = *read_file(model.string());
    path_ = "/v2/acme/stories/blobs/" + store::sha256_of(std::string_view(bytes_)).str();
    server_ = std::make_unique<RegistryServer>(node_->home.string());
    ASSERT_TRUE(server_->bind("127.0.0.1", 0).ok());
    thread_ = std::thread([this] { (void)server_->serve(); });
    ASSERT_TRUE(hearth::testing::wait_http("http://127.0.0.1:" + std::to_string(server_->port()), 10));
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  std::string get(const std::string& range, const std::string& method = "GET") {
    std::string req = method + " " + path_ + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    if (!range.empty()) req += "Range: " + range + "\r\n";
    return exchange(server_->port(), req + "\r\n", 20);
  }
  static std::string header(const std::string& response, const std::string& name) {
    std::smatch m;
    if (!std::regex_search(response, m, std::regex("\r\n" + name + ": ([^\r]*)\r\n", std::regex::icase))) return "";
    return m[1].str();
  }
  static std::string body(const std::string& response) {
    const size_t p = response.find("\r\n\r\n");
    return p == std::string::npos ? std::string() : response.substr(p + 4);
  }

  std::unique_ptr<hearth::testing::Node> node_;
  std::unique_ptr<RegistryServer> server_;
  std::thread thread_;
  std::string bytes_, path_;
};

TEST_F(RegistryRange, ValidRangesGet206WithTheRightBytes) {
  const std::string size = std::to_string(bytes_.size());
  std::string r = get("bytes=100-199");
  EXPECT_EQ(status_of(r), 206) << r.substr(0, 300);
  EXPECT_EQ(header(r, "Content-Range"), "bytes 100-199/" + size);
  EXPECT_EQ(header(r, "Content-Length"), "100");
  EXPECT_EQ(body(r), bytes_.substr(100, 100));

  r = get("bytes=-10");
  EXPECT_EQ(status_of(r), 206);
  EXPECT_EQ(header(r, "Content-Range"),
            "bytes " + std::to_string(bytes_.size() - 10) + "-" + std::to_string(bytes_.size() - 1) + "/" + size);
  EXPECT_EQ(body(r), bytes_.substr(bytes_.size() - 10));

  r = get("bytes=" + std::to_string(bytes_.size() - 5) + "-");
  EXPECT_EQ(status_of(r), 206);
  EXPECT_EQ(header(r, "Content-Length"), "5");
  EXPECT_EQ(body(r), bytes_.substr(bytes_.size() - 5));

  r = get("");
  EXPECT_EQ(status_of(r), 200);
  EXPECT_EQ(header(r, "Content-Length"), size);
  EXPECT_EQ(body(r), bytes_);

  r = get("", "HEAD");
  EXPECT_EQ(status_of(r), 200);
  EXPECT_EQ(header(r, "Content-Length"), size);
  EXPECT_EQ(body(r), "");
}

TEST_F(RegistryRange, AnythingElseGets416WithTheSize) {
  const std::string star = "bytes */" + std::to_string(bytes_.size());
  // 7 KB of ranges: once a 300 MB response.
  std::string many = "bytes=0-" + std::to_string(bytes_.size() - 1);
  while (many.size() < 7000) many += ",0-" + std::to_string(bytes_.size() - 1);
  std::string r = get(many);
  EXPECT_EQ(status_of(r), 416) << r.substr(0, 300);
  EXPECT_EQ(header(r, "Content-Range"), star);
  EXPECT_LT(r.size(), 4096u);
  for (const std::string& bad :
       {"bytes=" + std::to_string(bytes_.size()) + "-",
        "bytes=" + std::to_string(bytes_.size() + 10) + "-" + std::to_string(bytes_.size() + 20),
        std::string("bytes=9-3"), std::string("bytes=0-1,4-5"), std::string("bytes=x")}) {
    r = get(bad);
    EXPECT_EQ(status_of(r), 416) << bad << ": " << r.substr(0, 300);
    EXPECT_EQ(header(r, "Content-Range"), star) << bad;
    EXPECT_LT(r.size(), 4096u) << bad;
  }
}

}  // namespace
}  // namespace hearth::registry
