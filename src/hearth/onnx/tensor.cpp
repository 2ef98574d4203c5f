#include "hearth/onnx/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "hearth/core/checked_math.h"
#include "hearth/kernels/fp16.h"

namespace hearth::onnx {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat: return 4;
    case DType::kUint8: return 1;
    case DType::kInt8: return 1;
    case DType::kUint16: return 2;
    case DType::kInt16: return 2;
    case DType::kInt32: return 4;
    case DType::kInt64: return 8;
    case DType::kBool: return 1;
    case DType::kFloat16: return 2;
    case DType::kDouble: return 8;
    case DType::kUint32: return 4;
    case DType::kUint64: return 8;
    case DType::kBFloat16: return 2;
    default: return 0;
  }
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kFloat: return "float32";
    case DType::kUint8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kUint16: return "uint16";
    case DType::kInt16: return "int16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kString: return "string";
    case DType::kBool: return "bool";
    case DType::kFloat16: return "float16";
    case DType::kDouble: return "float64";
    case DType::kUint32: return "uint32";
    case DType::kUint64: return "uint64";
    case DType::kBFloat16: return "bfloat16";
    case DType::kUndefined: return "undefined";
  }
  return "unknown";
}

DType dtype_from_onnx(int64_t data_type) {
  if (data_type <= 0 || data_type > 16) return DType::kUndefined;
  const auto t = static_cast<DType>(data_type);
  return dtype_size(t) != 0 ? t : DType::kUndefined;
}

Result<int64_t> checked_numel(std::span<const int64_t> shape) {
  if (shape.size() > kMaxRank) {
    return make_error(ErrorCode::kOutOfRange, "rank {} exceeds the limit of {}", shape.size(), kMaxRank);
  }
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return make_error(ErrorCode::kInvalidArgument, "negative dimension {} in shape {}", d, shape_string(shape));
    auto m = checked_mul<int64_t>(n, d);
    if (!m || *m > kMaxElements) {
      return make_error(ErrorCode::kOutOfRange, "shape {} has more than {} elements", shape_string(shape), kMaxElements);
    }
    n = *m;
  }
  return n;
}

std::string shape_string(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace {

constexpr size_t kAlign = 64;

std::shared_ptr<std::byte> allocate(size_t bytes) {
  const size_t n = std::max<size_t>(bytes, kAlign);
  auto* p = static_cast<std::byte*>(::operator new(n, std::align_val_t{kAlign}));
  return std::shared_ptr<std::byte>(p, [](std::byte* q) { ::operator delete(q, std::align_val_t{kAlign}); });
}

}  // namespace

bool poison_uninit() {
#ifndef NDEBUG
  return true;
#else
  static const bool poison = std::getenv("HEARTH_ONNX_POISON") != nullptr;
  return poison;
#endif
}

// fill: the byte every element starts as, or -1 to leave the memory as it comes.
Result<Tensor> Tensor::make_filled(DType dtype, Shape shape, int fill) {
  const size_t es = dtype_size(dtype);
  if (es == 0) return make_error(ErrorCode::kUnimplemented, "element type {} is not supported", dtype_name(dtype));
  HEARTH_ASSIGN_OR_RETURN(int64_t n, checked_numel(shape));
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = n;
  t.capacity_ = std::max<size_t>(static_cast<size_t>(n) * es, kAlign);
  try {
    t.buf_ = allocate(t.capacity_);
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "out of memory allocating {} bytes for a tensor of shape {}",
                      static_cast<size_t>(n) * es, shape_string(t.shape_));
  }
  if (fill >= 0) std::memset(t.buf_.get(), fill, t.capacity_);
  return t;
}

Result<Tensor> Tensor::make(DType dtype, Shape shape) { return make_filled(dtype, std::move(shape), 0); }

Result<Tensor> Tensor::make_uninit(DType dtype, Shape shape) {
  return make_filled(dtype, std::move(shape), poison_uninit() ? 0xff : -1);
}

