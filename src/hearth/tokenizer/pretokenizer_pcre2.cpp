// PCRE2 adapter for pretokenizer.h (the only file that sees PCRE2).
#define PCRE2_CODE_UNIT_WIDTH 32
#include <pcre2.h>

#include <utility>

#include "hearth/tokenizer/pretokenizer.h"
#include "hearth/tokenizer/unicode_props.h"
#include "hearth/tokenizer/utf8.h"

namespace hearth::tokenizer {

struct PreTokenizer::Pattern {
  pcre2_code* code = nullptr;
  bool unicode_categories = false;  // compiled with PCRE2_UCP on the raw code points
  ~Pattern() { pcre2_code_free(code); }
};

namespace {

// \s and \S become the White_Space property, which is what the reference's code point flags
// use (PCRE2's own UCP \s differs in U+180E).
std::string rewrite_whitespace_classes(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 32);
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[i + 1];
      if (next == 's') {
        out += "\\p{White_Space}";
      } else if (next == 'S') {
        out += "\\P{White_Space}";
      } else {
        out += pattern[i];
        out += next;
      }
      ++i;
      continue;
    }
    out += pattern[i];
  }
  return out;
}

std::string error_message(int code) {
  PCRE2_UCHAR buf[256];
  const int n = pcre2_get_error_message(code, buf, 256);
  std::string msg;
  for (int i = 0; i < n; ++i) append_utf8(msg, buf[i] <= 0x10FFFF ? buf[i] : '?');
  return msg;
}

struct Fragment {
  size_t begin;
  size_t end;
};

// Appends the matches of `pattern` inside `frag` of `subject`, and the gaps between them.
void split_fragment(const pcre2_code* code, const std::vector<uint32_t>& subject, Fragment frag, pcre2_match_data* md,
                    std::vector<Fragment>& out) {
  const auto* base = reinterpret_cast<PCRE2_SPTR>(subject.data() + frag.begin);
  const size_t len = frag.end - frag.begin;
  size_t pos = 0;   // where the next search starts
  size_t prev = 0;  // end of the last emitted piece
  while (pos < len) {
    int rc = pcre2_match(code, base, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(code, base, len, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, nullptr);
    }
    if (rc < 0) break;  // no match, or a resource limit: the rest stays one gap
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t mb = ov[0];
    const size_t me = ov[1];
    if (me <= mb) {  // an empty match splits nothing; search again one code point later
      pos = mb + 1;
      continue;
    }
    if (mb > prev) out.push_back({frag.begin + prev, frag.begin + mb});
    out.push_back({frag.begin + mb, frag.begin + me});
    prev = me;
    pos = me;
  }
  if (prev < len) out.push_back({frag.begin + prev, frag.end});
}

}  // namespace

PreTokenizer::~PreTokenizer() = default;

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::create(std::span<const std::string_view> patterns) {
  std::unique_ptr<PreTokenizer> pt(new PreTokenizer());
  for (std::string_view raw : patterns) {
    auto p = std::make_unique<Pattern>();
    p->unicode_categories = raw.find("\\p{") != std::string_view::npos;
    const std::string text = p->unicode_categories ? rewrite_whitespace_classes(raw) : std::string(raw);
    std::vector<uint32_t> units = decode_utf8_lenient(text);
    uint32_t options = PCRE2_UTF | PCRE2_DOLLAR_ENDONLY;
    if (p->unicode_categories) options |= PCRE2_UCP;
    int err = 0;
    PCRE2_SIZE err_off = 0;
    p->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(units.data()), units.size(), options, &err, &err_off, nullptr);
    if (p->code == nullptr) {
      return make_error(ErrorCode::kInvalidArgument, "pre-tokenizer pattern '{}': {} at offset {}", raw,
                        error_message(err), err_off);
    }
    (void)pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter
    pt->patterns_.push_back(std::move(p));
  }
  return pt;
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  const std::vector<uint32_t> cps = decode_utf8_lenient(text);
  // What the patterns see: surrogate code points (which the lenient decoder lets through but
  // UTF-32 PCRE2 rejects) read as a private-use character, which has the same category class
  // (C) for every pattern. The words themselves keep the original code points.
  std::vector<uint32_t> ucp_subject(cps);
  for (auto& c : ucp_subject) {
    if (c >= 0xD800 && c <= 0xDFFF) c = 0xE000;
  }
  std::vector<uint32_t> ascii_subject;  // built on first use

  std::vector<Fragment> frags;
  if (!cps.empty()) frags.push_back({0, cps.size()});
  std::vector<Fragment> next;
  for (const auto& pattern : patterns_) {
    const std::vector<uint32_t>* subject = &ucp_subject;
    if (!pattern->unicode_categories) {
      if (ascii_subject.empty()) {
        ascii_subject = ucp_subject;
        for (auto& c : ascii_subject) {
          if (c > 0x7F && is_white_space(c)) c = 0x0B;
        }
      }
      subject = &ascii_subject;
    }
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(pattern->code, nullptr);
    if (md == nullptr) break;
    next.clear();
    next.reserve(frags.size() * 2);
    for (const Fragment& f : frags) split_fragment(pattern->code, *subject, f, md, next);
    pcre2_match_data_free(md);
    frags.swap(next);
  }

  std::vector<std::string> words;
  words.reserve(frags.size());
  for (const Fragment& f : frags) {
    std::string w;
    for (size_t i = f.begin; i < f.end; ++i) append_utf8(w, cps[i]);
    words.push_back(std::move(w));
  }
  return words;
}

}  // namespace hearth::tokenizer
