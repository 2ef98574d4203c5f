// Type dispatch for the reference formats (quant.h) and the float formats' row conversions.
#include "hearth/kernels/quant.h"

#include <cassert>
#include <cstring>
#include <limits>

#include "hearth/kernels/fp16.h"
#include "hearth/kernels/quant_ref.h"

namespace hearth::kernels {
namespace {

bool is_reference_format(TensorType type) {
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q8_0:
    case TensorType::Q8_1:
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
    case TensorType::Q8_K:
      return true;
    default:
      return false;
  }
}

template <typename Block>
const Block* as(const void* p) {
  return static_cast<const Block*>(p);
}
template <typename Block>
Block* as(void* p) {
  return static_cast<Block*>(p);
}

}  // namespace

bool can_dequantize(TensorType type) { return is_reference_format(type); }
bool can_quantize(TensorType type) { return is_reference_format(type); }

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case TensorType::F16: {
      const auto* h = as<uint16_t>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
      return;
    }
    case TensorType::BF16: {
      const auto* h = as<uint16_t>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
      return;
    }
    case TensorType::Q4_0: return ref::dequantize_row_q4_0(as<BlockQ4_0>(src), dst, n);
    case TensorType::Q4_1: return ref::dequantize_row_q4_1(as<BlockQ4_1>(src), dst, n);
    case TensorType::Q5_0: return ref::dequantize_row_q5_0(as<BlockQ5_0>(src), dst, n);
    case TensorType::Q5_1: return ref::dequantize_row_q5_1(as<BlockQ5_1>(src), dst, n);
    case TensorType::Q8_0: return ref::dequantize_row_q8_0(as<BlockQ8_0>(src), dst, n);
    case TensorType::Q8_1: return ref::dequantize_row_q8_1(as<BlockQ8_1>(src), dst, n);
    case TensorType::Q2_K: return ref::dequantize_row_q2_k(as<BlockQ2_K>(src), dst, n);
    case TensorType::Q3_K: return ref::dequantize_row_q3_k(as<BlockQ3_K>(src), dst, n);
    case TensorType::Q4_K: return ref::dequantize_row_q4_k(as<BlockQ4_K>(src), dst, n);
    case TensorType::Q5_K: return ref::dequantize_row_q5_k(as<BlockQ5_K>(src), dst, n);
    case TensorType::Q6_K: return ref::dequantize_row_q6_k(as<BlockQ6_K>(src), dst, n);
    case TensorType::Q8_K: return ref::dequantize_row_q8_k(as<BlockQ8_K>(src), dst, n);
    default:
      assert(false && "dequantize_row: unsupported type (check can_dequantize)");
      for (int64_t i = 0; i < n; ++i) dst[i] = std::numeric_limits<float>::quiet_NaN();
      return;
  }
}

void quantize_row(TensorType type, const float* src, void* dst, int64_t n, const float* importance) {
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case TensorType::F16: {
      auto* h = as<uint16_t>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
      return;
    }
    case TensorType::BF16: {
      auto* h = as<uint16_t>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
      return;
    }
    case TensorType::Q4_0:
      return importance ? ref::quantize_row_q4_0_imatrix(src, as<BlockQ4_0>(dst), n, importance)
                        : ref::quantize_row_q4_0(src, as<BlockQ4_0>(dst), n);
    case TensorType::Q4_1:
      return importance ? ref::quantize_row_q4_1_imatrix(src, as<BlockQ4_1>(dst), n, importance)
                        : ref::quantize_row_q4_1(src, as<BlockQ4_1>(dst), n);
    case TensorType::Q5_0:
      return importance ? ref::quantize_row_q5_0_imatrix(src, as<BlockQ5_0>(dst), n, importance)
                        : ref::quantize_row_q5_0(src, as<BlockQ5_0>(dst), n);
    case TensorType::Q5_1:
      return importance ? ref::quantize_row_q5_1_imatrix(src, as<BlockQ5_1>(dst), n, importance)
                        : ref::quantize_row_q5_1(src, as<BlockQ5_1>(dst), n);
    case TensorType::Q8_0: return ref::quantize_row_q8_0(src, as<BlockQ8_0>(dst), n);
    case TensorType::Q8_1: return ref::quantize_row_q8_1(src, as<BlockQ8_1>(dst), n);
    case TensorType::Q2_K: return ref::quantize_row_q2_k(src, as<BlockQ2_K>(dst), n, importance);
    case TensorType::Q3_K: return ref::quantize_row_q3_k(src, as<BlockQ3_K>(dst), n, importance);
    case TensorType::Q4_K: return ref::quantize_row_q4_k(src, as<BlockQ4_K>(dst), n, importance);
    case TensorType::Q5_K: return ref::quantize_row_q5_k(src, as<BlockQ5_K>(dst), n, importance);
    case TensorType::Q6_K: return ref::quantize_row_q6_k(src, as<BlockQ6_K>(dst), n, importance);
    case TensorType::Q8_K: return ref::quantize_row_q8_k(src, as<BlockQ8_K>(dst), n);
    default:
      assert(false && "quantize_row: unsupported type (check can_quantize)");
      return;
  }
}

