// Regex pre-tokenizer for byte-level BPE: splits text into words with a sequence of patterns,
// the way llama.cpp's unicode_regex_split does. Each pattern splits every current fragment
// into its matches and the gaps between them (both kept), and the next pattern refines those
// fragments. Matching works on code points (PCRE2, 32-bit code units) so that fragment
// boundaries, lookaheads and `$` see exactly the fragment, as in the reference.
//
// Patterns that use \p{..} are compiled with Unicode properties (PCRE2_UCP), with \s meaning
// the White_Space property. Patterns without \p{..} run, as the reference's std::wregex path
// does, on text where every non-ASCII White_Space code point reads as U+000B, with ASCII \s.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::tokenizer {

class PreTokenizer {
 public:
  // Compiles `patterns` (PCRE2 syntax, UTF-8). Fails on a pattern PCRE2 rejects.
  static Result<std::unique_ptr<PreTokenizer>> create(std::span<const std::string_view> patterns);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Splits `text` (any bytes; invalid UTF-8 reads as U+FFFD per byte) into non-empty words,
  // re-encoded as UTF-8. With no patterns the whole text is one word.
  std::vector<std::string> split(std::string_view text) const;

 private:
  struct Pattern;
  PreTokenizer() = default;
  std::vector<std::unique_ptr<Pattern>> patterns_;
};

}  // namespace hearth::tokenizer
