// The HTTP layer's limits, tried as an attacker would: a real `hearth serve` on loopback,
// attacked with raw sockets, every wait bounded. Its peak RSS must stay under 300 MB.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "http_test_client.h"
#include "registry_process.h"

namespace hearth::http_test {
namespace {

constexpr long kRssBudgetMiB = 300;
const std::string kKey = "sk-test-limits";

#define HEARTH_START_SERVE(var, ...)                                       \
  HEARTH_REQUIRE_SHARED(shared);                                           \
  ServeProcess var(shared / "models/stories260K-f32.gguf", {__VA_ARGS__}); \
  ASSERT_TRUE(var.ok()) << var.log()

std::string chunk(size_t n) {
  char head[32];
  std::snprintf(head, sizeof head, "%zx\r\n", n);
  return head + std::string(n, 'a') + "\r\n";
}

// Streams up to `total` bytes of chunked body after `head`, watching for an early response;
// returns what the server answered (empty if nothing before the connection closed).
std::string chunked_flood(int port, const std::string& head, size_t total, size_t* sent) {
  int fd = connect_to(port);
  EXPECT_GE(fd, 0);
  std::string response;
  *sent = 0;
  if (send_all(fd, head)) {
    const std::string c = chunk(64 << 10);
    while (*sent < total) {
      if (readable(fd, 0)) break;
      if (!send_all(fd, c)) break;
      *sent += 64 << 10;
    }
    response = recv_for(fd, 10, "\r\n\r\n");
  }
  ::close(fd);
  return response;
}

TEST(HttpLimits, ChunkedBodyWithoutKeyIsRefusedBeforeItIsRead) {
  HEARTH_START_SERVE(serve, "--api-key", kKey, "--max-body", "1");
  size_t sent = 0;
  const std::string head =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: "
      "chunked\r\n\r\n";
  const std::string r = chunked_flood(serve.port(), head, size_t{400} << 20, &sent);
  EXPECT_EQ(status_of(r), 401) << r.substr(0, 200);
  EXPECT_LT(sent, size_t{64} << 20) << "the server kept reading a body it was going to refuse";
  EXPECT_LT(serve.peak_rss_mib(), kRssBudgetMiB);
  // Still serving.
  EXPECT_EQ(status_of(exchange(serve.port(), "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")), 200);
}

TEST(HttpLimits, ChunkedBodyPastMaxBodyGets413) {
  HEARTH_START_SERVE(serve, "--api-key", kKey, "--max-body", "1");
  size_t sent = 0;
  const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kKey +
                           "\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string r = chunked_flood(serve.port(), head, size_t{400} << 20, &sent);
  EXPECT_EQ(status_of(r), 413) << r.substr(0, 200);
  EXPECT_LT(sent, size_t{64} << 20);
  EXPECT_LT(serve.peak_rss_mib(), kRssBudgetMiB);
}

TEST(HttpLimits, KeyIsCheckedBeforeTheBodyAndExpectContinueWorks) {
  HEARTH_START_SERVE(serve, "--api-key", kKey, "--max-body", "64");
  // A declared 48 MiB body, none of it sent: the 401 must come without waiting for it.
  int fd = connect_to(serve.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50331648\r\n\r\n"));
  const std::string r = recv_for(fd, 5, "\r\n\r\n");
  ::close(fd);
  EXPECT_EQ(status_of(r), 401) << r;

  // With a key and Expect: 100-continue the client is told to go on, then answered.
  const std::string body = R"({"content":"Once upon a time"})";
  fd = connect_to(serve.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "POST /tokenize HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kKey +
                               "\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) +
                               "\r\n\r\n"));
  const std::string cont = recv_for(fd, 5, "\r\n\r\n");
  EXPECT_EQ(status_of(cont), 100) << cont;
  ASSERT_TRUE(send_all(fd, body));
  const std::string ok = recv_for(fd, 10, "]}");
  ::close(fd);
  EXPECT_EQ(status_of(ok), 200) << ok;
  EXPECT_NE(ok.find("\"tokens\""), std::string::npos) << ok;
}

TEST(HttpLimits, CompressedBodyGets415) {
  HEARTH_START_SERVE(serve);
  // gzip of {"content":"hello gzip"}: never decompressed.
  const unsigned char gz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xab, 0x56, 0x4a, 0xce, 0xcf,
                              0x2b, 0x49, 0xcd, 0x2b, 0x51, 0xb2, 0x52, 0xca, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0x48, 0xaf,
                              0xca, 0x2c, 0x50, 0xaa, 0x05, 0x00, 0x4a, 0x60, 0x45, 0xa7, 0x18, 0x00, 0x00, 0x00};
  const std::string body(reinterpret_cast<const char*>(gz), sizeof gz);
  for (const char* encoding : {"gzip", "br", "deflate"}) {
    const std::string r =
        exchange(serve.port(), std::string("POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Encoding: ") + encoding +
                                   "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_EQ(status_of(r), 415) << encoding << ": " << r;
  }
}

TEST(HttpLimits, TooManyOrTooLargeHeadersGet431) {
  HEARTH_START_SERVE(serve, "--max-headers", "50", "--max-header-bytes", "8192");
  std::string many = "GET /health HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 500; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(status_of(exchange(serve.port(), many + "\r\n")), 431);
  const std::string big = "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 << 10, 'b') + "\r\n\r\n";
  EXPECT_EQ(status_of(exchange(serve.port(), big)), 431);
  // A header flood far past the cap costs nothing.
  int fd = connect_to(serve.port());
  ASSERT_GE(fd, 0);
  size_t sent = 0;
  if (send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\n")) {
    const std::string line = "X-Flood: " + std::string(1000, 'f') + "\r\n";
    std::string block;
    for (int i = 0; i < 64; ++i) block += line;
    while (sent < (size_t{200} << 20) && !readable(fd, 0) && send_all(fd, block)) sent += block.size();
  }
  const std::string r = recv_for(fd, 5, "\r\n\r\n");
  ::close(fd);
  EXPECT_EQ(status_of(r), 431) << r.substr(0, 200);
  EXPECT_LT(sent, size_t{64} << 20);
  EXPECT_EQ(status_of(exchange(serve.port(), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")), 200);
  EXPECT_LT(serve.peak_rss_mib(), kRssBudgetMiB);
}

TEST(HttpLimits, SlowlorisNeitherStarvesOthersNorExceedsThePerClientCap) {
  // The attacker is 127.0.0.2, the honest client 127.0.0.1: two client addresses on loopback.
  HEARTH_START_SERVE(serve, "--max-connections-per-client", "8", "--request-timeout", "60", "--workers", "4");
  constexpr int kAttackers = 40;
  std::vector<int> fds;
  for (int i = 0; i < kAttackers; ++i) {
    const int fd = connect_to(serve.port(), "127.0.0.2");
    ASSERT_GE(fd, 0) << "cannot connect from 127.0.0.2";
    send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\n");
    fds.push_back(fd);
  }
  // Dribble one header byte per connection for a while, as slowloris does.
  for (int round = 0; round < 5; ++round) {
    for (int fd : fds) send_all(fd, "X");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string r = exchange(serve.port(), "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5);
  EXPECT_EQ(status_of(r), 200) << "an honest request was starved by slow connections: " << r;
  int refused = 0, held = 0;
  for (int fd : fds) {
    const std::string got = recv_for(fd, 0.3);
    if (status_of(got) == 503 || (readable(fd, 0) && got.empty())) {
      ++refused;
    } else if (got.empty()) {
      ++held;
    }
    ::close(fd);
  }
  EXPECT_EQ(held, 8) << "connections kept open for one client";
  EXPECT_EQ(refused, kAttackers - 8);
  EXPECT_LT(serve.peak_rss_mib(), kRssBudgetMiB);
}

TEST(HttpLimits, ARequestDribbledPastTheDeadlineGets408) {
  HEARTH_START_SERVE(serve, "--request-timeout", "1");
  int fd = connect_to(serve.port());
  ASSERT_GE(fd, 0);
  // One header byte every 200 ms: each read is quick, the request as a whole is not.
  std::string got;
  send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\n");
  for (int i = 0; i < 50 && got.empty(); ++i) {
    send_all(fd, "X");
    got = recv_for(fd, 0.2);
  }
  ::close(fd);
  EXPECT_EQ(status_of(got), 408) << got;
}

TEST(HttpLimits, AnIdleKeptAliveConnectionIsClosed) {
  HEARTH_START_SERVE(serve, "--idle-timeout", "1");
  int fd = connect_to(serve.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string first = recv_for(fd, 5, "\"ok\"}");
  EXPECT_EQ(status_of(first), 200) << first;
  EXPECT_NE(first.find("Connection: keep-alive"), std::string::npos) << first;
  // Kept alive: a second request on the same connection is served.
  ASSERT_TRUE(send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(status_of(recv_for(fd, 5, "\"ok\"}")), 200);
  // Then silence: the server closes it after --idle-timeout (no response, end of stream).
  ASSERT_TRUE(readable(fd, 10000)) << "an idle connection was kept past --idle-timeout";
  char c;
  EXPECT_LE(::recv(fd, &c, 1, 0), 0);
  ::close(fd);
}

TEST(HttpLimits, TlsHandshakeFallsUnderTheDeadlineAndTheConnectionCaps) {
  if (std::system("openssl version >/dev/null 2>&1") != 0) {
    if (hearth::testing::running_in_ci()) FAIL() << "openssl is required under CI=true";
    GTEST_SKIP() << "openssl not installed";
  }
  const auto dir = hearth::testing::make_temp_dir("hearth-http-tls");
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  ASSERT_EQ(std::system(("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
                         " -days 1 -subj /CN=127.0.0.1 >/dev/null 2>&1")
                            .c_str()),
            0);
  HEARTH_REQUIRE_SHARED(shared);
  ServeProcess serve(
      shared / "models/stories260K-f32.gguf",
      {"--tls-cert", cert, "--tls-key", key, "--request-timeout", "3", "--max-connections-per-client", "4"},
      /*tls=*/true);
  ASSERT_TRUE(serve.ok()) << serve.log();
  // Connections that never start their handshake: the first 4 are held until the deadline, the
  // rest are closed at once.
  std::vector<int> fds;
  for (int i = 0; i < 10; ++i) fds.push_back(connect_to(serve.port(), "127.0.0.2"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int closed_at_once = 0;
  for (int fd : fds) {
    ASSERT_GE(fd, 0);
    if (readable(fd, 0) && recv_for(fd, 0.01).empty()) ++closed_at_once;
  }
  EXPECT_EQ(closed_at_once, 6);
  int closed_by_deadline = 0;
  for (int fd : fds) {
    if (readable(fd, 10000) && recv_for(fd, 0.1).empty()) ++closed_by_deadline;
    ::close(fd);
  }
  EXPECT_EQ(closed_by_deadline, 10) << "a silent TLS connection outlived --request-timeout";
  std::filesystem::remove_all(dir);
}

TEST(HttpLimits, SecondServeOnTheSamePortExitsWithAClearError) {
  HEARTH_REQUIRE_SHARED(shared);
  const int port = hearth::testing::free_port();
  const auto model = shared / "models/stories260K-f32.gguf";
  const auto dir = hearth::testing::make_temp_dir("hearth-http-port");
  const pid_t first = ServeProcess::spawn({HEARTH_CLI_PATH, "serve", model.string(), "--port", std::to_string(port)},
                                          dir / "first.log");
  bool up = false;
  for (int i = 0; i < 600 && !up; ++i) {
    up = status_of(exchange(port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 1)) == 200;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(up) << read_text(dir / "first.log");
  const pid_t second = ServeProcess::spawn({HEARTH_CLI_PATH, "serve", model.string(), "--port", std::to_string(port)},
                                           dir / "second.log");
  const int code = ServeProcess::wait_exit_code(second, 30);
  const std::string log = read_text(dir / "second.log");
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(code, -1) << "the second server kept running on a port already in use:\n" << log;
  EXPECT_NE(log.find("cannot listen on 127.0.0.1:" + std::to_string(port) + ": address already in use"),
            std::string::npos)
      << log;
  ::kill(first, SIGTERM);
  EXPECT_EQ(ServeProcess::wait_exit_code(first, 10), 0);
  std::filesystem::remove_all(dir);
}

TEST(HttpLimits, NameThatOnlyLooksLoopbackNeedsAKey) {
  HEARTH_REQUIRE_SHARED(shared);
  const auto dir = hearth::testing::make_temp_dir("hearth-http-host");
  const pid_t pid = ServeProcess::spawn({HEARTH_CLI_PATH, "serve", (shared / "models/stories260K-f32.gguf").string(),
                                         "--host", "127.evil.example", "--port", "0"},
                                        dir / "serve.log");
  const int code = ServeProcess::wait_exit_code(pid, 60);
  const std::string log = read_text(dir / "serve.log");
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(code, -1) << log;
  EXPECT_NE(log.find("refusing to listen on 127.evil.example (not a loopback address)"), std::string::npos) << log;
  std::filesystem::remove_all(dir);
}

TEST(HttpLimits, AccessLogEscapesControlBytesAndHasTheFields) {
  HEARTH_START_SERVE(serve);
  const std::string r = exchange(serve.port(), "GET /x%1b%5b31mRED%0aFAKE-LINE%07%ff HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(r), 404) << r;
  serve.stop();
  const std::string log = serve.log();
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << "a raw escape byte reached the log";
  EXPECT_EQ(log.find('\x07'), std::string::npos);
  EXPECT_EQ(log.find("\nFAKE-LINE"), std::string::npos) << "a request forged a log line";
  std::smatch m;
  EXPECT_TRUE(
      std::regex_search(log, m,
                        std::regex("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z 127\\.0\\.0\\.1 GET "
                                   "/x\\\\x1b\\[31mRED\\\\x0aFAKE-LINE\\\\x07\\\\xff 404 \\d+B \\d+\\.\\d{3}s")))
      << log;
}

TEST(HttpLimits, FormEncodedLongBodyReachesTheJsonHandler) {
  HEARTH_START_SERVE(serve);
  std::string text;
  while (text.size() < 12000) text += "Once upon a time ";
  const std::string body = R"({"content":")" + text + R"("})";
  const std::string r = exchange(serve.port(),
                                 "POST /tokenize HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: "
                                 "application/x-www-form-urlencoded\r\nContent-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(status_of(r), 200) << r.substr(0, 300);
  EXPECT_NE(r.find("\"tokens\""), std::string::npos);
}

}  // namespace
}  // namespace hearth::http_test
