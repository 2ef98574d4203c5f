// Tensor: a dense, row-major n-d array of one element type, as ONNX values are at run time.
// The bytes live in a shared, 64-byte aligned buffer: views that only change the shape
// (Reshape, Squeeze, Identity, ...) share it, and no op ever writes into a buffer it did not
// allocate, so sharing is safe. Element types carry ONNX's TensorProto.DataType numbers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::onnx {

enum class DType : int32_t {
  kUndefined = 0,
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,  // not supported: refused by the loader
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kUint32 = 12,
  kUint64 = 13,
  kBFloat16 = 16,
};

// Bytes per element, or 0 for a type hearth does not hold (strings, complex, undefined).
size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // "float32", "int64", ... ("dtype(14)" for others)
// The DType for an ONNX data_type number, or kUndefined if hearth does not hold it.
DType dtype_from_onnx(int64_t data_type);

template <typename T>
constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kFloat; }
template <> constexpr DType dtype_of<double>() { return DType::kDouble; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::kUint8; }
template <> constexpr DType dtype_of<int8_t>() { return DType::kInt8; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::kUint16; }
template <> constexpr DType dtype_of<int16_t>() { return DType::kInt16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::kInt32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::kInt64; }
template <> constexpr DType dtype_of<uint32_t>() { return DType::kUint32; }
template <> constexpr DType dtype_of<uint64_t>() { return DType::kUint64; }
template <> constexpr DType dtype_of<bool>() { return DType::kBool; }

using Shape = std::vector<int64_t>;

// Hard limits on what any tensor may be, checked before anything is allocated.
inline constexpr size_t kMaxRank = 16;
inline constexpr int64_t kMaxElements = int64_t{1} << 34;

// Product of the dims, or an error if a dim is negative or the product exceeds kMaxElements.
Result<int64_t> checked_numel(std::span<const int64_t> shape);
std::string shape_string(std::span<const int64_t> shape);  // "[1,3,224,224]"

class Tensor {
 public:
  Tensor() = default;

  // A zero-filled tensor; fails on a bad shape, an unheld type, or more than kMaxElements.
  static Result<Tensor> make(DType dtype, Shape shape);
  // Like make(), for an op that writes every element: the contents are left as they are (or
  // poisoned with 0xFF bytes, a NaN for floats, when poison_uninit() is on: builds without
  // NDEBUG, such as the sanitizer pass, or HEARTH_ONNX_POISON set), so a missed element shows.
  static Result<Tensor> make_uninit(DType dtype, Shape shape);
  // A tensor that takes `bytes` (exactly numel * dtype_size bytes) by copy.
  static Result<Tensor> from_bytes(DType dtype, Shape shape, std::span<const std::byte> bytes);
  template <typename T>
  static Result<Tensor> from_values(Shape shape, std::span<const T> values) {
    return from_bytes(dtype_of<T>(), std::move(shape), std::as_bytes(values));
  }
  template <typename T>
  static Tensor scalar(T v) {
    return from_values<T>({}, std::span<const T>(&v, 1)).value();
  }

  // The same bytes seen with another shape of the same element count (no copy).
  Result<Tensor> reshaped(Shape shape) const;

  bool empty_value() const { return dtype_ == DType::kUndefined; }  // a default-constructed Tensor
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  size_t rank() const { return shape_.size(); }
  int64_t dim(size_t i) const { return shape_[i]; }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  std::byte* raw() { return buf_.get(); }
  const std::byte* raw() const { return buf_.get(); }
  template <typename T>
  T* data() {
    return reinterpret_cast<T*>(buf_.get());
  }
  template <typename T>
  const T* data() const {
    return reinterpret_cast<const T*>(buf_.get());
  }
  template <typename T>
  std::span<const T> values() const {
    return {data<T>(), static_cast<size_t>(numel_)};
  }
  template <typename T>
  std::span<T> mutable_values() {
    return {data<T>(), static_cast<size_t>(numel_)};
  }

  // Whether another Tensor shares this one's bytes (a buffer may be reused only when not).
  bool buffer_shared() const { return buf_.use_count() > 1; }
  // Element i converted to int64 (for shape-like inputs of any integer type).
  int64_t int_at(int64_t i) const;
  // Element i converted to double (for scalar attributes given as tensors of any type).
  double double_at(int64_t i) const;

 private:
  friend class BufferPool;
  static Result<Tensor> make_filled(DType dtype, Shape shape, int fill);
  DType dtype_ = DType::kUndefined;
  Shape shape_;
  int64_t numel_ = 0;
  size_t capacity_ = 0;  // bytes allocated for buf_ (>= nbytes())
  std::shared_ptr<std::byte> buf_;
};

// A per-session pool of freed buffers, by byte capacity: the executor hands a tensor's buffer
// back after its last use, and the next allocation of a size that fits reuses it.
// True when uninitialised tensors are poisoned (Tensor::make_uninit).
bool poison_uninit();

class BufferPool {
 public:
  // A zero-filled tensor, reusing a pooled buffer when one of at least the size is free.
  // Fails (resource_exhausted) above the per-tensor byte limit.
  Result<Tensor> make(DType dtype, Shape shape) { return make_impl(dtype, std::move(shape), true); }
  // For an op that writes every element (Tensor::make_uninit).
  Result<Tensor> make_uninit(DType dtype, Shape shape) { return make_impl(dtype, std::move(shape), false); }
  void set_max_tensor_bytes(size_t n) { max_tensor_bytes_ = n; }
  size_t max_tensor_bytes() const { return max_tensor_bytes_; }
  // Gives t's buffer back if nothing else shares it; t is left empty either way.
  void release(Tensor& t);
  size_t pooled_bytes() const { return pooled_bytes_; }
  size_t reused() const { return reused_; }

 private:
  Result<Tensor> make_impl(DType dtype, Shape shape, bool zero);
  struct Free {
    size_t capacity;
    std::shared_ptr<std::byte> buf;
  };
  std::vector<Free> free_;
  size_t max_tensor_bytes_ = size_t{4} << 30;
  size_t pooled_bytes_ = 0;
  size_t reused_ = 0;
};

}  // namespace hearth::onnx
