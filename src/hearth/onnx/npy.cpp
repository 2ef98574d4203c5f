#include "hearth/onnx/npy.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>

#include "hearth/core/atomic_file.h"
#include "hearth/core/checked_math.h"

namespace hearth::onnx {
namespace {

static_assert(std::endian::native == std::endian::little, "the .npy reader assumes a little-endian host");

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kPreludeV1 = 10;        // magic, major, minor, u16 header length
constexpr size_t kPreludeV2 = 12;        // magic, major, minor, u32 header length
constexpr uint32_t kMaxHeaderLen = 1 << 16;  // NumPy itself refuses headers over 10000 bytes
constexpr uint64_t kMaxFileBytes = uint64_t{1} << 33;  // 8 GiB: far above any model input

struct DescrEntry {
  std::string_view descr;
  DType dtype;
};
// What NumPy writes on a little-endian machine (byte-sized types have no byte order: '|').
constexpr DescrEntry kDescrs[] = {
    {"<f4", DType::kFloat},  {"<f8", DType::kDouble}, {"<f2", DType::kFloat16}, {"<i8", DType::kInt64},
    {"<i4", DType::kInt32},  {"<i2", DType::kInt16},  {"|i1", DType::kInt8},    {"|u1", DType::kUint8},
    {"<u2", DType::kUint16}, {"<u4", DType::kUint32}, {"<u8", DType::kUint64},  {"|b1", DType::kBool},
};

Status bad(std::string_view what) { return make_error(ErrorCode::kInvalidArgument, "npy: {}", what); }

// A strict reader of the header's Python dict literal.
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view s) : s_(s) {}

  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool at_end() {
    skip_space();
    return pos_ == s_.size();
  }
  size_t pos() const { return pos_; }
  std::string_view rest() const { return s_.substr(pos_, 16); }

  // A quoted string without escapes ('...' or "...").
  std::optional<std::string_view> string() {
    skip_space();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) return std::nullopt;
    const char q = s_[pos_];
    const size_t end = s_.find(q, pos_ + 1);
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view v = s_.substr(pos_ + 1, end - pos_ - 1);
    if (v.find('\\') != std::string_view::npos) return std::nullopt;
    pos_ = end + 1;
    return v;
  }
  std::optional<std::string_view> word() {
    skip_space();
    const size_t start = pos_;
    while (pos_ < s_.size() && ((s_[pos_] >= 'A' && s_[pos_] <= 'Z') || (s_[pos_] >= 'a' && s_[pos_] <= 'z'))) ++pos_;
    if (pos_ == start) return std::nullopt;
    return s_.substr(start, pos_ - start);
  }
  // A non-negative decimal integer that fits int64 (NumPy may write a trailing 'L' in old files).
  Result<int64_t> dim() {
    skip_space();
    const size_t start = pos_;
    int64_t v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      auto m = checked_mul<int64_t>(v, 10);
      auto a = m ? checked_add<int64_t>(*m, s_[pos_] - '0') : std::nullopt;
      if (!a) return bad("a dimension in 'shape' does not fit in 64 bits");
      v = *a;
      ++pos_;
    }
    if (pos_ == start) {
      if (pos_ < s_.size() && s_[pos_] == '-') return bad("'shape' has a negative dimension");
      return make_error(ErrorCode::kInvalidArgument, "npy: 'shape' is not a tuple of integers (at '{}')", rest());
    }
    if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;
    return v;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

struct Header {
  DType dtype = DType::kUndefined;
  Shape shape;
};

Result<DType> parse_descr(std::string_view d) {
  for (const auto& e : kDescrs) {
    if (e.descr == d) return e.dtype;
  }
  // Byte-sized types with an explicit order or native '=' marker are still unambiguous.
  if (d.size() == 3 && (d[0] == '<' || d[0] == '=') && (d.substr(1) == "i1" || d.substr(1) == "u1" || d.substr(1) == "b1")) {
    return parse_descr(std::string("|") + std::string(d.substr(1)));
  }
  if (!d.empty() && d[0] == '>') {
    return make_error(ErrorCode::kUnimplemented, "npy: big-endian dtype '{}' is not supported (save it little-endian: "
                      "a.astype(a.dtype.newbyteorder('<')))", d);
  }
  return make_error(ErrorCode::kUnimplemented,
                    "npy: dtype '{}' is not supported (supported: <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 <u2 <u4 <u8 |b1)",
                    d.size() > 32 ? d.substr(0, 32) : d);
}

