// `hearth train` as a user runs it: one clear error line for bad corpora; a small run that
// prints its held-out perplexity and unigram baseline and whose model `hearth run` loads; a run
// stopped and resumed from its checkpoint writes the same model file, byte for byte.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "cli_helpers.h"

namespace hearth::cli_test {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(CliTrain, BadCorporaGiveOneClearError) {
  const fs::path dir = testing::make_temp_dir("hearth-cli-train");
  std::ofstream(dir / "empty.txt") << "";
  std::ofstream(dir / "latin1.txt", std::ios::binary) << "caf\xE9\n";
  std::ofstream(dir / "small.txt") << "only a few words here\n";
  const std::string out = " --out " + (dir / "m.gguf").string();
  const std::pair<std::string, std::string> cases[] = {
      {"empty.txt", "the corpus is empty"},
      {"latin1.txt", "not UTF-8 text (invalid byte 0xE9 at offset 3)"},
      {"small.txt", "fewer than one batch"},
  };
  for (const auto& [file, message] : cases) {
    const Output o = run("train --corpus " + (dir / file).string() + out);
    EXPECT_EQ(o.exit_code, 2) << file << ": " << o.err;
    EXPECT_EQ(count_error_lines(o.err), 1) << o.err;
    EXPECT_NE(o.err.find(message), std::string::npos) << o.err;
  }
  EXPECT_FALSE(fs::exists(dir / "m.gguf"));
  fs::remove_all(dir);
}

TEST(CliTrain, SmallRunReportsPerplexityAndResumeWritesTheSameModel) {
  const fs::path dir = testing::make_temp_dir("hearth-cli-train");
  const std::string common =
      "train --stories 150 --preset nano --ctx 32 --batch 4 --steps 12 --seed 3 -t 2 --sample-tokens 8 ";
  const Output full = run(common + "--out " + (dir / "a.gguf").string());
  ASSERT_EQ(full.exit_code, 0) << full.err;
  EXPECT_NE(full.out.find("held-out perplexity: "), std::string::npos) << full.out;
  EXPECT_NE(full.out.find("unigram baseline: "), std::string::npos) << full.out;
  EXPECT_NE(full.out.find("sample: The"), std::string::npos) << full.out;
  EXPECT_NE(full.err.find("step     12/12 | train loss "), std::string::npos) << full.err;

  const std::string ckpt = (dir / "b.ckpt").string();
  const Output first = run(common + "--stop-after 5 --checkpoint " + ckpt + " --out " + (dir / "b.gguf").string());
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const Output rest = run(common + "--resume " + ckpt + " --out " + (dir / "b.gguf").string());
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_NE(rest.err.find("resuming " + ckpt + " at step 5 of 12"), std::string::npos) << rest.err;
  EXPECT_EQ(slurp(dir / "a.gguf"), slurp(dir / "b.gguf")) << "the resumed run differs";

  const Output gen = run("run " + (dir / "a.gguf").string() + " -p Once -n 4 --temp 0");
  EXPECT_EQ(gen.exit_code, 0) << gen.err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hearth::cli_test
