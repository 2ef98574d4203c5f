// GgufWriter: builds a GGUF v3 file (metadata, tensor infos, aligned data) and writes it
// atomically. Round-trips with parse_gguf. Used by tests, quantize and the tools.
// Layout: header, kvs in insertion order, tensor infos in insertion order, zero padding to the
// alignment, then each tensor's bytes followed by zero padding to the alignment (as ggml does).
// A file without tensors ends right after the metadata (no padding), as the reference writes it.
// Invalid input to the void setters (an empty key, bad raw array) is reported by the next
// to_bytes()/write()/write_streaming() call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
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
  Status add_tensor(std::string name, TensorType type, std::vector<uint64_t> ne, std::span<const std::byte> data);
  // Declares a tensor whose bytes are supplied later by write_streaming's source (for outputs
  // too large to hold in memory, e.g. quantize). to_bytes()/write() refuse such tensors.
  Status add_tensor_info(std::string name, TensorType type, std::vector<uint64_t> ne);
  size_t tensor_count() const { return tensors_.size(); }
  uint64_t tensor_bytes(size_t index) const { return tensors_[index].n_bytes; }

  // Sets the alignment; general.alignment is written when it is not 32. Setting the key
  // general.alignment (uint32) directly, or copying it with copy_kv, has the same effect.
  void set_alignment(uint32_t alignment);
  uint32_t alignment() const { return alignment_; }

  // Serializes to bytes (tests) or writes the file atomically (temp, fsync, rename).
  Result<std::vector<std::byte>> to_bytes() const;
  Status write(const std::string& path) const;
  // Streaming variant for large outputs: tensor data is produced on demand, in order.
  // `source(i)` is called once for each tensor i declared with add_tensor_info, in index order,
  // and must return exactly tensor_bytes(i) bytes, valid until the next call. Tensors added
  // with data are written from that data. An error from the source aborts the write and
  // leaves any previous file at `path` untouched.
  using TensorSource = std::function<Result<std::span<const std::byte>>(size_t tensor_index)>;
  Status write_streaming(const std::string& path, const TensorSource& source) const;
  // Total size in bytes of the file that write() would produce.
  Result<uint64_t> file_size() const;

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
    uint64_t n_bytes = 0;
    bool has_data = false;
  };
  // The serialized header (up to the aligned data start) and each tensor's data offset.
  struct Layout {
    std::vector<std::byte> head;
    std::vector<uint64_t> offsets;  // relative to the data section
    uint64_t total = 0;
  };
  void put(std::string key, ValueType type, std::vector<std::byte> payload);
  Result<Tensor> make_tensor(std::string name, TensorType type, std::vector<uint64_t> ne) const;
  Result<Layout> layout() const;
  Status write_impl(const std::string& path, const TensorSource* source) const;
  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = kDefaultAlignment;
  Status deferred_;  // first error from a void setter
};

}  // namespace hearth::gguf
