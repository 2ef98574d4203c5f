#include "hearth/train/bpe_trainer.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "hearth/tokenizer/utf8.h"

namespace hearth::train {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581
constexpr int64_t kFixedTokens = 3 + 256;

// Words as SentencePiece sees them: "▁" + a run of non-space characters, or a lone newline.
void count_words(std::string_view text, std::unordered_map<std::string, int64_t>& words) {
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) ++words[cur];
    cur.clear();
  };
  cur = kSpace;  // the encoder adds a space prefix
  for (char c : text) {
    if (c == ' ') {
      flush();
      cur = kSpace;
    } else if (c == '\n') {
      if (cur != kSpace) flush();
      cur.clear();
      ++words["\n"];
    } else {
      cur += c;
    }
  }
  if (cur != kSpace) flush();
}

// Splits a word into UTF-8 characters.
std::vector<std::string> chars_of(const std::string& w) {
  std::vector<std::string> out;
  for (size_t i = 0; i < w.size();) {
    const size_t n = std::min(tokenizer::utf8_sequence_length(static_cast<uint8_t>(w[i])), w.size() - i);
    out.push_back(w.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace

Result<tokenizer::VocabSpec> train_bpe(const std::vector<std::string_view>& texts, const BpeOptions& opts) {
  if (opts.vocab_size <= kFixedTokens + 1 || opts.vocab_size > (1 << 20)) {
    return make_error(ErrorCode::kInvalidArgument, "vocabulary size {} must be above {} (3 special + 256 byte tokens)",
                      opts.vocab_size, kFixedTokens + 1);
  }
  std::unordered_map<std::string, int64_t> word_counts;
  for (std::string_view t : texts) count_words(t, word_counts);
  if (word_counts.empty()) return make_error(ErrorCode::kInvalidArgument, "cannot train a tokenizer on empty text");

  // Words in a fixed order (the hash map's order is not).
  std::vector<std::pair<std::string, int64_t>> words(word_counts.begin(), word_counts.end());
  std::sort(words.begin(), words.end());

  // Characters by frequency; keep the most frequent covering char_coverage of all characters.
  std::map<std::string, int64_t> char_counts;
  int64_t total_chars = 0;
  for (const auto& [w, c] : words) {
    for (const std::string& ch : chars_of(w)) {
      char_counts[ch] += c;
      total_chars += c;
    }
  }
  std::vector<std::pair<std::string, int64_t>> chars(char_counts.begin(), char_counts.end());
  std::stable_sort(chars.begin(), chars.end(), [](const auto& a, const auto& b) { return a.second > b.second; });

  tokenizer::VocabSpec spec;
  spec.model = "llama";
  auto add = [&](std::string text, float score, tokenizer::GgufTokenType type) {
    spec.tokens.push_back(std::move(text));
    spec.scores.push_back(score);
    spec.token_types.push_back(static_cast<int32_t>(type));
  };
  add("<unk>", 0.0f, tokenizer::GgufTokenType::kUnknown);
  add("<s>", 0.0f, tokenizer::GgufTokenType::kControl);
  add("</s>", 0.0f, tokenizer::GgufTokenType::kControl);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    add(name, 0.0f, tokenizer::GgufTokenType::kByte);
  }

  // Symbols: kept characters first, then merges. sym_text[i] is symbol i's text; symbols that
  // are not tokens (rare characters) never take part in a merge.
  std::vector<std::string> sym_text;
  std::unordered_map<std::string, int32_t> sym_id;
  const int64_t room = opts.vocab_size - kFixedTokens;
  int64_t covered = 0;
  for (const auto& [ch, c] : chars) {
    if (static_cast<int64_t>(sym_text.size()) >= room) break;
    if (!sym_text.empty() && static_cast<double>(covered) >= opts.char_coverage * static_cast<double>(total_chars)) {
      break;
    }
    covered += c;
    sym_id[ch] = static_cast<int32_t>(sym_text.size());
    sym_text.push_back(ch);
  }
  constexpr int32_t kRare = -1;
  std::vector<std::vector<int32_t>> seqs;
  std::vector<int64_t> counts;
  for (const auto& [w, c] : words) {
    std::vector<int32_t> s;
    for (const std::string& ch : chars_of(w)) {
      auto it = sym_id.find(ch);
      s.push_back(it == sym_id.end() ? kRare : it->second);
    }
    seqs.push_back(std::move(s));
    counts.push_back(c);
  }

  // Greedy BPE: merge the most frequent adjacent pair (ties: the smallest pair of ids), until
  // the vocabulary is full or no pair occurs twice.
  while (static_cast<int64_t>(sym_text.size()) < room) {
    std::unordered_map<uint64_t, int64_t> pairs;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const auto& s = seqs[i];
      for (size_t j = 0; j + 1 < s.size(); ++j) {
        if (s[j] == kRare || s[j + 1] == kRare) continue;
        pairs[(static_cast<uint64_t>(s[j]) << 32) | static_cast<uint32_t>(s[j + 1])] += counts[i];
      }
    }
    uint64_t best = 0;
    int64_t best_count = 1;
    for (const auto& [k, c] : pairs) {
      if (c > best_count || (c == best_count && c > 1 && k < best)) {
        best = k;
        best_count = c;
      }
    }
    if (best_count < 2) break;
    const int32_t a = static_cast<int32_t>(best >> 32), b = static_cast<int32_t>(best & 0xFFFFFFFFu);
    std::string merged = sym_text[static_cast<size_t>(a)] + sym_text[static_cast<size_t>(b)];
    int32_t id;
    if (auto it = sym_id.find(merged); it != sym_id.end()) {
      id = it->second;  // the same text reached another way: no new token
    } else {
      id = static_cast<int32_t>(sym_text.size());
      sym_id.emplace(merged, id);
      sym_text.push_back(std::move(merged));
    }
    for (auto& s : seqs) {
      size_t o = 0;
      for (size_t j = 0; j < s.size(); ++j) {
        if (j + 1 < s.size() && s[j] == a && s[j + 1] == b) {
          s[o++] = id;
          ++j;
        } else {
          s[o++] = s[j];
        }
      }
      s.resize(o);
    }
  }
  for (size_t i = 0; i < sym_text.size(); ++i) {
    add(sym_text[i], -static_cast<float>(i), tokenizer::GgufTokenType::kNormal);
  }
  spec.unk_id = 0;
  spec.bos_id = 1;
  spec.eos_id = 2;
  spec.add_bos = true;
  spec.add_eos = false;
  spec.add_space_prefix = true;
  return spec;
}

}  // namespace hearth::train
