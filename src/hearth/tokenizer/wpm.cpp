#include "hearth/tokenizer/wpm.h"

#include <algorithm>

#include "hearth/tokenizer/unicode_props.h"
#include "hearth/tokenizer/utf8.h"

namespace hearth::tokenizer {
namespace {

// BERT's _is_chinese_char ranges (the CJK Unified Ideographs blocks); the 0x2B920 start
// follows the Hugging Face Rust implementation, as llama.cpp does.
bool is_chinese_char(uint32_t cp) {
  return (cp >= 0x04E00 && cp <= 0x09FFF) || (cp >= 0x03400 && cp <= 0x04DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0x0F900 && cp <= 0x0FAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

constexpr std::string_view kWordPrefix = "\xE2\x96\x81";  // U+2581

}  // namespace

std::vector<std::string> wpm_preprocess(std::string_view text) {
  std::vector<std::string> words(1);
  for (uint32_t cp : decode_utf8_lenient(text)) {
    cp = nfd_first(cp);
    const CodepointFlags f = codepoint_flags(cp);
    if (f.whitespace) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (cp == 0 || cp == kReplacementChar || f.control || f.accent_mark) continue;
    const std::string s = encode_utf8(to_lower(cp));
    if (f.punctuation || (cp < 0x7F && f.symbol) || is_chinese_char(cp)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = s;
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

void wpm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
  const size_t max_len = vocab.max_token_len();
  for (const std::string& word : wpm_preprocess(text)) {
    if (word.empty()) continue;
    const std::string w = std::string(kWordPrefix) + word;
    const size_t n = w.size();
    const size_t start_size = out.size();
    for (size_t i = 0; i < n;) {
      bool matched = false;
      for (size_t j = std::min(n, i + max_len + 1); j > i; --j) {
        const int32_t id = vocab.text_to_token(std::string_view(w).substr(i, j - i));
        if (id != kNoToken) {
          out.push_back(id);
          matched = true;
          i = j;
          break;
        }
      }
      if (!matched) {  // the rest of the word has no piece: the whole word is unknown
        out.resize(start_size);
        break;
      }
    }
    if (out.size() == start_size && vocab.unk() != kNoToken) out.push_back(vocab.unk());
  }
}

}  // namespace hearth::tokenizer
