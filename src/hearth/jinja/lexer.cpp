#include "hearth/jinja/lexer.h"

#include <cstdint>

#include "hearth/jinja/error.h"

namespace hearth::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  std::vector<Token> run() {
    // keep_trailing_newline=False: one trailing newline of the source is not part of it.
    if (!src_.empty() && src_.back() == '\n') {
      src_.remove_suffix(1);
      if (!src_.empty() && src_.back() == '\r') src_.remove_suffix(1);
    }
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t start = find_tag(pos_);
      std::string text(src_.substr(pos_, start - pos_));
      if (start == src_.size()) {
        emit_text(std::move(text), line_);
        break;
      }
      const char kind = src_[start + 1];  // '{', '%' or '#'
      const char mod = start + 2 < src_.size() ? src_[start + 2] : '\0';
      if (mod == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (mod != '+' && kind != '{') {
        // lstrip_blocks: spaces and tabs from the start of the line up to a block or comment tag.
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 || line_starting) {
          bool blank = l_pos < text.size();
          for (size_t i = l_pos; i < text.size(); ++i) blank = blank && is_space(text[i]);
          if (blank) text.resize(l_pos);
        }
      }
      const int text_line = line_;
      advance_to(start);
      emit_text(std::move(text), text_line);
      pos_ = start + 2 + ((mod == '-' || mod == '+') ? 1 : 0);
      if (kind == '%' && lex_raw()) {
        line_starting = pos_ > 0 && src_[pos_ - 1] == '\n';
        continue;
      }
      if (kind == '#') {
        lex_comment();
      } else {
        lex_tag(kind == '{');
      }
      line_starting = pos_ > 0 && src_[pos_ - 1] == '\n';
    }
    tokens_.push_back({TokenType::kEof, "", line_});
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  // Moves the line counter (not pos_) over the source up to `to`.
  void advance_to(size_t to) {
    for (size_t i = line_pos_; i < to; ++i) line_ += src_[i] == '\n';
    line_pos_ = to;
  }

  void emit_text(std::string text, int line) {
    if (!text.empty()) tokens_.push_back({TokenType::kText, std::move(text), line});
  }

  // After a tag's end: `-` strips all following whitespace; trim_blocks drops one newline
  // after a block or comment tag.
  void after_end(bool strip, bool trim) {
    if (strip) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (trim) {
      if (pos_ < src_.size() && src_[pos_] == '\n') {
        ++pos_;
      } else if (pos_ + 1 < src_.size() && src_[pos_] == '\r' && src_[pos_ + 1] == '\n') {
        pos_ += 2;
      }
    }
    advance_to(pos_);
  }

  // At pos_ (just after `{%` and its modifier): if the tag is `raw`, emits everything up to
  // `{% endraw %}` as text and returns true. The `-` modifiers strip as on any tag; trim_blocks
  // applies after endraw only (as jinja2's lexer does).
  bool lex_raw() {
    size_t p = pos_;
    auto skip_ws = [&](size_t& q) {
      while (q < src_.size() && is_space(src_[q])) ++q;
    };
    auto tag_end = [&](size_t& q, bool& strip) {
      strip = false;
      if (q < src_.size() && src_[q] == '-') {
        strip = true;
        ++q;
      }
      if (src_.substr(q, 2) != "%}") return false;
      q += 2;
      return true;
    };
    skip_ws(p);
    if (src_.substr(p, 3) != "raw" || (p + 3 < src_.size() && is_name_char(src_[p + 3]))) return false;
    p += 3;
    skip_ws(p);
    bool strip_after_begin = false;
    if (!tag_end(p, strip_after_begin)) return false;
    const int open_line = line_;
    // Find `{%[-]? endraw [-]?%}`.
    for (size_t q = src_.find("{%", p); q != std::string_view::npos; q = src_.find("{%", q + 2)) {
      size_t r = q + 2;
      const bool strip_before_end = r < src_.size() && src_[r] == '-';
      if (strip_before_end) ++r;
      skip_ws(r);
      if (src_.substr(r, 6) != "endraw") continue;
      r += 6;
      skip_ws(r);
      bool strip_after_end = false;
      if (!tag_end(r, strip_after_end)) continue;
      std::string body(src_.substr(p, q - p));
      if (strip_after_begin) {
        size_t b = 0;
        while (b < body.size() && is_space(body[b])) ++b;
        body.erase(0, b);
      }
      if (strip_before_end) {
        while (!body.empty() && is_space(body.back())) body.pop_back();
      }
      emit_text(std::move(body), open_line);
      pos_ = r;
      after_end(strip_after_end, true);
      return true;
    }
    fail(open_line, "unterminated '{% raw %}': no matching '{% endraw %}'");
  }

  void lex_comment() {
    const size_t end = src_.find("#}", pos_);
    if (end == std::string_view::npos) fail(line_, "unterminated comment: '{#' without '#}'");
    const bool strip = end > pos_ && src_[end - 1] == '-';
    pos_ = end + 2;
    after_end(strip, true);
  }

  void lex_tag(bool var) {
    const int open_line = line_;
    tokens_.push_back({var ? TokenType::kVarBegin : TokenType::kBlockBegin, "", line_});
    int depth = 0;
    for (;;) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      advance_to(pos_);
      if (pos_ >= src_.size()) {
        fail(open_line, var ? "unterminated '{{': no matching '}}'" : "unterminated '{%': no matching '%}'");
      }
      const std::string_view rest = src_.substr(pos_);
      const std::string_view end = var ? "}}" : "%}";
      if (depth == 0) {
        bool strip = false;
        size_t n = 0;
        if (rest.substr(0, 2) == end) {
          n = 2;
        } else if (rest.size() >= 3 && rest[0] == '-' && rest.substr(1, 2) == end) {
          n = 3;
          strip = true;
        }
        if (n) {
          tokens_.push_back({var ? TokenType::kVarEnd : TokenType::kBlockEnd, "", line_});
          pos_ += n;
          after_end(strip, !var);
          return;
        }
      }
      const char c = rest[0];
      if (is_name_start(c)) {
        size_t n = 1;
        while (n < rest.size() && is_name_char(rest[n])) ++n;
        tokens_.push_back({TokenType::kName, std::string(rest.substr(0, n)), line_});
        pos_ += n;
      } else if (is_digit(c)) {
        lex_number(rest);
      } else if (c == '\'' || c == '"') {
        lex_string(rest);
      } else {
        static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                           ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|", ";"};
        std::string_view op;
        for (const char* o : kOps) {
          if (rest.substr(0, std::string_view(o).size()) == o) {
            op = o;
            break;
          }
        }
        if (op.empty()) fail(line_, "unexpected character '" + std::string(1, c) + "' in a tag");
        if (op == "(" || op == "[" || op == "{") ++depth;
        if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
        tokens_.push_back({TokenType::kOp, std::string(op), line_});
        pos_ += op.size();
      }
    }
  }

  void lex_number(std::string_view rest) {
    size_t n = 0;
    auto digits = [&] {
      while (n < rest.size() && (is_digit(rest[n]) || (rest[n] == '_' && n + 1 < rest.size() && is_digit(rest[n + 1])))) ++n;
    };
    digits();
    bool is_float = false;
    if (n + 1 < rest.size() && rest[n] == '.' && is_digit(rest[n + 1])) {
      is_float = true;
      ++n;
      digits();
    }
    if (n < rest.size() && (rest[n] == 'e' || rest[n] == 'E')) {
      size_t m = n + 1;
      if (m < rest.size() && (rest[m] == '+' || rest[m] == '-')) ++m;
      if (m < rest.size() && is_digit(rest[m])) {
        is_float = true;
        n = m;
        digits();
      }
    }
    std::string text;
    for (char ch : rest.substr(0, n)) {
      if (ch != '_') text += ch;
    }
    tokens_.push_back({is_float ? TokenType::kFloat : TokenType::kInt, std::move(text), line_});
    pos_ += n;
  }

  void lex_string(std::string_view rest) {
    const char q = rest[0];
    std::string out;
    size_t i = 1;
    const int start_line = line_;
    for (;;) {
      if (i >= rest.size()) fail(start_line, "unterminated string literal");
      const char c = rest[i];
      if (c == q) break;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= rest.size()) fail(start_line, "unterminated string literal");
      const char e = rest[i + 1];
      i += 2;
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'a': out += '\a'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // a backslash-newline continues the line
        case 'x':
        case 'u':
        case 'U': {
          const size_t len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (size_t k = 0; k < len; ++k) {
            const int h = i + k < rest.size() ? hex_value(rest[i + k]) : -1;
            if (h < 0) fail(start_line, "truncated \\" + std::string(1, e) + " escape in a string literal");
            cp = cp * 16 + static_cast<uint32_t>(h);
          }
          i += len;
          append_utf8(out, cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && i < rest.size() && rest[i] >= '0' && rest[i] <= '7'; ++k, ++i) {
              cp = cp * 8 + static_cast<uint32_t>(rest[i] - '0');
            }
            append_utf8(out, cp);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    tokens_.push_back({TokenType::kString, std::move(out), start_line});
    pos_ += i + 1;
    advance_to(pos_);
  }

  std::string_view src_;
  size_t pos_ = 0;
  size_t line_pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace hearth::jinja