Result<Tensor> Tensor::from_bytes(DType dtype, Shape shape, std::span<const std::byte> bytes) {
  HEARTH_ASSIGN_OR_RETURN(Tensor t, make(dtype, std::move(shape)));
  if (bytes.size() != t.nbytes()) {
    return make_error(ErrorCode::kInvalidArgument, "{} bytes given for a {} tensor of shape {} ({} bytes)", bytes.size(),
                      dtype_name(dtype), shape_string(t.shape_), t.nbytes());
  }
  if (!bytes.empty()) std::memcpy(t.raw(), bytes.data(), bytes.size());
  return t;
}

Result<Tensor> Tensor::reshaped(Shape shape) const {
  HEARTH_ASSIGN_OR_RETURN(int64_t n, checked_numel(shape));
  if (n != numel_) {
    return make_error(ErrorCode::kInvalidArgument, "cannot view shape {} ({} elements) as {} ({} elements)",
                      shape_string(shape_), numel_, shape_string(shape), n);
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

int64_t Tensor::int_at(int64_t i) const {
  switch (dtype_) {
    case DType::kInt64: return data<int64_t>()[i];
    case DType::kInt32: return data<int32_t>()[i];
    case DType::kInt16: return data<int16_t>()[i];
    case DType::kInt8: return data<int8_t>()[i];
    case DType::kUint8: return data<uint8_t>()[i];
    case DType::kUint16: return data<uint16_t>()[i];
    case DType::kUint32: return data<uint32_t>()[i];
    case DType::kUint64: return static_cast<int64_t>(data<uint64_t>()[i]);
    case DType::kBool: return data<uint8_t>()[i] != 0;
    default: return static_cast<int64_t>(double_at(i));
  }
}

double Tensor::double_at(int64_t i) const {
  switch (dtype_) {
    case DType::kFloat: return data<float>()[i];
    case DType::kDouble: return data<double>()[i];
    case DType::kFloat16: return kernels::fp16_to_fp32(data<uint16_t>()[i]);
    case DType::kBFloat16: return kernels::bf16_to_fp32(data<uint16_t>()[i]);
    case DType::kUndefined:
    case DType::kString: return 0;
    default: return static_cast<double>(int_at(i));
  }
}

Result<Tensor> BufferPool::make_impl(DType dtype, Shape shape, bool zero) {
  const size_t es = dtype_size(dtype);
  if (es == 0) return Tensor::make(dtype, std::move(shape));  // the error
  HEARTH_ASSIGN_OR_RETURN(int64_t n, checked_numel(shape));
  if (static_cast<uint64_t>(n) * es > max_tensor_bytes_) {
    return make_error(ErrorCode::kResourceExhausted, "a {} tensor of shape {} needs {} bytes, above the limit of {}",
                      dtype_name(dtype), shape_string(shape), static_cast<uint64_t>(n) * es, max_tensor_bytes_);
  }
  const size_t need = std::max<size_t>(static_cast<size_t>(n) * es, kAlign);
  // Best fit among buffers no more than twice the size (a huge buffer is kept for a huge tensor).
  size_t best = free_.size();
  for (size_t i = 0; i < free_.size(); ++i) {
    const size_t c = free_[i].capacity;
    if (c >= need && c / 2 <= need && (best == free_.size() || c < free_[best].capacity)) best = i;
  }
  if (best == free_.size()) return zero ? Tensor::make(dtype, std::move(shape)) : Tensor::make_uninit(dtype, std::move(shape));
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = n;
  t.capacity_ = free_[best].capacity;
  t.buf_ = std::move(free_[best].buf);
  pooled_bytes_ -= t.capacity_;
  free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
  if (zero) {
    std::memset(t.buf_.get(), 0, need);
  } else if (poison_uninit()) {
    std::memset(t.buf_.get(), 0xff, need);
  }
  ++reused_;
  return t;
}

void BufferPool::release(Tensor& t) {
  constexpr size_t kMaxFree = 256;
  if (t.buf_ && t.buf_.use_count() == 1 && free_.size() < kMaxFree) {
    free_.push_back({t.capacity_, std::move(t.buf_)});
    pooled_bytes_ += free_.back().capacity;
  }
  t = Tensor();
}

}  // namespace hearth::onnx
