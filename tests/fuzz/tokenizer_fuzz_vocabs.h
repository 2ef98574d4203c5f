// Shared setup for the tokenizer fuzz targets: the vocabularies they fuzz against, loaded once.
// Real vocabularies come from $HEARTH_SHARED/tokenizer-vectors (else the directory compiled in
// as HEARTH_TOKENIZER_VECTORS_DIR); when those are missing, small hand-made ones stand in so the
// targets still run.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "hearth/gguf/gguf.h"
#include "hearth/tokenizer/tokenizer.h"

namespace hearth::fuzz {

struct FuzzVocab {
  std::string name;
  std::unique_ptr<gguf::GgufModelFile> file;  // keeps the mapping alive
  std::unique_ptr<tokenizer::Tokenizer> tok;
};

inline std::filesystem::path vectors_dir() {
  if (const char* s = std::getenv("HEARTH_SHARED")) {
    return std::filesystem::path(s) / "tokenizer-vectors";
  }
#ifdef HEARTH_TOKENIZER_VECTORS_DIR
  return HEARTH_TOKENIZER_VECTORS_DIR;
#else
  return "../shared/tokenizer-vectors";
#endif
}

inline std::unique_ptr<tokenizer::Tokenizer> fallback_spm() {
  tokenizer::VocabSpec s;
  s.model = "llama";
  s.tokens = {"<unk>", "<s>", "</s>"};
  s.token_types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    s.tokens.push_back(buf);
    s.token_types.push_back(6);
  }
  for (const char* t : {"\xE2\x96\x81", "a", "b", "ab",
                        "\xE2\x96\x81"
                        "a"}) {
    s.tokens.push_back(t);
    s.token_types.push_back(1);
  }
  auto r = tokenizer::Tokenizer::create(std::move(s));
  if (!r.ok()) std::abort();
  return std::move(r).value();
}

// Loads the named vocab-only files; missing or broken ones are skipped with a message.
inline std::vector<FuzzVocab> load_fuzz_vocabs(const std::vector<std::string>& names) {
  std::vector<FuzzVocab> out;
  const auto dir = vectors_dir();
  for (const auto& name : names) {
    const auto path = dir / ("ggml-vocab-" + name + ".gguf");
    auto f = gguf::GgufModelFile::open(path.string());
    if (!f.ok()) {
      std::fprintf(stderr, "tokenizer fuzz: %s: %s (skipped)\n", path.c_str(), f.status().message().c_str());
      continue;
    }
    auto t = tokenizer::Tokenizer::from_gguf((*f)->file());
    if (!t.ok()) {
      std::fprintf(stderr, "tokenizer fuzz: %s: %s\n", path.c_str(), t.status().message().c_str());
      std::abort();  // a shipped vector file must load
    }
    out.push_back({name, std::move(f).value(), std::move(t).value()});
  }
  if (out.empty()) out.push_back({"llama-spm", nullptr, fallback_spm()});
  return out;
}

}  // namespace hearth::fuzz
