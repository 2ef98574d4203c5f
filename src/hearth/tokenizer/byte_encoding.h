// GPT-2's byte-level alphabet: every byte maps to a printable code point, so that BPE tokens
// are valid UTF-8 strings. Printable Latin-1 bytes (! to ~, ¡ to ¬, ® to ÿ) map to
// themselves; the other 68 bytes map, in order, to U+0100..U+0143.
// Ref: openai/gpt-2 src/encoder.py bytes_to_unicode().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::tokenizer {

uint32_t byte_to_unicode(uint8_t byte);
// The byte that `cp` stands for, or -1 if `cp` is not in the alphabet.
int unicode_to_byte(uint32_t cp);

// Maps every byte of `text` to its code point and returns the UTF-8 result.
std::string byte_encode(std::string_view text);

}  // namespace hearth::tokenizer
