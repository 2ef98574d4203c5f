// ICU adapter for unicode_props.h.
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/utf16.h>

#include "hearth/tokenizer/unicode_props.h"

namespace hearth::tokenizer {

CodepointFlags codepoint_flags(uint32_t cp) {
  CodepointFlags f;
  const UChar32 c = static_cast<UChar32>(cp);
  const uint32_t mask = U_GET_GC_MASK(c);
  f.whitespace = u_isUWhiteSpace(c) != 0;
  f.letter = (mask & U_GC_L_MASK) != 0;
  f.number = (mask & U_GC_N_MASK) != 0;
  f.punctuation = (mask & U_GC_P_MASK) != 0;
  f.symbol = (mask & U_GC_S_MASK) != 0;
  f.accent_mark = (mask & U_GC_M_MASK) != 0;
  f.separator = (mask & U_GC_Z_MASK) != 0;
  f.control = (mask & (U_GC_CC_MASK | U_GC_CF_MASK | U_GC_CS_MASK | U_GC_CO_MASK)) != 0;
  return f;
}

bool is_white_space(uint32_t cp) { return u_isUWhiteSpace(static_cast<UChar32>(cp)) != 0; }

uint32_t to_lower(uint32_t cp) {
  if (cp > 0x10FFFF) return cp;
  return static_cast<uint32_t>(u_tolower(static_cast<UChar32>(cp)));
}

uint32_t nfd_first(uint32_t cp) {
  if (cp < 0xC0 || cp > 0x10FFFF) return cp;  // nothing below U+00C0 decomposes
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* nfd = unorm2_getNFDInstance(&err);
  if (U_FAILURE(err) || nfd == nullptr) return cp;
  UChar src[2];
  int32_t src_len = 0;
  UBool is_error = false;
  U16_APPEND(src, src_len, 2, static_cast<UChar32>(cp), is_error);
  if (is_error) return cp;
  UChar dst[32];
  const int32_t n = unorm2_normalize(nfd, src, src_len, dst, 32, &err);
  if (U_FAILURE(err) || n <= 0) return cp;
  UChar32 first;
  int32_t i = 0;
  U16_NEXT(dst, i, n, first);
  return static_cast<uint32_t>(first);
}

}  // namespace hearth::tokenizer
