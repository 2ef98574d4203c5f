#include "hearth/tokenizer/bpe.h"

#include <algorithm>
#include <queue>
#include <string>

#include "hearth/tokenizer/byte_encoding.h"
#include "hearth/tokenizer/utf8.h"

namespace hearth::tokenizer {
namespace {

struct Symbol {
  int prev;
  int next;
  size_t begin;
  size_t n;  // 0 once merged into its left neighbour
};

struct Bigram {
  int left;
  int right;
  int32_t rank;
  size_t left_n;  // sizes when queued; a change means the entry is stale
  size_t right_n;
};

struct BigramOrder {  // the lowest rank on top; among equal ranks the leftmost
  bool operator()(const Bigram& l, const Bigram& r) const {
    return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
  }
};

// Merges inside one byte-encoded word and appends the resulting pieces' tokens.
void merge_word(const Vocab& vocab, const std::string& word, std::vector<int32_t>& out) {
  std::vector<Symbol> symbols;
  if (vocab.ignore_merges() && vocab.text_to_token(word) != kNoToken) {
    symbols.push_back({-1, -1, 0, word.size()});
  } else {
    for (size_t offs = 0; offs < word.size();) {
      const size_t len = std::min(utf8_sequence_length(static_cast<uint8_t>(word[offs])), word.size() - offs);
      const int index = static_cast<int>(symbols.size());
      symbols.push_back({index - 1, offs + len == word.size() ? -1 : index + 1, offs, len});
      offs += len;
    }
  }
  const std::string_view w = word;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[static_cast<size_t>(left)];
    const Symbol& r = symbols[static_cast<size_t>(right)];
    const int32_t rank = vocab.merge_rank(w.substr(l.begin, l.n), w.substr(r.begin, r.n));
    if (rank < 0) return;
    queue.push({left, right, rank, l.n, r.n});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = symbols[static_cast<size_t>(b.left)];
    Symbol& r = symbols[static_cast<size_t>(b.right)];
    // Stale when either side has changed since it was queued (symbols only grow to the
    // right, and both start where they started, so equal sizes mean equal texts).
    if (l.n == 0 || r.n == 0 || l.n != b.left_n || r.n != b.right_n || l.next != b.right) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[static_cast<size_t>(r.next)].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  for (const Symbol& s : symbols) {
    if (s.n == 0) continue;
    const std::string_view piece = w.substr(s.begin, s.n);
    const int32_t id = vocab.text_to_token(piece);
    if (id != kNoToken) {
      out.push_back(id);
      continue;
    }
    // Not a token (a vocabulary without every byte): emit whatever single bytes are tokens.
    for (char c : piece) {
      const int32_t byte_id = vocab.text_to_token(std::string_view(&c, 1));
      if (byte_id != kNoToken) out.push_back(byte_id);
    }
  }
}

}  // namespace

void bpe_tokenize(const Vocab& vocab, const PreTokenizer& pre, std::string_view text, std::vector<int32_t>& out) {
  for (const std::string& word : pre.split(text)) merge_word(vocab, byte_encode(word), out);
}

}  // namespace hearth::tokenizer
