#include "hearth/tokenizer/special_split.h"

namespace hearth::tokenizer {

std::vector<TextFragment> split_special_tokens(const Vocab& vocab, std::string_view text, bool parse_special) {
  std::vector<TextFragment> frags;
  if (text.empty()) return frags;
  frags.push_back({kNoToken, 0, text.size()});
  std::vector<TextFragment> next;
  for (const int32_t id : vocab.special_tokens()) {
    const TokenData& t = vocab.token(id);
    if (!parse_special && (t.attrs & (attr::kControl | attr::kUnknown))) continue;
    const std::string_view needle = t.text;
    // Fragments only shrink, so a token absent from the whole input is absent everywhere.
    if (text.find(needle) == std::string_view::npos) continue;
    next.clear();
    for (const TextFragment& f : frags) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t base = f.offset;
      size_t remaining = f.length;
      while (remaining > 0) {
        const size_t match = text.find(needle, base);
        if (match == std::string_view::npos || match + needle.size() > base + remaining) {
          next.push_back({kNoToken, base, remaining});
          break;
        }
        if (match > base) next.push_back({kNoToken, base, match - base});
        next.push_back({id, 0, 0});
        remaining -= (match - base) + needle.size();
        base = match + needle.size();
      }
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace hearth::tokenizer
