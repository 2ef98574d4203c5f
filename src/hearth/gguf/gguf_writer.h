// GgufWriter: builds a GGUF v3 file (metadata, tensor infos, aligned data) and writes it
// atomically. Round-trips with parse_gguf. Used by tests, quantize and the tools.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/core/tensor_type.h"
#include "hearth/gguf/gguf.h"

namespace hearth::gguf {

class GgufWriter {
 public:
  GgufWriter() = default;

  void set_u8(std::string key, uint8_t v);
  void set_i8(std::string key, int8_t v);
  void set_u16(std::string key, uint16_t v);
  void set_i16(std::string key, int16_t v);
  void set_u32(std::string key, uint32_t v);
  void set_i32(std::string key, int32_t v);
  void set_u64(std::string key, uint64_t v);
  void set_i64(std::string key, int64_t v);
  void set_f32(std::string key, float v);
  void set_f64(std::string key, double v);
  void set_bool(std::string key, bool v);
  void set_string(std::string key, std::string v);
  void set_array_strings(std::string key, std::vector<std::string> v);
  void set_array_f32(std::string key, std::vector<float> v);
  void set_array_i32(std::string key, std::vector<int32_t> v);
  void set_array_u32(std::string key, std::vector<uint32_t> v);
  // Any numeric element type, given its raw little-endian bytes.
  void set_array_raw(std::string key, ValueType elem_type, std::vector<std::byte> raw);
  // Copies a key/value from a parsed file (used by quantize to carry metadata over).
  void copy_kv(const KeyValue& kv);
  // Setting a key that exists replaces its value in place (order is kept).
  bool has_key(std::string_view key) const;
  void remove_key(std::string_view key);

  // Tensors: `data` must hold exactly the bytes the type and shape need; ne[0] is the row.
  // The data is referenced (not copied) until write(): it must stay alive.
  Status add_tensor(std::string name, TensorType type, std::vector<uint64_t> ne,
                    std::span<const std::byte> data);

  void set_alignment(uint32_t alignment);  // also writes general.alignment if not 32

  // Serializes to bytes (tests) or writes the file atomically (temp, fsync, rename).
  Result<std::vector<std::byte>> to_bytes() const;
  Status write(const std::string& path) const;
  // Streaming variant for large outputs: tensor data is produced on demand, in order.
  // (Implementations may use the same layout logic as to_bytes.)

 private:
  struct Kv {
    std::string key;
    ValueType type;
    std::vector<std::byte> payload;  // serialized value (without key and type)
  };
  struct Tensor {
    std::string name;
    TensorType type;
    std::vector<uint64_t> ne;
    std::span<const std::byte> data;
  };
  void put(std::string key, ValueType type, std::vector<std::byte> payload);
  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = kDefaultAlignment;
};

}  // namespace hearth::gguf