Result<Header> parse_header(std::string_view text) {
  HeaderParser p(text);
  if (!p.eat('{')) return bad("header is not a dict literal (no '{')");
  Header h;
  bool have_descr = false, have_order = false, have_shape = false;
  while (!p.eat('}')) {
    auto key = p.string();
    if (!key) return make_error(ErrorCode::kInvalidArgument, "npy: header: expected a quoted key at '{}'", p.rest());
    if (!p.eat(':')) return make_error(ErrorCode::kInvalidArgument, "npy: header: expected ':' after '{}'", *key);
    if (*key == "descr") {
      if (have_descr) return bad("header repeats 'descr'");
      have_descr = true;
      auto d = p.string();
      if (!d) return bad("'descr' is not a string (structured dtypes are not supported)");
      HEARTH_ASSIGN_OR_RETURN(h.dtype, parse_descr(*d));
    } else if (*key == "fortran_order") {
      if (have_order) return bad("header repeats 'fortran_order'");
      have_order = true;
      auto w = p.word();
      if (w == "True") {
        return make_error(ErrorCode::kUnimplemented,
                          "npy: fortran_order is True: only C-order arrays are supported (save np.ascontiguousarray(a))");
      }
      if (w != "False") return bad("'fortran_order' is neither True nor False");
    } else if (*key == "shape") {
      if (have_shape) return bad("header repeats 'shape'");
      have_shape = true;
      if (!p.eat('(')) return bad("'shape' is not a tuple");
      // (), (n,), (n, m), (n, m,)
      bool need_comma = false;  // a one-element tuple needs its trailing comma
      while (!p.eat(')')) {
        if (h.shape.size() >= kMaxRank) {
          return make_error(ErrorCode::kOutOfRange, "npy: 'shape' has more than {} dimensions", kMaxRank);
        }
        HEARTH_ASSIGN_OR_RETURN(int64_t d, p.dim());
        h.shape.push_back(d);
        if (p.eat(',')) {
          need_comma = false;
          continue;
        }
        if (h.shape.size() == 1) need_comma = true;
        if (!p.eat(')')) return make_error(ErrorCode::kInvalidArgument, "npy: 'shape': expected ',' or ')' at '{}'", p.rest());
        break;
      }
      if (need_comma) return bad("'shape' (n) is not a tuple: a one-element tuple is written (n,)");
    } else {
      return make_error(ErrorCode::kInvalidArgument, "npy: header has an unknown key '{}'",
                        key->size() > 32 ? key->substr(0, 32) : *key);
    }
    if (!p.eat(',')) {
      if (!p.eat('}')) return make_error(ErrorCode::kInvalidArgument, "npy: header: expected ',' or '}}' at '{}'", p.rest());
      break;
    }
  }
  if (!p.at_end()) return bad("header has text after the dict");
  if (!have_descr || !have_order || !have_shape) {
    return make_error(ErrorCode::kInvalidArgument, "npy: header lacks {}",
                      !have_descr ? "'descr'" : !have_order ? "'fortran_order'" : "'shape'");
  }
  return h;
}

