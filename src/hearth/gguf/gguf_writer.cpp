// GgufWriter: serializes metadata and tensor infos, then streams tensor data with zero padding.
#include "hearth/gguf/gguf_writer.h"

#include <cstring>
#include <new>

#include "hearth/core/atomic_file.h"
#include "hearth/core/checked_math.h"

namespace hearth::gguf {
namespace {

constexpr uint32_t kWriteVersion = 3;
constexpr uint64_t kInt64Max = static_cast<uint64_t>(INT64_MAX);
constexpr std::byte kZeros[256] = {};

// resize + memcpy rather than vector::insert, which trips a GCC 12 -Wstringop-overflow false positive.
void append_bytes(std::vector<std::byte>& out, const void* p, size_t n) {
  if (n == 0) return;
  size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}

template <typename T>
void append(std::vector<std::byte>& out, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  append_bytes(out, &v, sizeof(T));
}

void append_string(std::vector<std::byte>& out, std::string_view s) {
  append<uint64_t>(out, s.size());
  append_bytes(out, s.data(), s.size());
}

template <typename T>
std::vector<std::byte> scalar_payload(T v) {
  std::vector<std::byte> out;
  append(out, v);
  return out;
}

template <typename T>
std::vector<std::byte> numeric_array_payload(ValueType elem, const std::vector<T>& v) {
  std::vector<std::byte> out;
  append<uint32_t>(out, static_cast<uint32_t>(elem));
  append<uint64_t>(out, v.size());
  append_bytes(out, v.data(), v.size() * sizeof(T));
  return out;
}

bool is_power_of_two(uint32_t a) { return a != 0 && (a & (a - 1)) == 0; }

// Writes `n` zero bytes.
Status write_zeros(AtomicFileWriter& w, uint64_t n) {
  while (n > 0) {
    uint64_t chunk = std::min<uint64_t>(n, sizeof(kZeros));
    HEARTH_TRY(w.write(std::span<const std::byte>(kZeros, static_cast<size_t>(chunk))));
    n -= chunk;
  }
  return {};
}

}  // namespace

void GgufWriter::put(std::string key, ValueType type, std::vector<std::byte> payload) {
  if (key.empty() && deferred_.ok()) {
    deferred_ = make_error(ErrorCode::kInvalidArgument, "gguf writer: empty metadata key");
  }
  if (key.size() > kMaxKeyBytes && deferred_.ok()) {
    deferred_ = make_error(ErrorCode::kInvalidArgument, "gguf writer: key of {} bytes exceeds the limit of {}",
                           key.size(), kMaxKeyBytes);
  }
  if (key == "general.alignment") {
    if (type == ValueType::UINT32 && payload.size() == 4) {
      std::memcpy(&alignment_, payload.data(), 4);
    } else if (deferred_.ok()) {
      deferred_ = make_error(ErrorCode::kInvalidArgument, "gguf writer: general.alignment must be uint32, not {}",
                             value_type_name(type));
    }
  }
  for (auto& kv : kvs_) {
    if (kv.key == key) {
      kv.type = type;
      kv.payload = std::move(payload);
      return;
    }
  }
  kvs_.push_back(Kv{std::move(key), type, std::move(payload)});
}

void GgufWriter::set_u8(std::string key, uint8_t v) { put(std::move(key), ValueType::UINT8, scalar_payload(v)); }
void GgufWriter::set_i8(std::string key, int8_t v) { put(std::move(key), ValueType::INT8, scalar_payload(v)); }
void GgufWriter::set_u16(std::string key, uint16_t v) { put(std::move(key), ValueType::UINT16, scalar_payload(v)); }
void GgufWriter::set_i16(std::string key, int16_t v) { put(std::move(key), ValueType::INT16, scalar_payload(v)); }
void GgufWriter::set_u32(std::string key, uint32_t v) { put(std::move(key), ValueType::UINT32, scalar_payload(v)); }
void GgufWriter::set_i32(std::string key, int32_t v) { put(std::move(key), ValueType::INT32, scalar_payload(v)); }
void GgufWriter::set_u64(std::string key, uint64_t v) { put(std::move(key), ValueType::UINT64, scalar_payload(v)); }
void GgufWriter::set_i64(std::string key, int64_t v) { put(std::move(key), ValueType::INT64, scalar_payload(v)); }
void GgufWriter::set_f32(std::string key, float v) { put(std::move(key), ValueType::FLOAT32, scalar_payload(v)); }
void GgufWriter::set_f64(std::string key, double v) { put(std::move(key), ValueType::FLOAT64, scalar_payload(v)); }
void GgufWriter::set_bool(std::string key, bool v) {
  put(std::move(key), ValueType::BOOL, scalar_payload<uint8_t>(v ? 1 : 0));
}

void GgufWriter::set_string(std::string key, std::string v) {
  std::vector<std::byte> p;
  append_string(p, v);
  put(std::move(key), ValueType::STRING, std::move(p));
}

void GgufWriter::set_array_strings(std::string key, std::vector<std::string> v) {
  std::vector<std::byte> p;
  append<uint32_t>(p, static_cast<uint32_t>(ValueType::STRING));
  append<uint64_t>(p, v.size());
  for (const auto& s : v) append_string(p, s);
  put(std::move(key), ValueType::ARRAY, std::move(p));
}

void GgufWriter::set_array_f32(std::string key, std::vector<float> v) {
  put(std::move(key), ValueType::ARRAY, numeric_array_payload(ValueType::FLOAT32, v));
}
void GgufWriter::set_array_i32(std::string key, std::vector<int32_t> v) {
  put(std::move(key), ValueType::ARRAY, numeric_array_payload(ValueType::INT32, v));
}
void GgufWriter::set_array_u32(std::string key, std::vector<uint32_t> v) {
  put(std::move(key), ValueType::ARRAY, numeric_array_payload(ValueType::UINT32, v));
}

void GgufWriter::set_array_raw(std::string key, ValueType elem_type, std::vector<std::byte> raw) {
  uint64_t size = value_type_size(elem_type);
  if (size == 0 || raw.size() % size != 0) {
    if (deferred_.ok()) {
      deferred_ = make_error(ErrorCode::kInvalidArgument, "gguf writer: key '{}': {} raw bytes are not an array of {}",
                             key, raw.size(), value_type_name(elem_type));
    }
    return;
  }
  std::vector<std::byte> p;
  append<uint32_t>(p, static_cast<uint32_t>(elem_type));
  append<uint64_t>(p, raw.size() / size);
  append_bytes(p, raw.data(), raw.size());
  put(std::move(key), ValueType::ARRAY, std::move(p));
}

void GgufWriter::copy_kv(const KeyValue& kv) {
  std::vector<std::byte> p;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          append_string(p, v);
        } else if constexpr (std::is_same_v<T, ArrayValue>) {
          append<uint32_t>(p, static_cast<uint32_t>(v.elem_type));
          append<uint64_t>(p, v.count);
          if (v.elem_type == ValueType::STRING) {
            for (auto s : v.strings) append_string(p, s);
          } else {
            append_bytes(p, v.raw.data(), v.raw.size());  // numeric or nested: bytes as in the file
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          append<uint8_t>(p, v ? 1 : 0);
        } else {
          append(p, v);
        }
      },
      kv.value);
  put(std::string(kv.key), kv.type, std::move(p));
}

