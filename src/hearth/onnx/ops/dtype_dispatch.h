// Element-type dispatch for the ONNX op files: call a generic lambda with the C++ type of a
// tensor's DType, for the set of types an op accepts, and the conversions Cast needs between
// every held type (float16 and bfloat16 through float, bool as 0/1 bytes).
// Header-only: the lambdas are instantiated in the op files that use them.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "hearth/kernels/fp16.h"
#include "hearth/onnx/tensor.h"

namespace hearth::onnx {

// Storage types of the two 16-bit float formats (distinct from uint16_t so overloads differ).
struct Half {
  uint16_t bits;
};
struct BFloat {
  uint16_t bits;
};
// bool tensors hold one byte per element, 0 or 1 (a nonzero byte read from a file is true).
struct Bool8 {
  uint8_t v;
};

template <typename T>
using Tag = std::type_identity<T>;

// The DType whose storage type is T (Half, BFloat and Bool8 included).
template <typename T>
constexpr DType dtype_of_storage() {
  if constexpr (std::is_same_v<T, Half>) return DType::kFloat16;
  else if constexpr (std::is_same_v<T, BFloat>) return DType::kBFloat16;
  else if constexpr (std::is_same_v<T, Bool8>) return DType::kBool;
  else return dtype_of<T>();
}

// f(Tag<T>{}) for the C++ type of `t` among the listed types; returns false if `t` is not listed.
template <typename... Ts, typename F>
bool dispatch_types(DType t, F&& f) {
  return ((t == dtype_of_storage<Ts>() ? (f(Tag<Ts>{}), true) : false) || ...);
}

// Type lists used by several ops.
template <typename F>
bool dispatch_float(DType t, F&& f) {  // the float types computed natively
  return dispatch_types<float, double>(t, f);
}
template <typename F>
bool dispatch_numeric(DType t, F&& f) {  // every held number type (not bool, not 16-bit floats)
  return dispatch_types<float, double, int32_t, int64_t, int8_t, uint8_t, int16_t, uint16_t, uint32_t, uint64_t>(t, f);
}
template <typename F>
bool dispatch_signed(DType t, F&& f) {
  return dispatch_types<float, double, int32_t, int64_t, int8_t, int16_t>(t, f);
}
template <typename F>
bool dispatch_all(DType t, F&& f) {  // every held type
  return dispatch_types<float, double, int32_t, int64_t, int8_t, uint8_t, int16_t, uint16_t, uint32_t, uint64_t, Half,
                        BFloat, Bool8>(t, f);
}

// Cast's element conversion (ONNX Cast): float -> integer truncates toward zero; a value
// outside the target's range (undefined in the spec) saturates and NaN becomes 0, so that no
// input reaches C++'s undefined float -> int conversion; anything -> bool is "!= 0".
template <typename T>
inline double as_double(T v) {
  if constexpr (std::is_same_v<T, Half>) return kernels::fp16_to_fp32(v.bits);
  else if constexpr (std::is_same_v<T, BFloat>) return kernels::bf16_to_fp32(v.bits);
  else if constexpr (std::is_same_v<T, Bool8>) return v.v != 0 ? 1.0 : 0.0;
  else return static_cast<double>(v);
}

template <typename D, typename S>
inline D convert(S s) {
  if constexpr (std::is_same_v<D, S>) {
    if constexpr (std::is_same_v<D, Bool8>) return Bool8{static_cast<uint8_t>(s.v != 0)};
    else return s;
  } else if constexpr (std::is_same_v<D, Bool8>) {
    return Bool8{static_cast<uint8_t>(as_double(s) != 0.0)};
  } else if constexpr (std::is_same_v<D, Half>) {
    if constexpr (std::is_same_v<S, double>) return Half{kernels::fp32_to_fp16(static_cast<float>(s))};
    else return Half{kernels::fp32_to_fp16(static_cast<float>(as_double(s)))};
  } else if constexpr (std::is_same_v<D, BFloat>) {
    return BFloat{kernels::fp32_to_bf16(static_cast<float>(as_double(s)))};
  } else if constexpr (std::is_same_v<S, Bool8>) {
    return static_cast<D>(s.v != 0);
  } else if constexpr (std::is_floating_point_v<D>) {
    if constexpr (std::is_same_v<S, Half> || std::is_same_v<S, BFloat>) return static_cast<D>(as_double(s));
    else return static_cast<D>(s);
  } else if constexpr (std::is_integral_v<S>) {
    return static_cast<D>(s);  // integer -> integer: two's-complement wrap, as numpy's astype
  } else {
    // floating -> integer: truncate toward zero, saturating.
    const double d = as_double(s);
    if (std::isnan(d)) return D{0};
    const double t = std::trunc(d);
    if (t <= static_cast<double>(std::numeric_limits<D>::lowest())) return std::numeric_limits<D>::lowest();
    if (t >= static_cast<double>(std::numeric_limits<D>::max())) return std::numeric_limits<D>::max();
    return static_cast<D>(t);
  }
}

}  // namespace hearth::onnx
