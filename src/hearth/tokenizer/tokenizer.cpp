#include "hearth/tokenizer/tokenizer.h"

#include <utility>

#include "hearth/tokenizer/bpe.h"
#include "hearth/tokenizer/byte_encoding.h"
#include "hearth/tokenizer/pretokenizer.h"
#include "hearth/tokenizer/pretokenizer_patterns.h"
#include "hearth/tokenizer/special_split.h"
#include "hearth/tokenizer/spm.h"
#include "hearth/tokenizer/utf8.h"
#include "hearth/tokenizer/wpm.h"

namespace hearth::tokenizer {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string escape_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  for (char c : text) {
    if (c == ' ') {
      out += kSpaceMark;
    } else {
      out += c;
    }
  }
  return out;
}

std::string unescape_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.substr(i, kSpaceMark.size()) == kSpaceMark) {
      out += ' ';
      i += kSpaceMark.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Undoes the GPT-2 byte mapping. Code points outside the alphabet are spelled out the way
// llama.cpp does ("[UNK_BYTE_0x..." + token + "]"), so the failure is visible.
std::string byte_decode(std::string_view text) {
  std::string out;
  for (uint32_t cp : decode_utf8_lenient(text)) {
    const int b = unicode_to_byte(cp);
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
      continue;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    out += "[UNK_BYTE_0x";
    for (char c : encode_utf8(cp)) {
      out += kHex[static_cast<uint8_t>(c) >> 4];
      out += kHex[static_cast<uint8_t>(c) & 15];
    }
    out.append(text);
    out += ']';
  }
  return out;
}

// llama.cpp's clean_up_tokenization_spaces passes: " ?" " !" " ." " ," lose the space,
// " ' " becomes "'", and " 's" " 'm" " 're" " 've" lose the space.
std::string clean_spaces(std::string s) {
  if (s.empty()) return s;
  size_t total = 1;
  for (size_t i = 1; i < s.size(); ++i) {
    const char x = s[i];
    if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    s[total++] = x;
  }
  s.resize(total);

  const size_t n2 = s.size();
  total = 1;
  for (size_t i = 1; i < n2; ++i) {
    const char x = s[i];
    if (x == '\'' && i + 1 < n2 && s[i - 1] == ' ' && s[i + 1] == ' ') {
      --total;
      s[++i] = '\0';
    }
    s[total++] = x;
  }
  s.resize(total);

  const size_t n3 = s.size();
  total = 1;
  for (size_t i = 1; i < n3; ++i) {
    const char x = s[i];
    if (s[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
      const char x1 = s[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --total;
      } else if (i + 2 < n3) {
        const char x2 = s[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
      }
    }
    s[total++] = x;
  }
  s.resize(total);
  return s;
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab, std::unique_ptr<PreTokenizer> pre) : vocab_(std::move(vocab)), pre_(std::move(pre)) {}

Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::create(VocabSpec spec) {
  const std::string source = spec.source;
  HEARTH_ASSIGN_OR_RETURN(Vocab vocab, Vocab::build(std::move(spec)));
  std::unique_ptr<PreTokenizer> pre;
  if (vocab.type() == VocabType::kBpe) {
    HEARTH_ASSIGN_OR_RETURN(PreTokenizerConfig config, pretokenizer_config(vocab.pre()));
    auto created = PreTokenizer::create(config.patterns);
    if (!created.ok()) return created.status().with_context(source);
    pre = std::move(created).value();
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(vocab), std::move(pre)));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  const std::vector<TextFragment> frags = split_special_tokens(vocab_, text, parse_special);
  auto push_if = [&](bool cond, int32_t id) {
    if (cond && id != kNoToken) out.push_back(id);
  };
  switch (vocab_.type()) {
    case VocabType::kSpm: {
      push_if(add_special && vocab_.add_bos(), vocab_.bos());
      bool prev_special = true;  // the first text fragment gets the space prefix
      for (const TextFragment& f : frags) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
          prev_special = true;
          continue;
        }
        std::string piece;
        if (vocab_.add_space_prefix() && prev_special) piece = " ";
        piece.append(text.substr(f.offset, f.length));
        spm_tokenize(vocab_, escape_spaces(piece), out);
        prev_special = false;
      }
      push_if(add_special && vocab_.add_eos(), vocab_.eos());
      break;
    }
    case VocabType::kBpe: {
      push_if(add_special && vocab_.add_bos(), vocab_.bos());
      for (const TextFragment& f : frags) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
        } else {
          bpe_tokenize(vocab_, *pre_, text.substr(f.offset, f.length), out);
        }
      }
      push_if(add_special && vocab_.add_eos(), vocab_.eos());
      break;
    }
    case VocabType::kWpm: {
      push_if(add_special && vocab_.add_bos(), vocab_.bos());
      for (const TextFragment& f : frags) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
        } else {
          wpm_tokenize(vocab_, text.substr(f.offset, f.length), out);
        }
      }
      push_if(add_special && vocab_.add_sep(), vocab_.sep());
      break;
    }
  }
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  if (!vocab_.valid(id)) return {};
  const TokenData& t = vocab_.token(id);
  if (!render_special && (t.attrs & (attr::kUnknown | attr::kControl))) return {};
  if (t.attrs & (attr::kUnknown | attr::kControl | attr::kUserDefined)) return t.text;
  if (vocab_.type() == VocabType::kBpe) {
    if (t.attrs & attr::kNormal) return byte_decode(t.text);
    return {};
  }
  if (t.attrs & attr::kNormal) return unescape_spaces(t.text);
  if (t.attrs & attr::kByte) {  // "<0xAB>"
    if (t.text.size() < 6) return {};
    const int hi = hex_digit(t.text[3]);
    const int lo = hex_digit(t.text[4]);
    if (hi < 0 || lo < 0) return {};
    return std::string(1, static_cast<char>(hi * 16 + lo));
  }
  return {};
}

std::string Tokenizer::decode(std::span<const int32_t> ids, DecodeOptions opts) const {
  bool remove_space = vocab_.add_space_prefix();
  if (opts.remove_special && vocab_.add_bos() && !ids.empty() && ids.front() == vocab_.bos()) {
    remove_space = false;
    ids = ids.subspan(1);
  }
  if (opts.remove_special && vocab_.add_eos() && !ids.empty() && ids.back() == vocab_.eos()) {
    ids = ids.first(ids.size() - 1);
  }
  std::string text;
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, opts.render_special);
    if (remove_space && !piece.empty() && piece.front() == ' ') piece.erase(0, 1);
    remove_space = false;
    text += piece;
  }
  if (vocab_.clean_spaces()) text = clean_spaces(std::move(text));
  return text;
}

std::string_view Tokenizer::token_text(int32_t id) const {
  return vocab_.valid(id) ? std::string_view(vocab_.token(id).text) : std::string_view();
}

}  // namespace hearth::tokenizer
