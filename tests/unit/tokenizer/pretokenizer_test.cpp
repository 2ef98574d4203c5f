// Pre-tokenizer splits, expectations derived by hand from the regex semantics.
#include <gtest/gtest.h>

#include "hearth/tokenizer/pretokenizer.h"
#include "hearth/tokenizer/pretokenizer_patterns.h"

namespace hearth::tokenizer {
namespace {

using Words = std::vector<std::string>;

std::unique_ptr<PreTokenizer> for_pre(std::string_view pre) {
  auto config = pretokenizer_config(pre);
  EXPECT_TRUE(config.ok()) << pre;
  auto pt = PreTokenizer::create(config->patterns);
  EXPECT_TRUE(pt.ok()) << pt.status().to_string();
  return std::move(pt).value();
}

TEST(PreTokenizer, Gpt2) {
  auto pt = for_pre("gpt-2");
  // " ?\p{L}+" words; before "!!" two spaces: "\s+(?!\S)" takes one, " ?[^\s\p{L}\p{N}]+"
  // takes " !!"; contractions split off; digits with their space.
  EXPECT_EQ(pt->split("Hello world  !! it's 42"), (Words{"Hello", " world", " ", " !!", " it", "'s", " 42"}));
  // A trailing whitespace run is one word. Before a letter, "\s+(?!\S)" leaves the last
  // whitespace out, and that lone "\n" is then matched by "\s+".
  EXPECT_EQ(pt->split("a  "), (Words{"a", "  "}));
  EXPECT_EQ(pt->split("\n\na"), (Words{"\n", "\n", "a"}));
  EXPECT_EQ(pt->split(""), (Words{}));
}

TEST(PreTokenizer, Llama3) {
  auto pt = for_pre("llama3");
  // Digits in groups of three; a non-letter prefix joins a letter run; newlines with the
  // whitespace before them; case-insensitive contractions.
  EXPECT_EQ(pt->split("12345 x\n\n y'S"), (Words{"123", "45", " x", "\n\n", " y", "'S"}));
  EXPECT_EQ(pt->split("$abc"), (Words{"$abc"}));
}

TEST(PreTokenizer, Qwen2) {
  auto pt = for_pre("qwen2");
  // Single digits; the space before a digit is matched alone by "\s+" (the other branches
  // need a letter, a non-space symbol or a newline after it).
  EXPECT_EQ(pt->split("x 12\n"), (Words{"x", " ", "1", "2", "\n"}));
}

TEST(PreTokenizer, SequentialPatternsKeepGaps) {
  // One pattern: matches and the gaps between them are all words.
  const std::string_view three_digits[] = {"[0-9][0-9][0-9]"};
  auto pt = PreTokenizer::create(three_digits);
  ASSERT_TRUE(pt.ok());
  EXPECT_EQ((*pt)->split("a12345b"), (Words{"a", "123", "45b"}));
  // A second pattern refines each fragment on its own, and "$" sees the end of the
  // fragment: "bb123" -> "bb" "123" -> "b$" splits "bb" into "b" "b".
  const std::string_view two[] = {"[0-9][0-9][0-9]", "b$"};
  auto pt2 = PreTokenizer::create(two);
  ASSERT_TRUE(pt2.ok());
  EXPECT_EQ((*pt2)->split("bb123"), (Words{"b", "b", "123"}));
}

TEST(PreTokenizer, NonAsciiWhitespaceInExplicitRanges) {
  // Patterns without \p{..} see non-ASCII whitespace as U+000B (the reference's wregex path):
  // U+3000 is inside the range [　-。] but does not match it.
  const std::string_view punct[] = {"[　-。]+"};
  auto pt = PreTokenizer::create(punct);
  ASSERT_TRUE(pt.ok());
  EXPECT_EQ((*pt)->split("a\xE3\x80\x80\xE3\x80\x81"
                         "b"),  // a, U+3000, U+3001, b
            (Words{"a\xE3\x80\x80", "\xE3\x80\x81", "b"}));
}

TEST(PreTokenizer, InvalidUtf8ReadsAsReplacementCharacters) {
  auto pt = for_pre("gpt-2");
  // 0xFF is not UTF-8: it becomes U+FFFD (a symbol), which joins the following "!" run.
  EXPECT_EQ(pt->split("a\xFF!"), (Words{"a", "\xEF\xBF\xBD!"}));
}

TEST(PreTokenizer, KnownNames) {
  for (std::string_view pre :
       {"default",   "gpt-2",       "llama3", "llama-bpe", "qwen2",     "deepseek-llm", "deepseek-coder", "deepseek-v3",
        "starcoder", "falcon",      "mpt",    "refact",    "command-r", "stablelm2",    "poro-chat",      "viking",
        "bloom",     "chatglm-bpe", "smollm", "olmo",      "jais",      "dbrx"}) {
    auto config = pretokenizer_config(pre);
    ASSERT_TRUE(config.ok()) << pre;
    auto pt = PreTokenizer::create(config->patterns);
    EXPECT_TRUE(pt.ok()) << pre << ": " << pt.status().to_string();
  }
  EXPECT_FALSE(pretokenizer_config("nope").ok());
}

}  // namespace
}  // namespace hearth::tokenizer
