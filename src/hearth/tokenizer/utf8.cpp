#include "hearth/tokenizer/utf8.h"

namespace hearth::tokenizer {

size_t utf8_sequence_length(uint8_t lead) {
  static constexpr uint8_t kByHighNibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kByHighNibble[lead >> 4];
}

std::vector<uint32_t> decode_utf8_lenient(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  auto is_cont = [&](size_t k) { return k < n && (s[k] & 0xC0) == 0x80; };
  while (i < n) {
    const uint8_t b = s[i];
    if (b < 0x80) {
      out.push_back(b);
      i += 1;
    } else if ((b & 0x40) == 0) {  // stray continuation byte
      out.push_back(kReplacementChar);
      i += 1;
    } else if ((b & 0x20) == 0) {
      if (!is_cont(i + 1)) {
        out.push_back(kReplacementChar);
        i += 1;
        continue;
      }
      out.push_back((uint32_t(b & 0x1F) << 6) | (s[i + 1] & 0x3F));
      i += 2;
    } else if ((b & 0x10) == 0) {
      if (!is_cont(i + 1) || !is_cont(i + 2)) {
        out.push_back(kReplacementChar);
        i += 1;
        continue;
      }
      out.push_back((uint32_t(b & 0x0F) << 12) | (uint32_t(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F));
      i += 3;
    } else if ((b & 0x08) == 0) {
      if (!is_cont(i + 1) || !is_cont(i + 2) || !is_cont(i + 3)) {
        out.push_back(kReplacementChar);
        i += 1;
        continue;
      }
      uint32_t cp = (uint32_t(b & 0x07) << 18) | (uint32_t(s[i + 1] & 0x3F) << 12) | (uint32_t(s[i + 2] & 0x3F) << 6) |
                    (s[i + 3] & 0x3F);
      out.push_back(cp <= 0x10FFFF ? cp : kReplacementChar);
      i += 4;
    } else {  // 0xF8..0xFF never start a sequence
      out.push_back(kReplacementChar);
      i += 1;
    }
  }
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp <= 0x7F) {
    out.push_back(static_cast<char>(cp));
  } else if (cp <= 0x7FF) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= 0xFFFF) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | ((cp >> 18) & 0x07)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(uint32_t cp) {
  std::string s;
  append_utf8(s, cp);
  return s;
}

Utf8Sequence next_utf8_sequence(std::string_view bytes) {
  const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint8_t b0 = s[0];
  if (b0 < 0x80) return {Utf8Sequence::kComplete, 1};
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte (Unicode Table 3-7)
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {Utf8Sequence::kInvalid, 1};
  }
  for (size_t k = 1; k < need; ++k) {
    if (k >= bytes.size()) return {Utf8Sequence::kIncomplete, k};
    const uint8_t b = s[k];
    const uint8_t l = k == 1 ? lo : 0x80;
    const uint8_t h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return {Utf8Sequence::kInvalid, k};
  }
  return {Utf8Sequence::kComplete, need};
}

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const Utf8Sequence seq = next_utf8_sequence(text.substr(i));
    if (seq.kind != Utf8Sequence::kComplete) return false;
    i += seq.length;
  }
  return true;
}

}  // namespace hearth::tokenizer