bool GgufWriter::has_key(std::string_view key) const {
  for (const auto& kv : kvs_) {
    if (kv.key == key) return true;
  }
  return false;
}

void GgufWriter::remove_key(std::string_view key) {
  for (auto it = kvs_.begin(); it != kvs_.end(); ++it) {
    if (it->key == key) {
      kvs_.erase(it);
      break;
    }
  }
  if (key == "general.alignment") alignment_ = kDefaultAlignment;
}

void GgufWriter::set_alignment(uint32_t alignment) {
  if (alignment == kDefaultAlignment) {
    remove_key("general.alignment");
  } else {
    set_u32("general.alignment", alignment);
  }
  alignment_ = alignment;
}

Result<GgufWriter::Tensor> GgufWriter::make_tensor(std::string name, TensorType type, std::vector<uint64_t> ne) const {
  auto fail = [&]<typename... Args>(fmt::format_string<Args...> format, Args&&... args) {
    return make_error(ErrorCode::kInvalidArgument, "gguf writer: tensor '{}': {}", name,
                      fmt::vformat(format, fmt::make_format_args(args...)));
  };
  if (name.empty()) return make_error(ErrorCode::kInvalidArgument, "gguf writer: empty tensor name");
  if (name.size() > kMaxTensorNameBytes) {
    return fail("name of {} bytes exceeds the limit of {}", name.size(), kMaxTensorNameBytes);
  }
  for (const auto& t : tensors_) {
    if (t.name == name) return fail("duplicate tensor name");
  }
  auto traits = tensor_type_traits(static_cast<uint32_t>(type));
  if (!traits) return fail("unknown tensor type id {}", static_cast<uint32_t>(type));
  if (ne.empty() || ne.size() > kMaxDims) {
    return fail("n_dims {} is not in 1..{}", ne.size(), kMaxDims);
  }
  std::optional<uint64_t> count = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] == 0 || ne[d] > kInt64Max) return fail("dimension {} is {}", d, ne[d]);
    count = checked_mul(*count, ne[d]);
    if (!count || *count > kInt64Max) return fail("element count overflows int64");
  }
  if (ne[0] % traits->block_size != 0) {
    return fail("row of {} is not a multiple of block size {} ({})", ne[0], traits->block_size, traits->name);
  }
  std::optional<uint64_t> bytes = checked_mul<uint64_t>(ne[0] / traits->block_size, traits->type_size);
  for (size_t d = 1; bytes && d < ne.size(); ++d) bytes = checked_mul(*bytes, ne[d]);
  if (!bytes) return fail("byte size overflows");
  Tensor t;
  t.name = std::move(name);
  t.type = type;
  t.ne = std::move(ne);
  t.n_bytes = *bytes;
  return t;
}

