// parse_gguf: the GGUF reader. Layout (ggml/docs/gguf.md, v2/v3, little-endian):
//   magic "GGUF", u32 version, u64 n_tensors, u64 n_kv,
//   n_kv × { string key, u32 value_type, value },
//   n_tensors × { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset },
//   zero padding to `general.alignment` (default 32), then the data section.
// A string is { u64 length, bytes }; an array is { u32 elem_type, u64 count, elements }.
// Every count and length is checked against caps and against the bytes remaining before anything
// is allocated or read.
#include <algorithm>
#include <exception>
#include <new>
#include <numeric>
#include <string>

#include "hearth/core/checked_math.h"
#include "hearth/gguf/byte_cursor.h"
#include "hearth/gguf/gguf.h"

namespace hearth::gguf {
namespace {

// The smallest possible serialized entries, used to bound header counts by the bytes present.
constexpr uint64_t kMinStringBytes = 8;                          // u64 length, empty payload
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;                  // key of 1 byte, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name of 1 byte, 1 dim
constexpr uint64_t kMinNestedArrayBytes = 4 + 8;                 // elem_type, count

constexpr uint64_t kInt64Max = static_cast<uint64_t>(INT64_MAX);

std::string hex32(uint32_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) s.push_back(kDigits[(v >> shift) & 0xf]);
  return s;
}

std::string shape_string(const uint64_t* ne, uint32_t n) {
  std::string s = "[";
  for (uint32_t i = 0; i < n; ++i) {
    if (i) s += ", ";
    s += std::to_string(ne[i]);
  }
  return s + "]";
}

// Makes a key or name printable in an error message (hostile bytes, bounded length).
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 80)) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (s.size() > 80) out += "...";
  return out;
}

bool is_known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::FLOAT64); }

}  // namespace

class GgufParser {
 public:
  GgufParser(std::span<const std::byte> bytes, std::string_view name) : bytes_(bytes), cur_(bytes), name_(name) {}

  Result<GgufFile> run() {
    file_.name_ = std::string(name_);
    HEARTH_TRY(read_header());
    HEARTH_TRY(read_kvs());
    HEARTH_TRY(read_tensor_infos());
    HEARTH_TRY(place_tensors());
    return std::move(file_);
  }

 private:
  template <typename... Args>
  Status fail(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) const {
    return make_error(code, "{}: {}: {}", name_, ctx_, fmt::vformat(format, fmt::make_format_args(args...)));
  }

  Status truncated(std::string_view what, uint64_t need) const {
    return fail(ErrorCode::kDataLoss, "file is truncated: {} needs {} bytes at offset {} but only {} remain", what,
                need, cur_.pos(), cur_.remaining());
  }

  template <typename T>
  Status read(T& out, std::string_view what) {
    if (!cur_.read(out)) return truncated(what, sizeof(T));
    return {};
  }

  // Reads a string. `what` names it in errors, with `index` appended when it is an array element
  // (the label is only built on failure: this is the hot path for vocabularies).
  Status read_string(std::string_view& out, uint64_t cap, std::string_view what, int64_t index = -1) {
    auto label = [&] { return index >= 0 ? fmt::format("{} {}", what, index) : std::string(what); };
    uint64_t len = 0;
    if (!cur_.read(len)) return truncated(label() + " length", sizeof(len));
    if (len > cap) {
      return fail(ErrorCode::kInvalidArgument, "{} length {} exceeds the limit of {} bytes", label(), len, cap);
    }
    std::span<const std::byte> b;
    if (!cur_.take(len, b)) return truncated(fmt::format("{} of length {}", label(), len), len);
    out = std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
    return {};
  }

