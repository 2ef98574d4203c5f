// GgufFile lookups and typed metadata access, and GgufModelFile (mmap + parse).
#include <limits>
#include <new>
#include <string>

#include "hearth/gguf/gguf.h"

namespace hearth::gguf {

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "uint8";
    case ValueType::INT8: return "int8";
    case ValueType::UINT16: return "uint16";
    case ValueType::INT16: return "int16";
    case ValueType::UINT32: return "uint32";
    case ValueType::INT32: return "int32";
    case ValueType::FLOAT32: return "float32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::UINT64: return "uint64";
    case ValueType::INT64: return "int64";
    case ValueType::FLOAT64: return "float64";
  }
  return "unknown";
}

uint64_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::BOOL: return 1;
    case ValueType::UINT16:
    case ValueType::INT16: return 2;
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::FLOAT32: return 4;
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64: return 8;
    case ValueType::STRING:
    case ValueType::ARRAY: return 0;
  }
  return 0;
}

namespace {

// An integer metadata value widened without loss; nullopt for non-integer types.
std::optional<__int128> integer_value(const Value& v) {
  return std::visit(
      [](const auto& x) -> std::optional<__int128> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          return static_cast<__int128>(x);
        } else {
          return std::nullopt;
        }
      },
      v);
}

std::string int128_string(__int128 v) {
  if (v >= 0) return std::to_string(static_cast<uint64_t>(v));
  std::string s = "-";  // (not "-" + ...: GCC 12 warns -Wrestrict on that spuriously)
  s += std::to_string(static_cast<uint64_t>(-v));
  return s;
}

}  // namespace

const KeyValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second];
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Result<const KeyValue*> GgufFile::require(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return make_error(ErrorCode::kNotFound, "{}: key '{}' is missing", name_, key);
  return kv;
}

namespace {

template <typename Out>
Result<Out> get_integer(const GgufFile& f, const KeyValue& kv) {
  auto v = integer_value(kv.value);
  if (!v) {
    return make_error(ErrorCode::kInvalidArgument, "{}: key '{}' has the wrong type {}, expected an integer", f.name(),
                      kv.key, value_type_name(kv.type));
  }
  if (*v < static_cast<__int128>(std::numeric_limits<Out>::min()) ||
      *v > static_cast<__int128>(std::numeric_limits<Out>::max())) {
    return make_error(ErrorCode::kInvalidArgument, "{}: key '{}' value {} does not fit {}{}", f.name(), kv.key,
                      int128_string(*v), std::is_signed_v<Out> ? "int" : "uint", sizeof(Out) * 8);
  }
  return static_cast<Out>(*v);
}

Status wrong_type(const GgufFile& f, const KeyValue& kv, std::string_view expected) {
  return make_error(ErrorCode::kInvalidArgument, "{}: key '{}' has the wrong type {}, expected {}", f.name(), kv.key,
                    value_type_name(kv.type), expected);
}

}  // namespace

Result<uint64_t> GgufFile::get_uint(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const KeyValue* kv, require(key));
  return get_integer<uint64_t>(*this, *kv);
}

Result<int64_t> GgufFile::get_int(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const KeyValue* kv, require(key));
  return get_integer<int64_t>(*this, *kv);
}

Result<uint32_t> GgufFile::get_u32(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const KeyValue* kv, require(key));
  return get_integer<uint32_t>(*this, *kv);
}

Result<float> GgufFile::get_f32(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const KeyValue* kv, require(key));
  if (kv->type == ValueType::FLOAT32) return std::get<float>(kv->value);
  if (kv->type == ValueType::FLOAT64) return static_cast<float>(std::get<double>(kv->value));
  return wrong_type(*this, *kv, "float32 or float64");
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const KeyValue* kv, require(key));
  if (kv->type != ValueType::BOOL) return wrong_type(*this, *kv, "bool");
  return std::get<bool>(kv->value);
}

Result<std::string_view> GgufFile::get_string(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const KeyValue* kv, require(key));
  if (kv->type != ValueType::STRING) return wrong_type(*this, *kv, "string");
  return std::get<std::string_view>(kv->value);
}

Result<const ArrayValue*> GgufFile::get_array(std::string_view key, ValueType elem_type) const {
  HEARTH_ASSIGN_OR_RETURN(const KeyValue* kv, require(key));
  if (kv->type != ValueType::ARRAY) {
    return wrong_type(*this, *kv, "array of " + std::string(value_type_name(elem_type)));
  }
  const auto& a = std::get<ArrayValue>(kv->value);
  if (a.elem_type != elem_type) {
    return make_error(ErrorCode::kInvalidArgument, "{}: key '{}' has the wrong type array of {}, expected array of {}",
                      name_, key, value_type_name(a.elem_type), value_type_name(elem_type));
  }
  return &a;
}

Result<std::unique_ptr<GgufModelFile>> GgufModelFile::open(const std::string& path) {
  try {
    auto model = std::unique_ptr<GgufModelFile>(new GgufModelFile());
    HEARTH_ASSIGN_OR_RETURN(model->map_, MappedFile::open(path));
    // The mapping's address does not change when MappedFile moves, so the views stay valid.
    HEARTH_ASSIGN_OR_RETURN(model->file_, parse_gguf(model->map_.bytes(), path));
    return model;
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "{}: out of memory while opening gguf", path);
  }
}

}  // namespace hearth::gguf