Status GgufWriter::add_tensor(std::string name, TensorType type, std::vector<uint64_t> ne,
                              std::span<const std::byte> data) {
  HEARTH_ASSIGN_OR_RETURN(Tensor t, make_tensor(std::move(name), type, std::move(ne)));
  if (data.size() != t.n_bytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "gguf writer: tensor '{}': data has {} bytes but its type and shape need {}", t.name, data.size(),
                      t.n_bytes);
  }
  t.data = data;
  t.has_data = true;
  tensors_.push_back(std::move(t));
  return {};
}

Status GgufWriter::add_tensor_info(std::string name, TensorType type, std::vector<uint64_t> ne) {
  HEARTH_ASSIGN_OR_RETURN(Tensor t, make_tensor(std::move(name), type, std::move(ne)));
  tensors_.push_back(std::move(t));
  return {};
}

Result<GgufWriter::Layout> GgufWriter::layout() const {
  if (!deferred_.ok()) return deferred_;
  if (!is_power_of_two(alignment_)) {
    return make_error(ErrorCode::kInvalidArgument, "gguf writer: alignment {} is not a nonzero power of two",
                      alignment_);
  }
  Layout l;
  auto& h = l.head;
  append_bytes(h, "GGUF", 4);
  append<uint32_t>(h, kWriteVersion);
  append<uint64_t>(h, tensors_.size());
  append<uint64_t>(h, kvs_.size());
  for (const auto& kv : kvs_) {
    append_string(h, kv.key);
    append<uint32_t>(h, static_cast<uint32_t>(kv.type));
    append_bytes(h, kv.payload.data(), kv.payload.size());
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    append_string(h, t.name);
    append<uint32_t>(h, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) append<uint64_t>(h, d);
    append<uint32_t>(h, static_cast<uint32_t>(t.type));
    append<uint64_t>(h, offset);
    l.offsets.push_back(offset);
    auto next = checked_add(offset, t.n_bytes);
    if (next) next = checked_align_up(*next, alignment_);
    if (!next) return make_error(ErrorCode::kOutOfRange, "gguf writer: data section size overflows");
    offset = *next;
  }
  // A file without tensors has no data section, so (like the reference's vocab-only files) no padding.
  if (!tensors_.empty()) h.resize(static_cast<size_t>(*checked_align_up(h.size(), alignment_)), std::byte{0});
  auto total = checked_add<uint64_t>(h.size(), offset);
  if (!total) return make_error(ErrorCode::kOutOfRange, "gguf writer: file size overflows");
  l.total = *total;
  return l;
}