void quantize_row_x86(TensorType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case TensorType::Q8_0: return ref::quantize_row_q8_0_x86(src, as<BlockQ8_0>(dst), n);
    case TensorType::Q8_1: return ref::quantize_row_q8_1_x86(src, as<BlockQ8_1>(dst), n);
    default: return quantize_row(type, src, dst, n);
  }
}

TensorType vec_dot_type(TensorType weight) {
  switch (weight) {
    case TensorType::Q4_0:
    case TensorType::Q5_0:
    case TensorType::Q8_0:
      return TensorType::Q8_0;
    case TensorType::Q4_1:
    case TensorType::Q5_1:
    case TensorType::Q8_1:
      return TensorType::Q8_1;
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
    case TensorType::Q8_K:
      return TensorType::Q8_K;
    default:
      return weight;  // F32, F16, BF16 pair with themselves
  }
}

bool can_vec_dot(TensorType weight) {
  switch (weight) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q8_0:
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return true;
    default:
      return false;
  }
}

float vec_dot(TensorType weight, int64_t n, const void* w, const void* a) {
  switch (weight) {
    case TensorType::F32: return ref::vec_dot_f32(n, as<float>(w), as<float>(a));
    case TensorType::F16: return ref::vec_dot_f16(n, as<uint16_t>(w), as<uint16_t>(a));
    case TensorType::BF16: return ref::vec_dot_bf16(n, as<uint16_t>(w), as<uint16_t>(a));
    case TensorType::Q4_0: return ref::vec_dot_q4_0_q8_0(n, as<BlockQ4_0>(w), as<BlockQ8_0>(a));
    case TensorType::Q4_1: return ref::vec_dot_q4_1_q8_1(n, as<BlockQ4_1>(w), as<BlockQ8_1>(a));
    case TensorType::Q5_0: return ref::vec_dot_q5_0_q8_0(n, as<BlockQ5_0>(w), as<BlockQ8_0>(a));
    case TensorType::Q5_1: return ref::vec_dot_q5_1_q8_1(n, as<BlockQ5_1>(w), as<BlockQ8_1>(a));
    case TensorType::Q8_0: return ref::vec_dot_q8_0_q8_0(n, as<BlockQ8_0>(w), as<BlockQ8_0>(a));
    case TensorType::Q2_K: return ref::vec_dot_q2_k_q8_k(n, as<BlockQ2_K>(w), as<BlockQ8_K>(a));
    case TensorType::Q3_K: return ref::vec_dot_q3_k_q8_k(n, as<BlockQ3_K>(w), as<BlockQ8_K>(a));
    case TensorType::Q4_K: return ref::vec_dot_q4_k_q8_k(n, as<BlockQ4_K>(w), as<BlockQ8_K>(a));
    case TensorType::Q5_K: return ref::vec_dot_q5_k_q8_k(n, as<BlockQ5_K>(w), as<BlockQ8_K>(a));
    case TensorType::Q6_K: return ref::vec_dot_q6_k_q8_k(n, as<BlockQ6_K>(w), as<BlockQ8_K>(a));
    default:
      assert(false && "vec_dot: unsupported weight type (check can_vec_dot)");
      return std::numeric_limits<float>::quiet_NaN();
  }
}

}  // namespace hearth::kernels
