// libFuzzer target: Tokenizer::encode over arbitrary bytes (invalid UTF-8 included) for a
// SentencePiece, two byte-level BPE (PCRE2 and explicit-range pre-tokenizers) and a WordPiece
// vocabulary. Must never crash; every id must be in range; the SentencePiece vocabulary (which
// has all 256 byte tokens) and deepseek-llm (no space clean-up) must round-trip any valid UTF-8
// input exactly (for SentencePiece: without U+2581, its own space mark, which decodes as a
// space). Invalid UTF-8 need not round-trip: like llama.cpp, SentencePiece splits symbols by
// the lead byte's length, so a bad lead byte can swallow the first byte of an escaped space.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hearth/tokenizer/utf8.h"
#include "tokenizer_fuzz_vocabs.h"

namespace {

std::vector<hearth::fuzz::FuzzVocab>& vocabs() {
  static auto v = hearth::fuzz::load_fuzz_vocabs({"llama-spm", "gpt-2", "deepseek-llm", "bert-bge"});
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vocabs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto& vs = vocabs();
  const uint8_t selector = data[0];
  const auto& v = vs[selector % vs.size()];
  const bool add_special = (selector & 0x10) != 0;
  const bool parse_special = (selector & 0x20) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  const std::vector<int32_t> ids = v.tok->encode(text, add_special, parse_special);
  for (int32_t id : ids) {
    if (id < 0 || id >= v.tok->n_vocab()) std::abort();
  }
  const std::string back = v.tok->decode(ids);
  if (!add_special && !parse_special && hearth::tokenizer::is_valid_utf8(text)) {
    const bool has_space_mark = text.find("\xE2\x96\x81") != std::string_view::npos;
    if (v.name == "llama-spm" && !has_space_mark && back != text) std::abort();
    if (v.name == "deepseek-llm" && back != text) std::abort();
  }
  return 0;
}