Result<uint64_t> GgufWriter::file_size() const {
  try {
    HEARTH_ASSIGN_OR_RETURN(Layout l, layout());
    return l.total;
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "gguf writer: out of memory");
  }
}

Result<std::vector<std::byte>> GgufWriter::to_bytes() const {
  try {
    HEARTH_ASSIGN_OR_RETURN(Layout l, layout());
    std::vector<std::byte> out = std::move(l.head);
    const uint64_t data_start = out.size();
    out.resize(static_cast<size_t>(l.total), std::byte{0});
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const Tensor& t = tensors_[i];
      if (!t.has_data) {
        return make_error(ErrorCode::kFailedPrecondition,
                          "gguf writer: tensor '{}' has no data (declared with add_tensor_info; use write_streaming)",
                          t.name);
      }
      if (!t.data.empty()) std::memcpy(out.data() + data_start + l.offsets[i], t.data.data(), t.data.size());
    }
    return out;
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "gguf writer: out of memory serializing the file");
  }
}

Status GgufWriter::write(const std::string& path) const { return write_impl(path, nullptr); }

Status GgufWriter::write_streaming(const std::string& path, const TensorSource& source) const {
  if (!source) return make_error(ErrorCode::kInvalidArgument, "gguf writer: write_streaming needs a source");
  return write_impl(path, &source);
}

Status GgufWriter::write_impl(const std::string& path, const TensorSource* source) const {
  try {
    if (source == nullptr) {
      for (const auto& t : tensors_) {
        if (!t.has_data) {
          return make_error(ErrorCode::kFailedPrecondition,
                            "gguf writer: tensor '{}' has no data (declared with add_tensor_info; use write_streaming)",
                            t.name);
        }
      }
    }
    HEARTH_ASSIGN_OR_RETURN(Layout l, layout());
    HEARTH_ASSIGN_OR_RETURN(AtomicFileWriter w, AtomicFileWriter::create(path));
    HEARTH_TRY(w.write(l.head));
    uint64_t pos = 0;  // relative to the data section
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const Tensor& t = tensors_[i];
      HEARTH_TRY(write_zeros(w, l.offsets[i] - pos));
      std::span<const std::byte> data = t.data;
      if (!t.has_data) {
        HEARTH_ASSIGN_OR_RETURN(data, (*source)(i));
        if (data.size() != t.n_bytes) {
          return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': the source gave {} bytes, expected {}", path,
                            t.name, data.size(), t.n_bytes);
        }
      }
      HEARTH_TRY(w.write(data));
      pos = l.offsets[i] + t.n_bytes;
    }
    HEARTH_TRY(write_zeros(w, l.total - l.head.size() - pos));
    return w.commit();
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "{}: out of memory writing gguf", path);
  }
}

}  // namespace hearth::gguf