  Status read_header() {
    ctx_ = "header";
    if (bytes_.empty()) return fail(ErrorCode::kInvalidArgument, "file is empty (0 bytes), not a gguf file");
    static constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
    size_t n = std::min<size_t>(4, bytes_.size());
    if (std::memcmp(bytes_.data(), kMagic, n) != 0) {
      uint32_t magic = 0;
      std::memcpy(&magic, bytes_.data(), n);
      return fail(ErrorCode::kInvalidArgument, "bad magic {} (expected 'GGUF'); not a gguf file", hex32(magic));
    }
    if (bytes_.size() < 4) return truncated("magic", 4);
    uint32_t magic_word;
    HEARTH_TRY(read(magic_word, "magic"));
    uint32_t version = 0;
    HEARTH_TRY(read(version, "version"));
    if (version == 0) return fail(ErrorCode::kInvalidArgument, "invalid version 0");
    if (version == 1) {
      return fail(ErrorCode::kUnimplemented,
                  "version 1 is obsolete and not supported (hearth reads versions 2 and 3); re-convert the model");
    }
    if (version > kMaxSupportedVersion) {
      uint32_t swapped = __builtin_bswap32(version);
      if (swapped >= 1 && swapped <= kMaxSupportedVersion) {
        return fail(ErrorCode::kUnimplemented, "big-endian gguf (version field {}) is not supported", hex32(version));
      }
      return fail(ErrorCode::kUnimplemented, "version {} is newer than hearth supports (versions 2 and 3)", version);
    }
    file_.version_ = version;
    HEARTH_TRY(read(n_tensors_, "n_tensors"));
    HEARTH_TRY(read(n_kv_, "n_kv"));
    if (n_tensors_ > kMaxTensors) {
      return fail(ErrorCode::kInvalidArgument, "n_tensors {} exceeds the limit of {}", n_tensors_, kMaxTensors);
    }
    if (n_kv_ > kMaxKv) {
      return fail(ErrorCode::kInvalidArgument, "n_kv {} exceeds the limit of {}", n_kv_, kMaxKv);
    }
    // Both counts are capped at 2^20, so this cannot overflow.
    uint64_t need = n_kv_ * kMinKvBytes + n_tensors_ * kMinTensorInfoBytes;
    if (need > cur_.remaining()) {
      return fail(ErrorCode::kDataLoss,
                  "file is truncated: n_kv {} and n_tensors {} need at least {} bytes but only {} remain", n_kv_,
                  n_tensors_, need, cur_.remaining());
    }
    return {};
  }

  Status read_kvs() {
    file_.kvs_.reserve(static_cast<size_t>(n_kv_));
    file_.kv_index_.reserve(static_cast<size_t>(n_kv_));
    for (uint64_t i = 0; i < n_kv_; ++i) {
      ctx_ = fmt::format("kv #{}", i);
      KeyValue kv;
      HEARTH_TRY(read_string(kv.key, kMaxKeyBytes, "key"));
      if (kv.key.empty()) return fail(ErrorCode::kInvalidArgument, "empty key");
      ctx_ = "kv '" + printable(kv.key) + "'";
      if (auto it = file_.kv_index_.find(kv.key); it != file_.kv_index_.end()) {
        return fail(ErrorCode::kInvalidArgument, "duplicate key (first defined at kv #{})", it->second);
      }
      uint32_t type = 0;
      HEARTH_TRY(read(type, "value type"));
      if (!is_known_value_type(type)) {
        return fail(ErrorCode::kInvalidArgument, "unknown value type {}", type);
      }
      kv.type = static_cast<ValueType>(type);
      HEARTH_TRY(read_value(kv.type, kv.value));
      if (kv.key == "general.alignment") HEARTH_TRY(check_alignment(kv));
      file_.kv_index_.emplace(kv.key, file_.kvs_.size());
      file_.kvs_.push_back(std::move(kv));
    }
    return {};
  }

  Status check_alignment(const KeyValue& kv) {
    if (kv.type != ValueType::UINT32) {
      return fail(ErrorCode::kInvalidArgument, "general.alignment has type {}, expected uint32",
                  value_type_name(kv.type));
    }
    uint32_t a = std::get<uint32_t>(kv.value);
    if (a == 0) return fail(ErrorCode::kInvalidArgument, "general.alignment is 0; it must be a power of two");
    if ((a & (a - 1)) != 0) {
      return fail(ErrorCode::kInvalidArgument, "general.alignment {} is not a power of two", a);
    }
    file_.alignment_ = a;
    return {};
  }

  template <typename T>
  Status read_scalar(Value& out, std::string_view what) {
    T v{};
    HEARTH_TRY(read(v, what));
    out = v;
    return {};
  }

  Status read_value(ValueType type, Value& out) {
    switch (type) {
      case ValueType::UINT8: return read_scalar<uint8_t>(out, "uint8 value");
      case ValueType::INT8: return read_scalar<int8_t>(out, "int8 value");
      case ValueType::UINT16: return read_scalar<uint16_t>(out, "uint16 value");
      case ValueType::INT16: return read_scalar<int16_t>(out, "int16 value");
      case ValueType::UINT32: return read_scalar<uint32_t>(out, "uint32 value");
      case ValueType::INT32: return read_scalar<int32_t>(out, "int32 value");
      case ValueType::FLOAT32: return read_scalar<float>(out, "float32 value");
      case ValueType::UINT64: return read_scalar<uint64_t>(out, "uint64 value");
      case ValueType::INT64: return read_scalar<int64_t>(out, "int64 value");
      case ValueType::FLOAT64: return read_scalar<double>(out, "float64 value");
      case ValueType::BOOL: {
        uint8_t b = 0;
        HEARTH_TRY(read(b, "bool value"));
        if (b > 1) return fail(ErrorCode::kInvalidArgument, "bool value {} is not 0 or 1", b);
        out = (b == 1);
        return {};
      }
      case ValueType::STRING: {
        std::string_view s;
        HEARTH_TRY(read_string(s, kMaxStringBytes, "string"));
        out = s;
        return {};
      }
      case ValueType::ARRAY: {
        ArrayValue a;
        HEARTH_TRY(read_array(a, 1));
        out = std::move(a);
        return {};
      }
    }
    return fail(ErrorCode::kInvalidArgument, "unknown value type {}", static_cast<uint32_t>(type));
  }

