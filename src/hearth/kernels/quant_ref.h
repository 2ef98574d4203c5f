// Typed scalar reference kernels per format: quantize, dequantize and dot product. quant.h
// dispatches to these by TensorType; kernel tables and tests may call them directly.
// n is the element count and must be a multiple of the format's block size.
#pragma once

#include <cstdint>

#include "hearth/kernels/quant_blocks.h"

namespace hearth::kernels::ref {

// --- 32-element formats (ref/quant_legacy.cpp) ---
// Reference quantizers: byte-identical to ggml's quantize_row_*_ref.
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n);
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n);
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n);
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n);
// With importance weights (one row; ggml's quantize_q4_0 etc. with quant_weights).
void quantize_row_q4_0_imatrix(const float* x, BlockQ4_0* y, int64_t n, const float* importance);
void quantize_row_q4_1_imatrix(const float* x, BlockQ4_1* y, int64_t n, const float* importance);
void quantize_row_q5_0_imatrix(const float* x, BlockQ5_0* y, int64_t n, const float* importance);
void quantize_row_q5_1_imatrix(const float* x, BlockQ5_1* y, int64_t n, const float* importance);
// ggml's x86 (AVX/AVX2) activation quantizers: scale by 127/amax and round half to even,
// where the reference multiplies by 1/(amax/127) and rounds half away from zero.
void quantize_row_q8_0_x86(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q8_1_x86(const float* x, BlockQ8_1* y, int64_t n);

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n);
void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t n);

// --- K-quants (ref/quant_k_low.cpp: Q2_K, Q3_K; ref/quant_k_high.cpp: Q4_K, Q5_K, Q6_K, Q8_K) ---
// importance == nullptr: ggml's quantize_row_qN_K_ref; otherwise its imatrix variant.
void quantize_row_q2_k(const float* x, BlockQ2_K* y, int64_t n, const float* importance);
void quantize_row_q3_k(const float* x, BlockQ3_K* y, int64_t n, const float* importance);
void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t n, const float* importance);
void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t n, const float* importance);
void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t n, const float* importance);
void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t n);

void dequantize_row_q2_k(const BlockQ2_K* x, float* y, int64_t n);
void dequantize_row_q3_k(const BlockQ3_K* x, float* y, int64_t n);
void dequantize_row_q4_k(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_row_q5_k(const BlockQ5_K* x, float* y, int64_t n);
void dequantize_row_q6_k(const BlockQ6_K* x, float* y, int64_t n);
void dequantize_row_q8_k(const BlockQ8_K* x, float* y, int64_t n);

// Unpacks the 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block.
void unpack_scale_min_k4(int j, const uint8_t* scales, uint8_t* sc, uint8_t* m);
// Unpacks the 16 6-bit Q3_K scales to signed values in [-32, 31].
void unpack_scales_q3_k(const uint8_t* packed, int8_t* scales);

// --- Non-linear 4-bit formats (ref/quant_iq4.cpp): IQ4_NL, IQ4_XS ---
// importance == nullptr: ggml's quantize_iq4_nl / quantize_iq4_xs without an imatrix (what its
// model quantizer writes); otherwise with quant_weights. Byte-identical output.
void quantize_row_iq4_nl(const float* x, BlockIQ4_NL* y, int64_t n, const float* importance);
void quantize_row_iq4_xs(const float* x, BlockIQ4_XS* y, int64_t n, const float* importance);
void dequantize_row_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t n);
void dequantize_row_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t n);
// The 6-bit scale of sub-block j (0..7) of an IQ4_XS block, in [0, 63] (the level is s - 32).
int iq4_xs_scale(const BlockIQ4_XS& b, int j);
float vec_dot_iq4_nl_q8_0(int64_t n, const BlockIQ4_NL* x, const BlockQ8_0* y);
float vec_dot_iq4_xs_q8_k(int64_t n, const BlockIQ4_XS* x, const BlockQ8_K* y);

// --- Dot products (ref/quant_dot.cpp), as ggml's scalar ggml_vec_dot_*_generic ---
float vec_dot_q4_0_q8_0(int64_t n, const BlockQ4_0* x, const BlockQ8_0* y);
float vec_dot_q4_1_q8_1(int64_t n, const BlockQ4_1* x, const BlockQ8_1* y);
float vec_dot_q5_0_q8_0(int64_t n, const BlockQ5_0* x, const BlockQ8_0* y);
float vec_dot_q5_1_q8_1(int64_t n, const BlockQ5_1* x, const BlockQ8_1* y);
float vec_dot_q8_0_q8_0(int64_t n, const BlockQ8_0* x, const BlockQ8_0* y);
float vec_dot_q2_k_q8_k(int64_t n, const BlockQ2_K* x, const BlockQ8_K* y);
float vec_dot_q3_k_q8_k(int64_t n, const BlockQ3_K* x, const BlockQ8_K* y);
float vec_dot_q4_k_q8_k(int64_t n, const BlockQ4_K* x, const BlockQ8_K* y);
float vec_dot_q5_k_q8_k(int64_t n, const BlockQ5_K* x, const BlockQ8_K* y);
float vec_dot_q6_k_q8_k(int64_t n, const BlockQ6_K* x, const BlockQ8_K* y);
// Float formats: products in f32, accumulated in double (ggml_float), as ggml's scalar path.
float vec_dot_f32(int64_t n, const float* x, const float* y);
float vec_dot_f16(int64_t n, const uint16_t* x, const uint16_t* y);
float vec_dot_bf16(int64_t n, const uint16_t* x, const uint16_t* y);

}  // namespace hearth::kernels::ref
