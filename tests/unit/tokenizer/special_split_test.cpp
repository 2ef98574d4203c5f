// Splitting around special tokens written in the text.
#include <gtest/gtest.h>

#include "hearth/tokenizer/special_split.h"
#include "test_vocab.h"

namespace hearth::tokenizer {
namespace {

using testing::make;
using Ids = std::vector<int32_t>;

VocabSpec special_spec() {
  VocabSpec s = testing::spm_spec({{"\xE2\x96\x81", -1}, {"a", -1}});  // 259 ▁, 260 a
  auto add = [&](const char* text, int32_t type) {
    s.tokens.push_back(text);
    s.token_types.push_back(type);
    s.scores.push_back(0);
  };
  add("<x>", 3);     // 261 control
  add("<x><y>", 3);  // 262 control, longer
  add("<tool>", 4);  // 263 user-defined
  return s;
}

std::string describe(const std::vector<TextFragment>& frags, std::string_view text) {
  std::string out;
  for (const auto& f : frags) {
    out +=
        f.token != kNoToken ? "#" + std::to_string(f.token) : "'" + std::string(text.substr(f.offset, f.length)) + "'";
    out += ' ';
  }
  return out;
}

TEST(SpecialSplit, LongestTokenFirst) {
  auto v = Vocab::build(special_spec());
  ASSERT_TRUE(v.ok());
  const std::string text = "a<x><y>a<x>";
  // <x><y> (6 bytes) is tried before <x>; then <x> splits what is left.
  EXPECT_EQ(describe(split_special_tokens(*v, text, true), text), "'a' #262 'a' #261 ");
  // Without parse_special only user-defined tokens split.
  EXPECT_EQ(describe(split_special_tokens(*v, text, false), text), "'a<x><y>a<x>' ");
  const std::string t2 = "<tool>a<tool>";
  EXPECT_EQ(describe(split_special_tokens(*v, t2, false), t2), "#263 'a' #263 ");
  EXPECT_TRUE(split_special_tokens(*v, "", true).empty());
}

TEST(SpecialSplit, EncodeUsesIt) {
  auto tok = make(special_spec());
  ASSERT_TRUE(tok);
  // User-defined tokens match even without parse_special; the text after them gets the
  // SentencePiece space prefix again.
  EXPECT_EQ(tok->encode("<tool>a", false, false), (Ids{263, 259, 260}));
  EXPECT_EQ(tok->encode("<x>", false, true), (Ids{261}));
  // User-defined tokens render without render_special; control tokens do not.
  EXPECT_EQ(tok->token_to_piece(263), "<tool>");
  EXPECT_EQ(tok->token_to_piece(261), "");
}

}  // namespace
}  // namespace hearth::tokenizer
