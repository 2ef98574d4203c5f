// GGUF: a parser that is a pure function over bytes, plus a thin mmap wrapper.
// Spec: ggml/docs/gguf.md (v2 and v3; little-endian only). Every count, length and offset
// is validated against the bytes present before use; on bad input parse_gguf returns an
// error naming the file, the field and the bad value, and never aborts or throws.
//
// Error codes: kInvalidArgument for a malformed file (bad magic, unknown type id, bad shape,
// duplicate names, misaligned or overlapping tensors, a count above a hard cap), kDataLoss for
// a file that ends before the bytes it declares (truncation), kUnimplemented for a version
// hearth does not read (v1, v4+, big-endian), kResourceExhausted if memory runs out.
// Decisions beyond the spec: n_dims must be 1..4 (a tensor has at least one dimension);
// tensor names are 1..63 bytes (ggml's GGML_MAX_NAME); keys are 1..65535 bytes; bool values
// must be 0 or 1; arrays nest at most kMaxArrayDepth deep; tensors need not be contiguous or
// in offset order, but must be aligned, inside the file and must not overlap.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include "hearth/core/mapped_file.h"
#include "hearth/core/status.h"
#include "hearth/core/tensor_type.h"

namespace hearth::gguf {

// Metadata value type ids as stored in the file.
enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
std::string_view value_type_name(ValueType t);

// Hard caps on untrusted sizes (generous for real models, tight enough to stop a bomb).
inline constexpr uint64_t kMaxStringBytes = 64ull << 20;   // one string
inline constexpr uint64_t kMaxArrayElements = 1ull << 26;  // one array (67M; vocab sizes fit)
inline constexpr uint64_t kMaxKv = 1u << 20;               // metadata entries
inline constexpr uint64_t kMaxTensors = 1u << 20;
inline constexpr uint32_t kMaxDims = 4;
inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr uint64_t kMaxKeyBytes = 65535;
inline constexpr uint64_t kMaxTensorNameBytes = 63;
inline constexpr uint32_t kMaxArrayDepth = 4;  // arrays of arrays of ...
inline constexpr uint32_t kMaxSupportedVersion = 3;

// Bytes of one element of a fixed-size value type; 0 for STRING, ARRAY and unknown ids.
uint64_t value_type_size(ValueType t);

// An array value: element type plus the decoded elements (numeric arrays keep their raw
// little-endian bytes as a span into the file for zero-copy access; strings are decoded).
struct ArrayValue {
  ValueType elem_type = ValueType::UINT8;
  uint64_t count = 0;
  std::span<const std::byte> raw;         // numeric element bytes (count * elem size), in the file
  std::vector<std::string_view> strings;  // when elem_type == STRING (views into the file)
  // Nested arrays (arrays of arrays) are parsed and validated but not decoded: `raw` then
  // holds the nested elements' serialized bytes as in the file (so a writer can copy them).
};

using Value = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string_view,
                           ArrayValue, uint64_t, int64_t, double>;

struct KeyValue {
  std::string_view key;
  ValueType type;
  Value value;
};

struct TensorInfo {
  std::string_view name;
  TensorType type;
  uint32_t n_dims = 0;
  uint64_t ne[kMaxDims] = {1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
  uint64_t offset = 0;                   // relative to the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  std::span<const std::byte> data;  // the tensor's bytes inside the mapping
};

// A parsed GGUF file: views into the bytes it was parsed from (which must outlive it).
class GgufParser;

class GgufFile {
 public:
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  // Start of the data section: the tensor infos' end aligned up. Without tensors there is no
  // data section and this may lie past the end of the file.
  uint64_t data_offset() const { return data_offset_; }
  const std::string& name() const { return name_; }  // file name used in error messages

  const std::vector<KeyValue>& metadata() const { return kvs_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const KeyValue* find(std::string_view key) const;
  const TensorInfo* find_tensor(std::string_view name) const;

  // Typed access. NotFound when the key is missing; InvalidArgument ("wrong type") when the
  // stored type differs. Integer getters accept any integer type whose value fits.
  Result<uint64_t> get_uint(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<float> get_f32(std::string_view key) const;  // FLOAT32 or FLOAT64
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string_view> get_string(std::string_view key) const;
  Result<const ArrayValue*> get_array(std::string_view key, ValueType elem_type) const;

 private:
  friend class GgufParser;
  Result<const KeyValue*> require(std::string_view key) const;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::string name_;
  std::vector<KeyValue> kvs_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

// Parses `bytes` (the whole file). `name` is used in error messages.
Result<GgufFile> parse_gguf(std::span<const std::byte> bytes, std::string_view name);

// A mapped, parsed file. Owns the mapping, so the views in file() stay valid.
class GgufModelFile {
 public:
  static Result<std::unique_ptr<GgufModelFile>> open(const std::string& path);
  const GgufFile& file() const { return file_; }
  const MappedFile& mapping() const { return map_; }
  const std::string& path() const { return map_.path(); }

 private:
  MappedFile map_;
  GgufFile file_;
};

// Reads numeric array element i (little-endian) with bounds already validated by the parser.
// Precondition (a programmer error otherwise): i < a.count and sizeof(T) is the element size.
template <typename T>
T array_element(const ArrayValue& a, uint64_t i) {
  static_assert(std::is_trivially_copyable_v<T>);
  assert(i < a.count && (i + 1) * sizeof(T) <= a.raw.size());
  T v;
  std::memcpy(&v, a.raw.data() + i * sizeof(T), sizeof(T));
  return v;
}

}  // namespace hearth::gguf
