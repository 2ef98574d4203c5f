// Unicode character properties the tokenizers need beyond regex matching: general-category
// flags, White_Space, simple lowercase and the first code point of the NFD decomposition
// (WordPiece lowercases and strips accents). Backed by ICU in unicode_props_icu.cpp, the only
// file that sees ICU.
#pragma once

#include <cstdint>

namespace hearth::tokenizer {

struct CodepointFlags {
  bool whitespace = false;   // Unicode White_Space property
  bool letter = false;       // L*
  bool number = false;       // N*
  bool punctuation = false;  // P*
  bool symbol = false;       // S*
  bool accent_mark = false;  // M*
  bool separator = false;    // Z*
  bool control = false;      // Cc, Cf, Cs, Co (not Cn)
};

CodepointFlags codepoint_flags(uint32_t cp);
bool is_white_space(uint32_t cp);
// Simple (1:1) lowercase mapping; `cp` itself when there is none.
uint32_t to_lower(uint32_t cp);
// First code point of the canonical decomposition (NFD) of `cp`; `cp` itself when none.
uint32_t nfd_first(uint32_t cp);

}  // namespace hearth::tokenizer
