// Reading a training corpus: clear errors for empty and non-UTF-8 input, held-out paragraphs,
// files reached twice read once; the unigram baseline; the demo's generated stories.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "hearth/train/corpus.h"
#include "hearth/train/story_grammar.h"
#include "shared_data.h"

namespace hearth::train {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

TEST(Corpus, EmptyCorpusIsAClearError) {
  const auto dir = testing::make_temp_dir("hearth-corpus");
  write(dir / "a.txt", "");
  write(dir / "b.txt", "\n\n  \n");
  auto c = read_corpus({dir.string()}, 0.05);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("the corpus is empty"), std::string::npos) << c.status().message();
  auto missing = read_corpus({(dir / "nope.txt").string()}, 0.05);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no such file"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Corpus, NonUtf8TextNamesTheFileAndOffset) {
  const auto dir = testing::make_temp_dir("hearth-corpus");
  write(dir / "latin1.txt", "caf\xE9 au lait\n");
  auto c = read_corpus({(dir / "latin1.txt").string()}, 0.05);
  ASSERT_FALSE(c.ok());
  const std::string m = c.status().message();
  EXPECT_NE(m.find("latin1.txt: not UTF-8 text (invalid byte 0xE9 at offset 3)"), std::string::npos) << m;
  fs::remove_all(dir);
}

TEST(Corpus, HoldsOutEveryKthParagraphAndReadsALinkedFileOnce) {
  const auto dir = testing::make_temp_dir("hearth-corpus");
  std::string text;
  for (int i = 0; i < 20; ++i) text += "paragraph " + std::to_string(i) + "\n\n";
  write(dir / "a.txt", text);
  fs::create_symlink(dir / "a.txt", dir / "link.txt");
  auto c = read_corpus({dir.string(), (dir / "a.txt").string()}, 0.1);
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->sources.size(), 1u);
  EXPECT_EQ(c->eval[0], "paragraph 5\n\nparagraph 15\n\n");
  EXPECT_EQ(c->train[0].find("paragraph 5\n"), std::string::npos);
  EXPECT_NE(c->train[0].find("paragraph 6\n"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Corpus, UnigramBaseline) {
  // Uniform training counts over 4 tokens (with add-one smoothing): perplexity 4.
  const std::vector<int32_t> train = {0, 1, 2, 3, 0, 1, 2, 3};
  EXPECT_NEAR(unigram_perplexity(train, {0, 1, 2, 3, 2}, 4), 4.0, 1e-9);
}

TEST(StoryGrammar, SeededStoriesInThePlainChatFormat) {
  const std::string a = generate_stories(50, 7);
  EXPECT_EQ(a, generate_stories(50, 7));
  EXPECT_NE(a, generate_stories(50, 8));
  size_t users = 0, answers = 0;
  for (size_t p = 0; (p = a.find("User: ", p)) != std::string::npos; ++p) ++users;
  for (size_t p = 0; (p = a.find("\n\nAssistant: Once upon a time, there was a ", p)) != std::string::npos; ++p)
    ++answers;
  EXPECT_EQ(users, 50u);
  EXPECT_EQ(answers, 50u);
  EXPECT_TRUE(a.ends_with(" The end.\n\n"));
}

}  // namespace
}  // namespace hearth::train
