// IQ4_NL (blocks of 32, one fp16 scale) and IQ4_XS (super-blocks of 256: fp16 scale and eight
// 6-bit sub-block scales): 4-bit indices into the non-linear grid kIq4nlValues. The quantizer
// follows ggml-quants.c (quantize_row_iq4_nl_impl as quantize_iq4_nl / quantize_iq4_xs call it
// when writing a model: 7 trial scales either side of the first guess) operation by operation,
// so that its output is byte-identical; do not reorder the float arithmetic.
#include <cmath>
#include <cstring>

#include "hearth/kernels/fp16.h"
#include "hearth/kernels/quant_ref.h"
#include "hearth/kernels/quant_search.h"

namespace hearth::kernels::ref {
namespace {

using search::nearest_int;

constexpr int kSub = 32;     // elements per (sub-)block with its own scale
constexpr int kTrials = 7;   // trial inverse scales (-max + t) / max, t in [-7, 7], around the first guess
constexpr int kLevels = 16;  // entries of kIq4nlValues

// Index of the grid value nearest to x (ties to the lower one), by bisection as ggml's
// best_index_int8.
int nearest_level(float x) {
  const int8_t* v = kIq4nlValues;
  if (x <= v[0]) return 0;
  if (x >= v[kLevels - 1]) return kLevels - 1;
  int lo = 0, hi = kLevels - 1;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (x < v[mid]) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return x - v[hi - 1] < v[hi] - x ? hi - 1 : hi;
}

// The weighted least-squares scale of one sub-block: the best of the fit from the first guess
// max / 127 and the fits from 2 * kTrials + 1 trial inverse scales. Levels go to L (those of
// the first guess; the caller re-rounds against the stored scale).
float search_sub_block(const float* xb, const float* weight, uint8_t* L) {
  float amax = 0, max = 0;
  for (int j = 0; j < kSub; ++j) {
    const float ax = std::fabs(xb[j]);
    if (ax > amax) {
      amax = ax;
      max = xb[j];
    }
  }
  if (amax < search::kGroupMaxEps) {
    std::memset(L, 0, kSub);
    return 0;
  }
  float d = -max / kIq4nlValues[0];
  float id = 1 / d;
  float sumqx = 0, sumq2 = 0;
  for (int j = 0; j < kSub; ++j) {
    const int l = nearest_level(id * xb[j]);
    L[j] = static_cast<uint8_t>(l);
    const float q = kIq4nlValues[l];
    const float w = weight[j];
    sumqx += w * q * xb[j];
    sumq2 += w * q * q;
  }
  d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
  float best = d * sumqx;
  for (int itry = -kTrials; itry <= kTrials; ++itry) {
    id = static_cast<float>(itry + kIq4nlValues[0]) / max;
    sumqx = sumq2 = 0;
    for (int j = 0; j < kSub; ++j) {
      const float q = kIq4nlValues[nearest_level(id * xb[j])];
      const float w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

// One block of n_sub sub-blocks (1: IQ4_NL, 8: IQ4_XS). Error weights: importance[j] *
// sqrt(sigma2 + x[j]^2) with sigma2 = 2 * mean(x^2), or x[j]^2 without importance. For
// n_sub == 1, scales_h and scales_l are not touched.
void quantize_block(int n_sub, const float* x, const float* importance, uint16_t* d_out, uint8_t* qs,
                    uint16_t* scales_h, uint8_t* scales_l) {
  const int n = n_sub * kSub;
  float sigma2 = 0;
  for (int j = 0; j < n; ++j) sigma2 += x[j] * x[j];
  sigma2 *= 2.f / static_cast<float>(n);

  uint8_t L[kQK_K];
  float scales[kQK_K / kSub];
  float weight[kSub];
  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < n_sub; ++ib) {
    const float* xb = x + ib * kSub;
    if (importance != nullptr) {
      const float* qw = importance + ib * kSub;
      for (int j = 0; j < kSub; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    } else {
      for (int j = 0; j < kSub; ++j) weight[j] = xb[j] * xb[j];
    }
    const float d = search_sub_block(xb, weight, L + ib * kSub);
    scales[ib] = d;
    if (std::fabs(d) > amax_scale) {
      amax_scale = std::fabs(d);
      max_scale = d;
    }
  }

  if (n_sub > 1) {
    // 6-bit sub-block scales l in [-32, 31] of one block scale d (stored as l + 32), and the
    // levels re-rounded against each stored d * l.
    *scales_h = 0;
    const float d = -max_scale / 32;
    *d_out = fp32_to_fp16(d);
    const float id = d != 0 ? 1 / d : 0.f;
    for (int ib = 0; ib < n_sub; ++ib) {
      int l = nearest_int(id * scales[ib]);
      l = l < -32 ? -32 : (l > 31 ? 31 : l);
      const float dl = d * static_cast<float>(l);
      const float idl = dl != 0 ? 1 / dl : 0.f;
      const float* xb = x + ib * kSub;
      for (int j = 0; j < kSub; ++j) L[ib * kSub + j] = static_cast<uint8_t>(nearest_level(idl * xb[j]));
      l += 32;
      const auto lo = static_cast<uint8_t>(l & 0xf);
      if (ib % 2 == 0) {
        scales_l[ib / 2] = lo;
      } else {
        scales_l[ib / 2] = static_cast<uint8_t>(scales_l[ib / 2] | (lo << 4));
      }
      *scales_h = static_cast<uint16_t>(*scales_h | ((l >> 4) << (2 * (ib % 8))));
    }
  } else {
    *d_out = fp32_to_fp16(scales[0]);
    const float id = scales[0] != 0 ? 1 / scales[0] : 0.f;
    for (int j = 0; j < n; ++j) L[j] = static_cast<uint8_t>(nearest_level(id * x[j]));
  }

  for (int i = 0; i < n_sub; ++i) {
    for (int j = 0; j < kSub / 2; ++j) {
      qs[16 * i + j] = static_cast<uint8_t>(L[kSub * i + j] | (L[kSub * i + 16 + j] << 4));
    }
  }
}

// The 32 grid values of one 16-byte run of nibbles: low nibbles are elements 0..15.
void decode_nibbles(const uint8_t* qs, float d, float* y) {
  for (int j = 0; j < 16; ++j) {
    y[j] = d * kIq4nlValues[qs[j] & 0xf];
    y[j + 16] = d * kIq4nlValues[qs[j] >> 4];
  }
}

// sum of y[j] * level(j) over the 32 elements of a 16-byte run of nibbles, as ggml sums it.
int dot_nibbles(const uint8_t* qs, const int8_t* y) {
  int sumi1 = 0, sumi2 = 0;
  for (int j = 0; j < 16; ++j) {
    sumi1 += y[j] * kIq4nlValues[qs[j] & 0xf];
    sumi2 += y[j + 16] * kIq4nlValues[qs[j] >> 4];
  }
  return sumi1 + sumi2;
}

}  // namespace

int iq4_xs_scale(const BlockIQ4_XS& b, int j) {
  return ((b.scales_l[j / 2] >> (4 * (j % 2))) & 0xf) | (((b.scales_h >> (2 * j)) & 3) << 4);
}

void quantize_row_iq4_nl(const float* x, BlockIQ4_NL* y, int64_t n, const float* importance) {
  for (int64_t i = 0; i < n / kQK4_NL; ++i) {
    quantize_block(1, x + i * kQK4_NL, importance != nullptr ? importance + i * kQK4_NL : nullptr, &y[i].d, y[i].qs,
                   nullptr, nullptr);
  }
}

void quantize_row_iq4_xs(const float* x, BlockIQ4_XS* y, int64_t n, const float* importance) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    quantize_block(kQK_K / kSub, x + i * kQK_K, importance != nullptr ? importance + i * kQK_K : nullptr, &y[i].d,
                   y[i].qs, &y[i].scales_h, y[i].scales_l);
  }
}

void dequantize_row_iq4_nl(const BlockIQ4_NL* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK4_NL; ++i) decode_nibbles(x[i].qs, fp16_to_fp32(x[i].d), y + i * kQK4_NL);
}

void dequantize_row_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK_K / kSub; ++j) {
      decode_nibbles(x[i].qs + 16 * j, d * static_cast<float>(iq4_xs_scale(x[i], j) - 32), y + i * kQK_K + j * kSub);
    }
  }
}

// As ggml_vec_dot_iq4_nl_q8_0_generic.
float vec_dot_iq4_nl_q8_0(int64_t n, const BlockIQ4_NL* x, const BlockQ8_0* y) {
  float sumf = 0;
  for (int64_t i = 0; i < n / kQK4_NL; ++i) {
    const float d = fp16_to_fp32(y[i].d) * fp16_to_fp32(x[i].d);
    sumf += d * static_cast<float>(dot_nibbles(x[i].qs, y[i].qs));
  }
  return sumf;
}

// As ggml_vec_dot_iq4_xs_q8_K_generic: one float term per sub-block.
float vec_dot_iq4_xs_q8_k(int64_t n, const BlockIQ4_XS* x, const BlockQ8_K* y) {
  float sumf = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d4d8 = fp16_to_fp32(x[i].d) * y[i].d;
    for (int j = 0; j < kQK_K / kSub; ++j) {
      const float dj = d4d8 * static_cast<float>(iq4_xs_scale(x[i], j) - 32);
      sumf += dj * static_cast<float>(dot_nibbles(x[i].qs + 16 * j, y[i].qs + kSub * j));
    }
  }
  return sumf;
}

}  // namespace hearth::kernels::ref
