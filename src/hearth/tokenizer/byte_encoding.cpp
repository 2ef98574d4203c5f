#include "hearth/tokenizer/byte_encoding.h"

#include "hearth/tokenizer/utf8.h"

namespace hearth::tokenizer {
namespace {

bool maps_to_itself(uint32_t b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

}  // namespace

uint32_t byte_to_unicode(uint8_t byte) {
  const uint32_t b = byte;
  if (maps_to_itself(b)) return b;
  if (b <= 0x20) return 0x100 + b;                        // 33 control bytes and space
  if (b >= 0x7F && b <= 0xA0) return 0x121 + (b - 0x7F);  // DEL, C1 controls, NBSP (34)
  return 0x143;                                           // 0xAD, soft hyphen
}

int unicode_to_byte(uint32_t cp) {
  if (maps_to_itself(cp)) return static_cast<int>(cp);
  if (cp >= 0x100 && cp <= 0x120) return static_cast<int>(cp - 0x100);
  if (cp >= 0x121 && cp <= 0x142) return static_cast<int>(0x7F + (cp - 0x121));
  if (cp == 0x143) return 0xAD;
  return -1;
}

std::string byte_encode(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 2);
  for (char c : text) append_utf8(out, byte_to_unicode(static_cast<uint8_t>(c)));
  return out;
}

}  // namespace hearth::tokenizer
