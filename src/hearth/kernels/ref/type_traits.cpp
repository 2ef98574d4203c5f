// The reference row of every tensor type (type_traits.h) and quant.h's type-generic functions,
// which read those rows. Compiled with -ffp-contract=off like the quantizers it points at: the
// float formats' conversions live here.
#include "hearth/kernels/quant.h"

#include <array>
#include <cassert>
#include <cstring>
#include <limits>

#include "hearth/kernels/fp16.h"
#include "hearth/kernels/quant_ref.h"
#include "hearth/kernels/type_traits.h"

namespace hearth::kernels {
namespace {

// ---- Adapters from the typed reference functions (quant_ref.h) to the rows' signatures ----

template <class Block, void (*F)(const Block*, float*, int64_t)>
void to_float(const void* src, float* dst, int64_t n) {
  F(static_cast<const Block*>(src), dst, n);
}
template <class Block, void (*F)(const float*, Block*, int64_t)>
void from_float(const float* src, void* dst, int64_t n) {
  F(src, static_cast<Block*>(dst), n);
}
template <class Block, void (*F)(const float*, Block*, int64_t, const float*)>
void from_float_k(const float* src, void* dst, int64_t n) {
  F(src, static_cast<Block*>(dst), n, nullptr);  // the K-quants' *_ref and IQ4's: no importance
}
template <class Block, void (*F)(const float*, Block*, int64_t, const float*)>
void from_float_importance(const float* src, void* dst, int64_t n, const float* importance) {
  F(src, static_cast<Block*>(dst), n, importance);
}
template <class W, class A, float (*F)(int64_t, const W*, const A*)>
float vec_dot_of(int64_t n, const void* w, const void* a) {
  return F(n, static_cast<const W*>(w), static_cast<const A*>(a));
}

// ---- The float formats ----

void f32_to_float(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void f32_from_float(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void f16_to_float(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
}
void f16_from_float(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
}
void bf16_to_float(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
}
void bf16_from_float(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
}

// ---- The table ----

using T = TensorType;

constexpr std::array<TypeTraits, kTypeCount> make_type_traits() {
  std::array<TypeTraits, kTypeCount> rows{};
  for (size_t i = 0; i < kTypeCount; ++i) rows[i].vec_dot_type = static_cast<TensorType>(i);
  auto set = [&rows](TensorType type, const TypeTraits& row) { rows[static_cast<size_t>(type)] = row; };
  // clang-format off
  //         block       bytes               to_float                                             from_float                                              from_float with importance                                        vec_dot_type  vec_dot
  set(T::F32,  {1,       4,                  &f32_to_float,                                       &f32_from_float,                                        nullptr,                                                          T::F32,  &vec_dot_of<float, float, ref::vec_dot_f32>});
  set(T::F16,  {1,       2,                  &f16_to_float,                                       &f16_from_float,                                        nullptr,                                                          T::F16,  &vec_dot_of<uint16_t, uint16_t, ref::vec_dot_f16>});
  set(T::BF16, {1,       2,                  &bf16_to_float,                                      &bf16_from_float,                                       nullptr,                                                          T::BF16, &vec_dot_of<uint16_t, uint16_t, ref::vec_dot_bf16>});
  set(T::Q4_0, {kQK4_0,  sizeof(BlockQ4_0),  &to_float<BlockQ4_0, ref::dequantize_row_q4_0>,      &from_float<BlockQ4_0, ref::quantize_row_q4_0>,         &from_float_importance<BlockQ4_0, ref::quantize_row_q4_0_imatrix>, T::Q8_0, &vec_dot_of<BlockQ4_0, BlockQ8_0, ref::vec_dot_q4_0_q8_0>});
  set(T::Q4_1, {kQK4_1,  sizeof(BlockQ4_1),  &to_float<BlockQ4_1, ref::dequantize_row_q4_1>,      &from_float<BlockQ4_1, ref::quantize_row_q4_1>,         &from_float_importance<BlockQ4_1, ref::quantize_row_q4_1_imatrix>, T::Q8_1, &vec_dot_of<BlockQ4_1, BlockQ8_1, ref::vec_dot_q4_1_q8_1>});
  set(T::Q5_0, {kQK5_0,  sizeof(BlockQ5_0),  &to_float<BlockQ5_0, ref::dequantize_row_q5_0>,      &from_float<BlockQ5_0, ref::quantize_row_q5_0>,         &from_float_importance<BlockQ5_0, ref::quantize_row_q5_0_imatrix>, T::Q8_0, &vec_dot_of<BlockQ5_0, BlockQ8_0, ref::vec_dot_q5_0_q8_0>});
  set(T::Q5_1, {kQK5_1,  sizeof(BlockQ5_1),  &to_float<BlockQ5_1, ref::dequantize_row_q5_1>,      &from_float<BlockQ5_1, ref::quantize_row_q5_1>,         &from_float_importance<BlockQ5_1, ref::quantize_row_q5_1_imatrix>, T::Q8_1, &vec_dot_of<BlockQ5_1, BlockQ8_1, ref::vec_dot_q5_1_q8_1>});
  set(T::Q8_0, {kQK8_0,  sizeof(BlockQ8_0),  &to_float<BlockQ8_0, ref::dequantize_row_q8_0>,      &from_float<BlockQ8_0, ref::quantize_row_q8_0>,         nullptr,                                                          T::Q8_0, &vec_dot_of<BlockQ8_0, BlockQ8_0, ref::vec_dot_q8_0_q8_0>});
  set(T::Q8_1, {kQK8_1,  sizeof(BlockQ8_1),  &to_float<BlockQ8_1, ref::dequantize_row_q8_1>,      &from_float<BlockQ8_1, ref::quantize_row_q8_1>,         nullptr,                                                          T::Q8_1, nullptr});
  set(T::Q2_K, {kQK_K,   sizeof(BlockQ2_K),  &to_float<BlockQ2_K, ref::dequantize_row_q2_k>,      &from_float_k<BlockQ2_K, ref::quantize_row_q2_k>,       &from_float_importance<BlockQ2_K, ref::quantize_row_q2_k>,         T::Q8_K, &vec_dot_of<BlockQ2_K, BlockQ8_K, ref::vec_dot_q2_k_q8_k>});
  set(T::Q3_K, {kQK_K,   sizeof(BlockQ3_K),  &to_float<BlockQ3_K, ref::dequantize_row_q3_k>,      &from_float_k<BlockQ3_K, ref::quantize_row_q3_k>,       &from_float_importance<BlockQ3_K, ref::quantize_row_q3_k>,         T::Q8_K, &vec_dot_of<BlockQ3_K, BlockQ8_K, ref::vec_dot_q3_k_q8_k>});
  set(T::Q4_K, {kQK_K,   sizeof(BlockQ4_K),  &to_float<BlockQ4_K, ref::dequantize_row_q4_k>,      &from_float_k<BlockQ4_K, ref::quantize_row_q4_k>,       &from_float_importance<BlockQ4_K, ref::quantize_row_q4_k>,         T::Q8_K, &vec_dot_of<BlockQ4_K, BlockQ8_K, ref::vec_dot_q4_k_q8_k>});
  set(T::Q5_K, {kQK_K,   sizeof(BlockQ5_K),  &to_float<BlockQ5_K, ref::dequantize_row_q5_k>,      &from_float_k<BlockQ5_K, ref::quantize_row_q5_k>,       &from_float_importance<BlockQ5_K, ref::quantize_row_q5_k>,         T::Q8_K, &vec_dot_of<BlockQ5_K, BlockQ8_K, ref::vec_dot_q5_k_q8_k>});
  set(T::Q6_K, {kQK_K,   sizeof(BlockQ6_K),  &to_float<BlockQ6_K, ref::dequantize_row_q6_k>,      &from_float_k<BlockQ6_K, ref::quantize_row_q6_k>,       &from_float_importance<BlockQ6_K, ref::quantize_row_q6_k>,         T::Q8_K, &vec_dot_of<BlockQ6_K, BlockQ8_K, ref::vec_dot_q6_k_q8_k>});
  set(T::Q8_K, {kQK_K,   sizeof(BlockQ8_K),  &to_float<BlockQ8_K, ref::dequantize_row_q8_k>,      &from_float<BlockQ8_K, ref::quantize_row_q8_k>,         nullptr,                                                          T::Q8_K, nullptr});
  set(T::IQ4_NL, {kQK4_NL, sizeof(BlockIQ4_NL), &to_float<BlockIQ4_NL, ref::dequantize_row_iq4_nl>, &from_float_k<BlockIQ4_NL, ref::quantize_row_iq4_nl>, &from_float_importance<BlockIQ4_NL, ref::quantize_row_iq4_nl>, T::Q8_0, &vec_dot_of<BlockIQ4_NL, BlockQ8_0, ref::vec_dot_iq4_nl_q8_0>});
  set(T::IQ4_XS, {kQK_K,   sizeof(BlockIQ4_XS), &to_float<BlockIQ4_XS, ref::dequantize_row_iq4_xs>, &from_float_k<BlockIQ4_XS, ref::quantize_row_iq4_xs>, &from_float_importance<BlockIQ4_XS, ref::quantize_row_iq4_xs>, T::Q8_K, &vec_dot_of<BlockIQ4_XS, BlockQ8_K, ref::vec_dot_iq4_xs_q8_k>});
  // clang-format on
  // Q8_0 and Q8_1 activations: ggml's x86 rounding (quantize_row_x86 in quant.h).
  rows[static_cast<size_t>(T::Q8_0)].from_float_x86 = &from_float<BlockQ8_0, ref::quantize_row_q8_0_x86>;
  rows[static_cast<size_t>(T::Q8_1)].from_float_x86 = &from_float<BlockQ8_1, ref::quantize_row_q8_1_x86>;
  return rows;
}

constexpr std::array<TypeTraits, kTypeCount> kTypeTraits = make_type_traits();

// The row of an id past the table: no kernels (vec_dot_type() answers the id itself).
constexpr TypeTraits kNoRow{};

}  // namespace

const TypeTraits& type_traits(TensorType type) {
  const auto i = static_cast<size_t>(type);
  return i < kTypeCount ? kTypeTraits[i] : kNoRow;
}

bool can_dequantize(TensorType type) { return type_traits(type).to_float != nullptr; }
bool can_quantize(TensorType type) { return type_traits(type).from_float != nullptr; }
bool can_vec_dot(TensorType weight) { return type_traits(weight).vec_dot != nullptr; }

TensorType vec_dot_type(TensorType weight) {
  return static_cast<size_t>(weight) < kTypeCount ? type_traits(weight).vec_dot_type : weight;
}

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  if (const ToFloatFn f = type_traits(type).to_float) return f(src, dst, n);
  assert(false && "dequantize_row: unsupported type (check can_dequantize)");
  for (int64_t i = 0; i < n; ++i) dst[i] = std::numeric_limits<float>::quiet_NaN();
}

void quantize_row(TensorType type, const float* src, void* dst, int64_t n, const float* importance) {
  const TypeTraits& tr = type_traits(type);
  if (importance != nullptr && tr.from_float_importance != nullptr) {
    return tr.from_float_importance(src, dst, n, importance);
  }
  if (tr.from_float != nullptr) return tr.from_float(src, dst, n);
  assert(false && "quantize_row: unsupported type (check can_quantize)");
}

void quantize_row_x86(TensorType type, const float* src, void* dst, int64_t n) {
  if (const FromFloatFn f = type_traits(type).from_float_x86) return f(src, dst, n);
  quantize_row(type, src, dst, n);
}

float vec_dot(TensorType weight, int64_t n, const void* w, const void* a) {
  if (const VecDotFn f = type_traits(weight).vec_dot) return f(n, w, a);
  assert(false && "vec_dot: unsupported weight type (check can_vec_dot)");
  return std::numeric_limits<float>::quiet_NaN();
}

}  // namespace hearth::kernels