uint32_t read_le(const std::byte* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint32_t>(std::to_integer<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

std::string_view npy_descr(DType t) {
  for (const auto& e : kDescrs) {
    if (e.dtype == t) return e.descr;
  }
  return {};
}

Result<Tensor> parse_npy(std::span<const std::byte> bytes) {
  if (bytes.size() < kPreludeV1) return make_error(ErrorCode::kInvalidArgument, "npy: file is too short ({} bytes) to be .npy", bytes.size());
  if (std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0) return bad("wrong magic: not a .npy file");
  const uint8_t major = std::to_integer<uint8_t>(bytes[6]);
  const uint8_t minor = std::to_integer<uint8_t>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0) {
    return make_error(ErrorCode::kUnimplemented, "npy: format version {}.{} is not supported (1.0, 2.0, 3.0)", major, minor);
  }
  size_t prelude = kPreludeV1;
  uint32_t header_len = 0;
  if (major == 1) {
    header_len = read_le(bytes.data() + 8, 2);
  } else {
    if (bytes.size() < kPreludeV2) return bad("file is truncated inside the header length");
    prelude = kPreludeV2;
    header_len = read_le(bytes.data() + 8, 4);
  }
  if (header_len > kMaxHeaderLen) {
    return make_error(ErrorCode::kInvalidArgument, "npy: header length {} exceeds the limit of {}", header_len, kMaxHeaderLen);
  }
  if (header_len > bytes.size() - prelude) {
    return make_error(ErrorCode::kInvalidArgument, "npy: file is truncated: header of {} bytes, {} left", header_len,
                      bytes.size() - prelude);
  }
  std::string_view text(reinterpret_cast<const char*>(bytes.data()) + prelude, header_len);
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    // v1/v2 are latin-1/ASCII; v3 allows UTF-8, but only in field names of structured dtypes,
    // which are refused anyway. A NUL or control byte is never valid.
    if (u == 0 || (u < 0x20 && c != '\n' && c != '\r' && c != '\t') || u >= 0x80) {
      return bad("header has a byte that is not printable ASCII");
    }
  }
  HEARTH_ASSIGN_OR_RETURN(Header h, parse_header(text));
  auto numel = checked_numel(h.shape);
  if (!numel.ok()) return numel.status().with_context("npy");
  const size_t elem = dtype_size(h.dtype);
  const size_t data_off = prelude + header_len;
  const size_t available = bytes.size() - data_off;
  auto need = checked_mul<uint64_t>(static_cast<uint64_t>(*numel), elem);
  if (!need || *need > available) {
    return make_error(ErrorCode::kInvalidArgument, "npy: file is truncated: shape {} of {} needs {} data bytes, {} present",
                      shape_string(h.shape), npy_descr(h.dtype), need ? fmt::format("{}", *need) : "too many", available);
  }
  if (*need < available) {
    return make_error(ErrorCode::kInvalidArgument, "npy: {} bytes after the data of shape {} ({}): not one array",
                      available - *need, shape_string(h.shape), npy_descr(h.dtype));
  }
  auto data = bytes.subspan(data_off);
  if (h.dtype == DType::kBool) {
    for (size_t i = 0; i < data.size(); ++i) {
      const auto v = std::to_integer<uint8_t>(data[i]);
      if (v > 1) return make_error(ErrorCode::kInvalidArgument, "npy: bool element {} is {}, not 0 or 1", i, v);
    }
  }
  return Tensor::from_bytes(h.dtype, std::move(h.shape), data);
}

Result<std::vector<std::byte>> encode_npy(const Tensor& t) {
  const std::string_view descr = npy_descr(t.dtype());
  if (descr.empty()) {
    return make_error(ErrorCode::kUnimplemented, "npy: a {} tensor cannot be written as .npy", dtype_name(t.dtype()));
  }
  std::string shape = "(";
  for (size_t i = 0; i < t.rank(); ++i) {
    if (i) shape += ", ";
    shape += std::to_string(t.dim(i));
  }
  if (t.rank() == 1) shape += ',';
  shape += ')';
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape);
  // Pad with spaces so the data starts on a 64-byte boundary; the header ends in '\n'.
  const size_t unpadded = kPreludeV1 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::vector<std::byte> out;
  out.reserve(kPreludeV1 + header.size() + t.nbytes());
  for (char c : kMagic) out.push_back(static_cast<std::byte>(c));
  out.push_back(std::byte{1});
  out.push_back(std::byte{0});
  out.push_back(static_cast<std::byte>(header.size() & 0xff));
  out.push_back(static_cast<std::byte>(header.size() >> 8));
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  if (t.nbytes() > 0) out.insert(out.end(), t.raw(), t.raw() + t.nbytes());
  return out;
}

Result<Tensor> read_npy_file(const std::string& path) {
  auto text = read_file(path, kMaxFileBytes);
  if (!text.ok()) return text.status();
  auto t = parse_npy(std::as_bytes(std::span<const char>(text->data(), text->size())));
  if (!t.ok()) return t.status().with_context(path);
  return t;
}

Status write_npy_file(const std::string& path, const Tensor& t) {
  auto bytes = encode_npy(t);
  if (!bytes.ok()) return bytes.status().with_context(path);
  return write_file_atomic(path, std::span<const std::byte>(*bytes));
}

}  // namespace hearth::onnx