  // Reads { u32 elem_type, u64 count, elements } at nesting `depth` (1 = a top-level array).
  Status read_array(ArrayValue& out, uint32_t depth) {
    uint32_t elem = 0;
    HEARTH_TRY(read(elem, "array element type"));
    if (!is_known_value_type(elem)) {
      return fail(ErrorCode::kInvalidArgument, "unknown array element type {}", elem);
    }
    out.elem_type = static_cast<ValueType>(elem);
    HEARTH_TRY(read(out.count, "array length"));
    if (out.count > kMaxArrayElements) {
      return fail(ErrorCode::kInvalidArgument, "array length {} exceeds the limit of {}", out.count, kMaxArrayElements);
    }
    auto what = [&] { return fmt::format("array of {} {}", out.count, value_type_name(out.elem_type)); };
    // count <= 2^26, so count * (element or minimal entry size <= 12) cannot overflow.
    if (uint64_t size = value_type_size(out.elem_type); size > 0) {
      if (!cur_.take(out.count * size, out.raw)) return truncated(what(), out.count * size);
      if (out.elem_type == ValueType::BOOL) {
        for (uint64_t i = 0; i < out.count; ++i) {
          auto b = static_cast<uint8_t>(out.raw[i]);
          if (b > 1) {
            return fail(ErrorCode::kInvalidArgument, "bool array element {} is {}, not 0 or 1", i, b);
          }
        }
      }
      return {};
    }
    if (out.elem_type == ValueType::STRING) {
      if (out.count * kMinStringBytes > cur_.remaining()) return truncated(what(), out.count * kMinStringBytes);
      out.strings.reserve(static_cast<size_t>(out.count));
      for (uint64_t i = 0; i < out.count; ++i) {
        std::string_view s;
        HEARTH_TRY(read_string(s, kMaxStringBytes, "string array element", static_cast<int64_t>(i)));
        out.strings.push_back(s);
      }
      return {};
    }
    // Arrays of arrays: validated, then exposed only as their raw bytes.
    if (depth >= kMaxArrayDepth) {
      return fail(ErrorCode::kInvalidArgument, "arrays are nested deeper than the limit of {}", kMaxArrayDepth);
    }
    if (out.count * kMinNestedArrayBytes > cur_.remaining()) return truncated(what(), out.count * kMinNestedArrayBytes);
    uint64_t start = cur_.pos();
    for (uint64_t i = 0; i < out.count; ++i) {
      ArrayValue nested;
      HEARTH_TRY(read_array(nested, depth + 1));
    }
    out.raw = cur_.since(start);
    return {};
  }

  Status read_tensor_infos() {
    file_.tensors_.reserve(static_cast<size_t>(n_tensors_));
    file_.tensor_index_.reserve(static_cast<size_t>(n_tensors_));
    for (uint64_t i = 0; i < n_tensors_; ++i) {
      ctx_ = fmt::format("tensor #{}", i);
      TensorInfo t;
      HEARTH_TRY(read_string(t.name, kMaxTensorNameBytes, "tensor name"));
      if (t.name.empty()) return fail(ErrorCode::kInvalidArgument, "empty tensor name");
      ctx_ = "tensor '" + printable(t.name) + "'";
      if (auto it = file_.tensor_index_.find(t.name); it != file_.tensor_index_.end()) {
        return fail(ErrorCode::kInvalidArgument, "duplicate tensor name (first defined at tensor #{})", it->second);
      }
      HEARTH_TRY(read_tensor_shape(t));
      HEARTH_TRY(read_tensor_type(t));
      HEARTH_TRY(read(t.offset, "tensor data offset"));
      if (t.offset % file_.alignment_ != 0) {
        return fail(ErrorCode::kInvalidArgument, "data offset {} is not a multiple of the alignment {}", t.offset,
                    file_.alignment_);
      }
      file_.tensor_index_.emplace(t.name, file_.tensors_.size());
      file_.tensors_.push_back(t);
    }
    return {};
  }

