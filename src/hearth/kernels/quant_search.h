// Scale searches shared by the quantizers (internal to kernels). Each picks a block scale (and
// for the asymmetric formats a min) that minimises a weighted squared (or absolute) error over a
// small grid of candidate scales, the way ggml's reference quantizer does (ggml-quants.c:
// make_qx_quants, make_q3_quants, make_qkx2_quants, make_qkx3_quants, make_qp_quants). The
// float arithmetic follows the reference operation by operation so that outputs are
// byte-identical; do not reorder it.
#pragma once

#include <bit>
#include <cstdint>

namespace hearth::kernels::search {

// Blocks whose largest magnitude is below this are stored as all-zero.
inline constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, for |v| <= 2^22: adding 1.5 * 2^23 leaves the integer in the
// low mantissa bits (the FPU does the rounding). Non-finite input yields garbage, never UB.
inline int nearest_int(float v) {
  const float biased = v + 12582912.f;
  const int32_t bits = std::bit_cast<int32_t>(biased);
  return (bits & 0x007fffff) - 0x00400000;
}

// How make_qx_quants weighs each element's squared error when no weights are given.
enum class ErrorWeight { kSquare = 1, kUnit = 2, kAbs = 3, kSqrtAbs = 4 };

// Symmetric scale for n values into L[i] in [0, 2*nmax) (stored offset by nmax). Tries
// 19 candidate scales around -nmax/max and keeps the best weighted least-squares fit. `qw`
// (optional) overrides the error weights. Returns the scale (0 for an all-zero block).
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, ErrorWeight weight, const float* qw);

// Q3_K's symmetric search: start from -nmax/max, then greedily move single quants while the
// x^2-weighted fit improves (up to 5 passes). L[i] in [0, 2*nmax).
float make_q3_quants(int n, int nmax, const float* x, int8_t* L);

// Asymmetric scale + min for L[i] in [0, nmax]: x ~ scale * L - the_min. Tries nstep + 1
// candidate inverse scales (rmin + rdelta * is + nmax) / (max - min), solving the weighted
// least-squares scale and min for each. use_mad selects absolute instead of squared error.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min, uint8_t* Laux,
                       float rmin, float rdelta, int nstep, bool use_mad);

// As make_qkx2_quants, used with importance weights (nullptr weights means x^2); robust to a
// fitted min at or near max.
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min, uint8_t* Laux,
                       float rmin, float rdelta, int nstep, bool use_mad);

// Quantizes n non-negative values (sub-block scales or mins) to L[i] in [0, nmax] with one
// scale, minimising the error weighted by quant_weights.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights);

}  // namespace hearth::kernels::search
