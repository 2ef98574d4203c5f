// Helpers for the quant-format tests: seeded data, type-generic quantize/dequantize of whole
// rows through quant.h, and error metrics.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "hearth/core/tensor_type.h"
#include "hearth/kernels/quant.h"

namespace hearth::kernels::testing {

inline std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::vector<std::byte> quantize(TensorType type, const std::vector<float>& x,
                                       const float* importance = nullptr) {
  std::vector<std::byte> q(*row_bytes(type, x.size()));
  quantize_row(type, x.data(), q.data(), static_cast<int64_t>(x.size()), importance);
  return q;
}

inline std::vector<float> dequantize(TensorType type, const std::vector<std::byte>& q, size_t n) {
  std::vector<float> y(n);
  dequantize_row(type, q.data(), y.data(), static_cast<int64_t>(n));
  return y;
}

// rms(a - b) / rms(b): error relative to the signal.
inline double rel_rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    err += d * d;
    ref += static_cast<double>(b[i]) * b[i];
  }
  return ref > 0 ? std::sqrt(err / ref) : std::sqrt(err);
}

inline double dot_f64(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

}  // namespace hearth::kernels::testing