  Status read_tensor_shape(TensorInfo& t) {
    HEARTH_TRY(read(t.n_dims, "n_dims"));
    if (t.n_dims == 0) {
      return fail(ErrorCode::kInvalidArgument, "n_dims is 0; a tensor needs at least one dimension");
    }
    if (t.n_dims > kMaxDims) {
      return fail(ErrorCode::kInvalidArgument, "n_dims {} exceeds the maximum of {}", t.n_dims, kMaxDims);
    }
    uint64_t n = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      HEARTH_TRY(read(t.ne[d], "dimension"));
      if (t.ne[d] == 0) return fail(ErrorCode::kInvalidArgument, "dimension {} is 0", d);
      if (t.ne[d] > kInt64Max) {
        return fail(ErrorCode::kInvalidArgument, "dimension {} is {} (negative as int64)", d, t.ne[d]);
      }
    }
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      auto m = checked_mul(n, t.ne[d]);
      if (!m || *m > kInt64Max) {
        return fail(ErrorCode::kInvalidArgument, "element count of shape {} overflows int64",
                    shape_string(t.ne, t.n_dims));
      }
      n = *m;
    }
    t.n_elements = n;
    return {};
  }

  Status read_tensor_type(TensorInfo& t) {
    uint32_t type_id = 0;
    HEARTH_TRY(read(type_id, "tensor type"));
    auto traits = tensor_type_traits(type_id);
    if (!traits) return fail(ErrorCode::kInvalidArgument, "unknown tensor type id {}", type_id);
    t.type = static_cast<TensorType>(type_id);
    if (t.ne[0] % traits->block_size != 0) {
      return fail(ErrorCode::kInvalidArgument, "row of {} is not a multiple of block size {} ({})", t.ne[0],
                  traits->block_size, traits->name);
    }
    // (ne[0] / block_size) * type_size * ne[1] * ...: can overflow even when the element count does not.
    std::optional<uint64_t> bytes = checked_mul<uint64_t>(t.ne[0] / traits->block_size, traits->type_size);
    for (uint32_t d = 1; bytes && d < t.n_dims; ++d) bytes = checked_mul(*bytes, t.ne[d]);
    if (!bytes) {
      return fail(ErrorCode::kInvalidArgument, "byte size of shape {} ({}) overflows", shape_string(t.ne, t.n_dims),
                  traits->name);
    }
    t.n_bytes = *bytes;
    return {};
  }

  // Computes the data section start and binds every tensor to its bytes, checking bounds and
  // overlaps.
  Status place_tensors() {
    ctx_ = "data section";
    auto start = checked_align_up(cur_.pos(), file_.alignment_);
    if (!start) return fail(ErrorCode::kInvalidArgument, "aligned data offset overflows");
    file_.data_offset_ = *start;
    if (file_.tensors_.empty()) return {};
    if (*start > bytes_.size()) {
      return fail(ErrorCode::kDataLoss,
                  "file is truncated: the data section starts at {}, past the end of the file ({} bytes)", *start,
                  bytes_.size());
    }
    const uint64_t data_size = bytes_.size() - *start;
    for (auto& t : file_.tensors_) {
      ctx_ = "tensor '" + printable(t.name) + "'";
      if (t.offset > data_size) {
        return fail(ErrorCode::kDataLoss,
                    "file is truncated: data offset {} is past the end of the data section ({} bytes)", t.offset,
                    data_size);
      }
      if (t.n_bytes > data_size - t.offset) {
        return fail(ErrorCode::kDataLoss,
                    "file is truncated: data [{}, +{}) ends past the end of the data section ({} bytes)", t.offset,
                    t.n_bytes, data_size);
      }
      t.data = bytes_.subspan(static_cast<size_t>(*start + t.offset), static_cast<size_t>(t.n_bytes));
    }
    std::vector<size_t> order(file_.tensors_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return file_.tensors_[a].offset < file_.tensors_[b].offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      const TensorInfo& prev = file_.tensors_[order[k - 1]];
      const TensorInfo& t = file_.tensors_[order[k]];
      // Both ranges were checked to lie inside the file, so offset + n_bytes cannot overflow.
      if (prev.offset + prev.n_bytes > t.offset) {
        ctx_ = "tensor '" + printable(t.name) + "'";
        return fail(ErrorCode::kInvalidArgument, "data [{}, {}) overlaps tensor '{}' [{}, {})", t.offset,
                    t.offset + t.n_bytes, printable(prev.name), prev.offset, prev.offset + prev.n_bytes);
      }
    }
    return {};
  }

  std::span<const std::byte> bytes_;
  ByteCursor cur_;
  std::string_view name_;
  std::string ctx_;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
  GgufFile file_;
};

Result<GgufFile> parse_gguf(std::span<const std::byte> bytes, std::string_view name) {
  // No container may let an exception escape: the only one possible here is bad_alloc.
  try {
    GgufParser parser(bytes, name);
    return parser.run();
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "{}: out of memory while parsing gguf metadata", name);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, "{}: unexpected error while parsing gguf: {}", name, e.what());
  }
}

}  // namespace hearth::gguf
