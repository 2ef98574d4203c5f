// Scalar reference quantization formats: block layouts bit-exact with ggml (ggml-common.h),
// dequantize-to-f32, quantize-from-f32 and the reference dot products. These are the oracle
// that every optimized kernel is tested against.
#pragma once

#include <cstdint>

#include "hearth/core/tensor_type.h"

namespace hearth::kernels {

// True for types with a reference dequantize (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q8_1, Q2_K..Q8_K, IQ4_NL, IQ4_XS).
bool can_dequantize(TensorType type);
// True for types with a reference quantizer.
bool can_quantize(TensorType type);

// n must be a multiple of the type's block size (callers validate shapes at load time).
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);

// Quantizes one row. `importance` (optional, n values, e.g. from an imatrix) weights the
// error that the scale search minimises; nullptr means the ecosystem's default weighting.
// Output is bit-identical to ggml's reference quantizer for the simple types
// (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q8_K, F16, BF16) when importance is nullptr, and for
// the K-quants too (quantize_row_qN_K_ref without importance; ggml's quant_weights variants
// with it), and for IQ4_NL/IQ4_XS (ggml's quantize_iq4_nl/quantize_iq4_xs, as its model
// quantizer calls them). Importance is ignored by F32/F16/BF16/Q8_0/Q8_1/Q8_K, as in ggml.
void quantize_row(TensorType type, const float* src, void* dst, int64_t n, const float* importance = nullptr);

// The format that activations are converted to before a dot product with a weight row of
// type `weight` (ggml's vec_dot_type): Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL, Q8_1 for Q4_1/Q5_1,
// Q8_K for the K-quants and IQ4_XS, F16 for F16, BF16 for BF16, F32 for F32.
TensorType vec_dot_type(TensorType weight);

// Dot product of a weight row (type `weight`) with an activation row already converted to
// vec_dot_type(weight). n is the row length in elements. Computed as ggml's scalar
// ggml_vec_dot_*_generic: integer dot per block, then scaled (float formats: f32 products
// accumulated in double).
float vec_dot(TensorType weight, int64_t n, const void* weight_row, const void* act_row);

// True for weight types with a reference vec_dot (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS; not the activation-only formats Q8_1 and Q8_K).
bool can_vec_dot(TensorType weight);

// Activation quantization as ggml does it on x86 (AVX/AVX2 builds, where llama.cpp's logits
// come from): for Q8_0 and Q8_1 the scale is applied as 127/amax and halves round to even,
// while quantize_row (the reference) multiplies by 1/(amax/127) and rounds halves away from
// zero; the two differ in rare ties and last-ulp cases. Other types: same as quantize_row.
void quantize_row_x86(TensorType type, const float* src, void* dst, int64_t n);

}  // namespace hearth::kernels
