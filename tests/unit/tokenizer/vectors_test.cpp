// Real vocabularies from ../shared: the llama.cpp tokenizer test vectors (every string must
// tokenize to exactly the expected ids, no BOS, special tokens not parsed), the stories260K
// prompts from the reference outputs, and round trips on the SPM and BPE vocabularies.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "hearth/gguf/gguf.h"
#include "hearth/tokenizer/tokenizer.h"
#include "shared_data.h"

namespace hearth::tokenizer {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Loaded {
  std::unique_ptr<gguf::GgufModelFile> file;
  std::unique_ptr<Tokenizer> tok;
};

Loaded load(const fs::path& path) {
  Loaded l;
  auto f = gguf::GgufModelFile::open(path.string());
  EXPECT_TRUE(f.ok()) << f.status().to_string();
  if (!f.ok()) return l;
  l.file = std::move(f).value();
  auto t = Tokenizer::from_gguf(l.file->file());
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  if (t.ok()) l.tok = std::move(t).value();
  return l;
}

std::vector<std::string> split_inputs(const std::string& inp) {
  static const std::string kSep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t next = inp.find(kSep, pos);
    if (next == std::string::npos) break;
    out.push_back(inp.substr(pos, next - pos));
    pos = next + kSep.size();
  }
  return out;
}

Ids parse_ids(const std::string& line) {
  Ids ids;
  std::istringstream ss(line);
  int64_t v;
  while (ss >> v) ids.push_back(static_cast<int32_t>(v));
  return ids;
}

std::string ids_str(const Ids& ids) {
  std::string s;
  for (int32_t id : ids) s += " " + std::to_string(id);
  return s;
}

class VocabVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabVectors, AllStringsMatch) {
  HEARTH_REQUIRE_SHARED(shared);
  const std::string name = GetParam();
  const fs::path dir = shared / "tokenizer-vectors";
  const fs::path gguf_path = dir / ("ggml-vocab-" + name + ".gguf");
  Loaded l = load(gguf_path);
  ASSERT_TRUE(l.tok);
  const std::vector<std::string> inputs = split_inputs(read_all(gguf_path.string() + ".inp"));
  std::vector<std::string> lines;
  {
    std::istringstream out(read_all(gguf_path.string() + ".out"));
    std::string line;
    while (std::getline(out, line)) lines.push_back(line);
  }
  ASSERT_EQ(inputs.size(), lines.size()) << name;
  size_t passed = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Ids expected = parse_ids(lines[i]);
    const Ids got = l.tok->encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    if (got == expected) {
      ++passed;
    } else {
      ADD_FAILURE() << name << " #" << i << " '" << inputs[i] << "'\n  expected:" << ids_str(expected)
                    << "\n  got:     " << ids_str(got);
    }
  }
  std::printf("[ vectors  ] %s: %zu/%zu passed\n", name.c_str(), passed, inputs.size());
  EXPECT_EQ(passed, inputs.size());
}

INSTANTIATE_TEST_SUITE_P(Shared, VocabVectors,
                         ::testing::Values("llama-spm", "gpt-2", "deepseek-llm", "falcon", "starcoder", "bert-bge",
                                           "gpt2-pre-llama-bpe", "gpt2-pre-qwen2", "gpt2-pre-gpt-4o"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

TEST(Stories260K, OnceUponATime) {
  HEARTH_REQUIRE_SHARED(shared);
  Loaded l = load(shared / "models" / "stories260K-f32.gguf");
  ASSERT_TRUE(l.tok);
  // shared/reference/README.md: "Once upon a time" -> [1, 403, 407, 261, 378] with BOS.
  EXPECT_EQ(l.tok->encode("Once upon a time", true, false), (Ids{1, 403, 407, 261, 378}));
  EXPECT_EQ(l.tok->n_vocab(), 512);
  EXPECT_EQ(l.tok->bos(), 1);
  EXPECT_EQ(l.tok->eos(), 2);
  EXPECT_TRUE(l.tok->is_eog(2));
}

// Every text case in shared/reference: the prompt ids, and the generated text, which the
// reference detokenized with llama_detokenize (first piece's leading space dropped); cases
// whose text the reference marks lossy with U+FFFD are skipped.
TEST(Stories260K, ReferencePromptsAndGeneratedText) {
  HEARTH_REQUIRE_SHARED(shared);
  Loaded l = load(shared / "models" / "stories260K-f32.gguf");
  ASSERT_TRUE(l.tok);
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(shared / "reference")) {
    const std::string fname = entry.path().filename().string();
    if (fname.rfind("stories260K-f32__", 0) != 0 || entry.path().extension() != ".json") continue;
    const auto j = nlohmann::json::parse(read_all(entry.path()));
    if (j["prompt"].is_null()) continue;
    const Ids expected = j["prompt_ids"].get<Ids>();
    EXPECT_EQ(l.tok->encode(j["prompt"].get<std::string>(), true, false), expected) << fname;
    const Ids gen = j["generated_ids"].get<Ids>();
    const std::string text = j["generated_text"].get<std::string>();
    if (text.find("\xEF\xBF\xBD") == std::string::npos) {
      EXPECT_EQ(l.tok->decode(gen), text) << fname;
    }
    ++checked;
  }
  EXPECT_GE(checked, 3);
}

const char* const kRoundTrip[] = {
    "Hello world",
    " leading space and trailing space ",
    "two  spaces\tand a tab\nand a newline\n\n",
    "caf\xC3\xA9 na\xC3\xAFve \xC3\x84pfel",
    "\xE6\x88\x91\xE6\x83\xB3\xE5\x9C\xA8"
    "apple\xE5\xB7\xA5\xE4\xBD\x9C",
    "emoji \xF0\x9F\xA6\x99 and \xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F",
    "\xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE \xD0\xBD\xD0\xB0 \xD0\x91\xD1\x8A\xD0\xBB\xD0\xB3",
    "code: for (int i = 0; i < n; ++i) { x[i] = y[i]*2; }",
    "numbers 1234567 3.14159",
};

class RoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(RoundTrip, DecodeOfEncodeIsIdentity) {
  HEARTH_REQUIRE_SHARED(shared);
  const std::string name = GetParam();
  Loaded l = load(shared / "tokenizer-vectors" / ("ggml-vocab-" + name + ".gguf"));
  ASSERT_TRUE(l.tok);
  for (const char* text : kRoundTrip) {
    const Ids ids = l.tok->encode(text, false, false);
    EXPECT_EQ(l.tok->decode(ids), text) << name << ": ids" << ids_str(ids);
  }
}

INSTANTIATE_TEST_SUITE_P(Shared, RoundTrip, ::testing::Values("llama-spm", "gpt-2", "deepseek-llm", "starcoder"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace hearth::tokenizer
