// UTF-8 helpers for the tokenizer: the lenient decoder that llama.cpp's tokenizers use (every
// invalid byte becomes one U+FFFD), an encoder, and a strict validator for streaming output.
// Spec: RFC 3629 (UTF-8), Unicode 15 §3.9 (well-formed sequences).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::tokenizer {

inline constexpr uint32_t kReplacementChar = 0xFFFD;

// Bytes in the sequence that `lead` starts, from its high nibble alone (1 for ASCII and for
// stray continuation bytes, 2 for 0xC?/0xD?, 3 for 0xE?, 4 for 0xF?). Callers clamp to the
// bytes that remain.
size_t utf8_sequence_length(uint8_t lead);

// Decodes like llama.cpp's unicode_cpts_from_utf8: a lead byte with the right number of
// continuation bytes decodes (overlong forms included); anything else yields U+FFFD and
// advances one byte. Values that cannot be encoded again (above U+10FFFF) also become U+FFFD.
std::vector<uint32_t> decode_utf8_lenient(std::string_view text);

// Appends the UTF-8 encoding of `cp` (which must be <= 0x10FFFF).
void append_utf8(std::string& out, uint32_t cp);
std::string encode_utf8(uint32_t cp);

// What the bytes at the start of a buffer hold.
struct Utf8Sequence {
  enum Kind { kComplete, kIncomplete, kInvalid } kind;
  // kComplete: bytes in the well-formed sequence (1..4). kIncomplete: bytes present, all a
  // valid start of a sequence that needs more. kInvalid: bytes of the maximal ill-formed
  // subpart (1..3), which a decoder replaces with one U+FFFD (Unicode §3.9, "U+FFFD
  // substitution of maximal subparts").
  size_t length;
};
// `bytes` must not be empty.
Utf8Sequence next_utf8_sequence(std::string_view bytes);

// True if `text` is entirely well-formed UTF-8.
bool is_valid_utf8(std::string_view text);

}  // namespace hearth::tokenizer
