// Small shared pieces of the op files: optional-input access,
// the "unsupported element type" error, and wrapping integer arithmetic (ONNX integer ops wrap
// like numpy's; C++ signed overflow would be undefined, so it goes through unsigned types).
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>

#include "hearth/onnx/op_registry.h"

namespace hearth::onnx {

// Input i, or null when it is omitted ("" or past the end of the node's inputs).
inline const Tensor* opt_input(OpInputs in, size_t i) { return i < in.size() ? in[i] : nullptr; }

// ctx.alloc with the node named in the error (a shape over the size limits, out of memory).
inline Result<Tensor> alloc_out(OpContext& ctx, const Node& node, DType dtype, Shape shape) {
  auto t = ctx.alloc(dtype, std::move(shape));
  if (!t.ok()) return t.status().with_context(node.describe());
  return t;
}

// The same for an op that writes every element of the output (ctx.alloc_uninit: no zero-fill).
inline Result<Tensor> alloc_out_uninit(OpContext& ctx, const Node& node, DType dtype, Shape shape) {
  auto t = ctx.alloc_uninit(dtype, std::move(shape));
  if (!t.ok()) return t.status().with_context(node.describe());
  return t;
}

// "node 'x' (Op): what", an invalid_argument error (bad attributes, shapes, inputs).
inline Status bad(const Node& node, std::string_view what) {
  return make_error(ErrorCode::kInvalidArgument, "{}: {}", node.describe(), what);
}

inline Status unsupported_dtype(const Node& node, std::string_view what, const Tensor& t) {
  return make_error(ErrorCode::kUnimplemented, "{}: {} of type {} is not supported", node.describe(), what,
                    dtype_name(t.dtype()));
}

inline Status require_same_dtype(const Node& node, const Tensor& a, const Tensor& b, std::string_view what) {
  if (a.dtype() == b.dtype()) return ok_status();
  return make_error(ErrorCode::kInvalidArgument, "{}: {} is {}, expected {} like the first input", node.describe(), what,
                    dtype_name(b.dtype()), dtype_name(a.dtype()));
}

inline bool is_integer_dtype(DType t) {
  switch (t) {
    case DType::kInt8: case DType::kUint8: case DType::kInt16: case DType::kUint16: case DType::kInt32:
    case DType::kUint32: case DType::kInt64: case DType::kUint64: return true;
    default: return false;
  }
}

template <typename T>
using WrapT = std::conditional_t<sizeof(T) <= 4, uint32_t, uint64_t>;

template <typename T>
inline T wrap_add(T a, T b) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<WrapT<T>>(a) + static_cast<WrapT<T>>(b));
  else return a + b;
}
template <typename T>
inline T wrap_sub(T a, T b) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<WrapT<T>>(a) - static_cast<WrapT<T>>(b));
  else return a - b;
}
template <typename T>
inline T wrap_mul(T a, T b) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(static_cast<WrapT<T>>(a) * static_cast<WrapT<T>>(b));
  else return a * b;
}
template <typename T>
inline T wrap_neg(T a) {
  return wrap_sub<T>(T{0}, a);
}

}  // namespace hearth::onnx
