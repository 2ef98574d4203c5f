#include <gtest/gtest.h>

#include "hearth/store/reference.h"

namespace hearth::store {
namespace {

TEST(Reference, ParsesTagsPinsAndDefaults) {
  auto r = parse_reference("acme/stories:v1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name, "acme/stories");
  EXPECT_EQ(r->tag, "v1");
  EXPECT_FALSE(r->pinned());

  r = parse_reference("stories");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tag, "latest");

  const std::string d = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  r = parse_reference("acme/stories@" + d);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->pinned());
  EXPECT_EQ(r->digest.str(), d);
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->to_string(), "acme/stories@" + d);
}

TEST(Reference, RefusesBadNamesTagsAndDigests) {
  for (const char* s : {"../etc", "acme/../x", "Acme/x", "acme//x", "/acme", "acme/", "a..b", "-a", "a-", "a:", "a:-x",
                        "a@sha256:../../x", "a@sha256:ABC", "a b", ""}) {
    auto r = parse_reference(s);
    EXPECT_FALSE(r.ok()) << s;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << s;
    }
  }
  EXPECT_TRUE(is_valid_name("a.b_c__d--e/f-g"));
  EXPECT_FALSE(is_valid_name("a___b"));
  EXPECT_FALSE(is_valid_name(std::string(256, 'a')));
  EXPECT_FALSE(is_valid_tag(std::string(129, 'a')));
}

TEST(Reference, NamePatterns) {
  EXPECT_TRUE(name_matches("acme/*", "acme/stories"));
  EXPECT_FALSE(name_matches("acme/*", "acme/team/stories"));
  EXPECT_TRUE(name_matches("acme/**", "acme/team/stories"));
  EXPECT_FALSE(name_matches("acme/*", "acmex/stories"));
  EXPECT_TRUE(name_matches("acme/stories-?", "acme/stories-2"));
  EXPECT_TRUE(name_matches("acme/stories", "acme/stories"));
  EXPECT_FALSE(name_matches("acme/stories", "acme/stories2"));
}

}  // namespace
}  // namespace hearth::store
