// StopStringMatcher: finds stop strings in streamed generated text, across piece boundaries.
//
// Generated text arrives as pieces (one per token, possibly splitting a UTF-8 character or a
// stop string). push() returns the text that is safe to emit now: text that could still be the
// start of a stop string is held back until the next piece decides it, and (by default) so is a
// trailing incomplete UTF-8 sequence, so that streamed chunks are always whole characters. When
// a stop string appears, the text before it is emitted and the stop string and everything after
// it are dropped (OpenAI semantics: the stop sequence is not part of the output).
//
// Works on bytes; knows nothing of tokens, so it does not depend on the tokenizer.
//
// All stop strings are matched at once by an Aho-Corasick automaton (Aho & Corasick, "Efficient
// string matching", CACM 1975) advanced byte by byte over the generated text, so a push costs
// O(piece bytes + matches) whatever the stop strings, and the automaton's state depth is the
// longest held-back suffix that may still start a stop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::sampling {

class StopStringMatcher {
 public:
  struct Step {
    std::string text;        // safe to emit now (may be empty)
    bool stopped = false;    // a stop string was found (now or by an earlier push)
    size_t stop_index = 0;   // index into stop_strings() of the stop that matched
    size_t stop_offset = 0;  // byte offset of the stop in the whole generated text, i.e. where to
                             // cut a non-streamed buffer
  };

  // Empty stop strings are ignored. If several stops match, the earliest start wins, then the
  // lowest index.
  explicit StopStringMatcher(std::vector<std::string> stop_strings, bool hold_incomplete_utf8 = true);

  // Appends a piece of generated text. After a stop was found, further pieces are ignored.
  Step push(std::string_view piece);

  // Generation ended without a stop (EOG token, length limit): returns the held-back text.
  std::string finish();

  // Clears all state for a new generation; keeps the stop strings.
  void reset();

  bool stopped() const { return stopped_; }
  // The bytes currently held back.
  std::string_view held() const { return buffer_; }
  // Bytes emitted so far (by push and finish).
  size_t emitted() const { return emitted_; }
  const std::vector<std::string>& stop_strings() const { return stops_; }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;  // trie edges (sparse: few per node)
    int32_t fail = 0;                                     // longest proper suffix that is also a trie node
    int32_t dict = -1;                                    // nearest node on the fail chain that ends a stop (-1: none)
    int32_t depth = 0;                                    // bytes from the root
    int32_t stop = -1;                                    // lowest index of the stop string ending here (-1: none)
  };
  int32_t child(int32_t node, unsigned char c) const;
  int32_t advance(int32_t node, unsigned char c) const;
  void build();
  size_t utf8_holdback() const;

  std::vector<std::string> stops_;
  bool hold_utf8_;
  std::vector<Node> nodes_;  // nodes_[0] is the root
  int32_t state_ = 0;        // the node of the longest suffix of the text that is a stop prefix
  std::string buffer_;       // never contains a whole stop string
  size_t emitted_ = 0;
  bool stopped_ = false;
  size_t stop_index_ = 0;
  size_t stop_offset_ = 0;
};

}  // namespace hearth::sampling
