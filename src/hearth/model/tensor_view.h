// TensorView: a non-owning view of a weight tensor inside the mapped model file, and the
// WeightBinder that creates views by name with a required shape and type set, validating at
// load time so that the forward pass can trust them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>

#include "hearth/core/status.h"
#include "hearth/core/tensor_type.h"
#include "hearth/gguf/gguf.h"

namespace hearth::model {

struct TensorView {
  TensorType type = TensorType::F32;
  int64_t ne[4] = {0, 0, 0, 0};  // ne[0] is the row length
  const std::byte* data = nullptr;
  size_t nb1 = 0;  // bytes per row
  size_t nb2 = 0;  // bytes per matrix (ne[0] x ne[1])
  // A kernel table's repacked copy of this weight (Model::repack), valid only for the table
  // named packed_isa; packed_nb2 bytes per matrix.
  const std::byte* packed = nullptr;
  size_t packed_nb2 = 0;
  std::string_view packed_isa;

  bool valid() const { return data != nullptr; }
  const float* f32() const { return reinterpret_cast<const float*>(data); }
  const std::byte* row(int64_t i) const { return data + static_cast<size_t>(i) * nb1; }
  // The i2-th matrix of a 3-D tensor (one expert of an *_exps tensor).
  TensorView matrix(int64_t i2) const;
};

// Which types a weight may have.
enum class WeightKind {
  kMatrix,     // used in a matmul: any type with a reference dot product
  kEmbedding,  // rows are dequantized: any type with a reference dequantize
  kVector,     // norms and biases: F32 only
};

class WeightBinder {
 public:
  explicit WeightBinder(const gguf::GgufFile& file) : file_(file) {}

  // The tensor `name` with exactly the given shape (trailing dims omitted are 1).
  Result<TensorView> require(const std::string& name, std::initializer_list<int64_t> shape, WeightKind kind);
  // As require(), but an absent tensor gives an invalid view instead of an error.
  Result<TensorView> optional(const std::string& name, std::initializer_list<int64_t> shape, WeightKind kind);
  bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }
  // Names of tensors in the file that no binding used.
  std::set<std::string> unused() const;

 private:
  const gguf::GgufFile& file_;
  std::set<std::string, std::less<>> used_;
};

std::string shape_string(const int64_t* ne, int n);

}  // namespace hearth::model
