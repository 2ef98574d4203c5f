// exp, sigmoid and tanh for float arrays in explicit 4-lane vectors (GCC/Clang vector
// extensions, SSE2 on x86-64 baseline, so no per-ISA build flags): glibc's tanhf and a
// branching sigmoid around expf are scalar, and the compiler will not vectorize the same
// formulas written with selects (it keeps them as branches). Each function is one template
// over the scalar float and the vector type, so the array tails compute exactly what the
// vector lanes do.
// Accuracy: a few ulp against correctly rounded values over the whole float range
// (unit-tested in elementwise_ops_test), exp's overflow to inf, underflow through the
// subnormals to 0, and NaN kept.
// Algorithms: Cephes' expf (Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, and a degree-5
// polynomial for exp(r)) and Cephes' tanhf (an odd polynomial below 0.625, 1 - 2/(e^2x + 1)
// above); S. L. Moshier, Cephes Math Library, 1984-1992.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace hearth::onnx {

namespace vec_math {

using f4 = float __attribute__((vector_size(16)));
using i4 = int32_t __attribute__((vector_size(16)));

// The lane operations both instantiations need: select, and bit casts float <-> int32.
inline float select(bool m, float a, float b) { return m ? a : b; }
inline f4 select(i4 m, f4 a, f4 b) { return m ? a : b; }
inline int32_t as_int(float f) { return std::bit_cast<int32_t>(f); }
inline i4 as_int(f4 f) { return std::bit_cast<i4>(f); }
inline float as_float(int32_t i) { return std::bit_cast<float>(i); }
inline f4 as_float(i4 i) { return std::bit_cast<f4>(i); }

template <typename F>
inline F exp_t(F x) {
  const auto nan = x != x;
  // Clamp to where exp overflows (> 88.73) or rounds to 0 (< -103.98), which also keeps n in
  // [-152, 129] below; a NaN goes through as 0 and is put back at the end.
  F xc = select(x < -105.0f, F{} - 105.0f, x);
  xc = select(xc > 89.0f, F{} + 89.0f, xc);
  xc = select(nan, F{}, xc);
  // n = round(x / ln 2) by adding 1.5 * 2^23, which leaves n in the low mantissa bits.
  const F big = xc * 1.44269504088896341f + 12582912.0f;
  const auto n = as_int(big) - 0x4B400000;
  const F fn = big - 12582912.0f;
  F r = xc - fn * 0.693359375f;  // ln 2 in two parts: the first exact in float
  r = r - fn * -2.12194440e-4f;
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n as two powers of two built in the exponent field (each of n/2 and n - n/2 is a normal
  // float's exponent), so that results near overflow and in the subnormals round once.
  const auto n1 = n >> 1;
  const auto n2 = n - n1;
  const F y = p * as_float((n1 + 127) << 23) * as_float((n2 + 127) << 23);
  return select(nan, x, y);
}

template <typename F>
inline F sigmoid_t(F x) {
  return 1.0f / (exp_t(F{} - x) + 1.0f);
}

template <typename F>
inline F tanh_t(F x) {
  const F ax = select(x < 0.0f, F{} - x, x);
  const F z = x * x;
  F p = F{} - 5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const F small = p * z * x + x;
  F large = 1.0f - 2.0f / (exp_t(ax * 2.0f) + 1.0f);
  large = select(x < 0.0f, F{} - large, large);
  return select(ax < 0.625f, small, large);
}

// y[i] = f(x[i]) four lanes at a time, the tail one at a time; y may equal x.
template <typename Fn4, typename Fn1>
inline void apply(const float* x, float* y, int64_t n, Fn4 f4fn, Fn1 f1fn) {
  const int64_t whole = n - n % 4;
  for (int64_t i = 0; i < whole; i += 4) {
    f4 v;
    std::memcpy(&v, x + i, sizeof v);
    v = f4fn(v);
    std::memcpy(y + i, &v, sizeof v);
  }
  for (int64_t i = whole; i < n; ++i) y[i] = f1fn(x[i]);
}

}  // namespace vec_math

inline float exp_approx(float x) { return vec_math::exp_t(x); }
inline float sigmoid_approx(float x) { return vec_math::sigmoid_t(x); }
inline float tanh_approx(float x) { return vec_math::tanh_t(x); }

inline void exp_array(const float* x, float* y, int64_t n) {
  vec_math::apply(x, y, n, [](vec_math::f4 v) { return vec_math::exp_t(v); }, [](float v) { return vec_math::exp_t(v); });
}
inline void sigmoid_array(const float* x, float* y, int64_t n) {
  vec_math::apply(x, y, n, [](vec_math::f4 v) { return vec_math::sigmoid_t(v); }, [](float v) { return vec_math::sigmoid_t(v); });
}
inline void tanh_array(const float* x, float* y, int64_t n) {
  vec_math::apply(x, y, n, [](vec_math::f4 v) { return vec_math::tanh_t(v); }, [](float v) { return vec_math::tanh_t(v); });
}

}  // namespace hearth::onnx
