// The library-free helpers of the HTTP adapter: query parameters, percent-decoding, response
// heads (no header injection), log escaping and the loopback test on resolved addresses.
#include <gtest/gtest.h>

#include "hearth/http/http_server.h"
#include "hearth/http/http_text.h"

namespace hearth::http {
namespace {

TEST(HttpMessage, QueryParametersArePercentDecoded) {
  HttpRequest r;
  r.query = "a=1&artifactType=application%2Fvnd.x%2Bjson&empty&sp=a+b";
  EXPECT_EQ(r.query_param("artifactType"), "application/vnd.x+json");
  EXPECT_EQ(r.query_param("a"), "1");
  EXPECT_EQ(r.query_param("empty"), "");
  EXPECT_EQ(r.query_param("sp"), "a b");
  EXPECT_EQ(r.query_param("missing"), std::nullopt);
}

TEST(HttpMessage, PercentDecodingKeepsInvalidEscapes) {
  EXPECT_EQ(percent_decode("/a%20b%zz%4", false), "/a b%zz%4");
  EXPECT_EQ(percent_decode("%00%1b", false), std::string("\0\x1b", 2));
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
}

TEST(HttpMessage, ResponseHeadDropsLineBreaksFromHeaderValues) {
  HttpResponse r;
  r.status = 200;
  r.headers.emplace_back("X-Evil", "a\r\nSet-Cookie: pwned");
  const std::string h = response_head(r, 5, true, "OK");
  EXPECT_EQ(h.find("\r\nSet-Cookie"), std::string::npos) << h;
  EXPECT_NE(h.find("Content-Length: 5\r\n"), std::string::npos);
  EXPECT_NE(h.find("Connection: keep-alive\r\n"), std::string::npos);
  EXPECT_NE(response_head(r, std::nullopt, false, "OK").find("Transfer-Encoding: chunked\r\n"), std::string::npos);
}

TEST(HttpMessage, LogEscapingLeavesNoControlBytes) {
  EXPECT_EQ(escape_for_log("/a b\x1b[0m\n\\\x7f\xff"), "/a\\x20b\\x1b[0m\\x0a\\x5c\\x7f\\xff");
  AccessRecord a;
  a.remote_addr = "127.0.0.1";
  a.method = "GET";
  a.path = "/x\ny";
  a.status = 404;
  const std::string line = format_access_line(a);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_NE(line.find(" 127.0.0.1 GET /x\\x0ay 404 0B 0.000s"), std::string::npos) << line;
}

TEST(HttpMessage, LoopbackIsDecidedOnTheResolvedAddress) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.3.4.5"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("127.evil.example"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("::"));
  EXPECT_FALSE(is_loopback_host(""));
}

}  // namespace
}  // namespace hearth::http
