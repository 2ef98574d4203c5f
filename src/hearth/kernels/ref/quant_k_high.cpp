// Q4_K, Q5_K (8 sub-blocks of 32 with 6-bit scales and mins), Q6_K (16 sub-blocks of 16 with
// 8-bit scales) and Q8_K (the activation format of the K-quant dots). Quantizers follow
// ggml-quants.c (quantize_row_qN_K_ref / _impl) operation by operation: byte-identical output.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "hearth/kernels/fp16.h"
#include "hearth/kernels/quant_ref.h"
#include "hearth/kernels/quant_search.h"

namespace hearth::kernels::ref {
namespace {

using search::nearest_int;

int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Packs 8 6-bit scales and mins into 12 bytes: sub-blocks 0..3 use bytes 0..3 (scale) and
// 4..7 (min) directly; sub-blocks 4..7 keep their low nibbles in bytes 8..11 and their top
// 2 bits in bits 6..7 of bytes 0..7.
void pack_scale_min_k4(const uint8_t* ls, const uint8_t* lm, uint8_t* scales) {
  for (int j = 0; j < kQK_K / 32; ++j) {
    if (j < 4) {
      scales[j] = ls[j];
      scales[j + 4] = lm[j];
    } else {
      scales[j + 4] = static_cast<uint8_t>((ls[j] & 0xf) | ((lm[j] & 0xf) << 4));
      scales[j - 4] = static_cast<uint8_t>(scales[j - 4] | ((ls[j] >> 4) << 6));
      scales[j] = static_cast<uint8_t>(scales[j] | ((lm[j] >> 4) << 6));
    }
  }
}

// Re-rounds each element against the stored sub-block scale and min (levels in [0, nmax]).
// Sub-blocks whose scale is 0 keep the search's levels.
void requantize_k4(const float* x, const uint16_t d_bits, const uint16_t dmin_bits, const uint8_t* scales, int nmax,
                   uint8_t* L) {
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t sc, m;
    unpack_scale_min_k4(j, scales, &sc, &m);
    const float d = fp16_to_fp32(d_bits) * static_cast<float>(sc);
    if (d == 0) continue;
    const float dm = fp16_to_fp32(dmin_bits) * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      L[32 * j + ii] = static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax));
    }
  }
}

// Search for the scales/mins of the 8 sub-blocks and their 6-bit encoding, shared by Q4_K
// (nmax 15) and Q5_K (nmax 31). Writes d, dmin and scales; leaves the search's levels in L.
template <typename Block>
void search_scales_k4(const float* x, const float* qw, int nmax, Block* y, uint8_t* L) {
  uint8_t Laux[32];
  float weights[32];
  float mins[kQK_K / 32];
  float scales[kQK_K / 32];
  uint8_t ls[kQK_K / 32];
  uint8_t lm[kQK_K / 32];
  if (qw == nullptr) {
    // Reference path: per-sub-block weights |x| + rms(x), max-based 6-bit scale encoding.
    const float rmin = nmax == 15 ? -1.f : -0.5f;
    const int nstep = nmax == 15 ? 20 : 15;
    float max_scale = 0;  // as the min is subtracted, scales are non-negative
    float max_min = 0;
    for (int j = 0; j < kQK_K / 32; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] =
          search::make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < kQK_K / 32; ++j) {
      // Narrow to uint8_t first (as the reference), then clamp to 6 bits.
      ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
      lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    }
    y->d = fp32_to_fp16(max_scale / 63.f);
    y->dmin = fp32_to_fp16(max_min / 63.f);
  } else {
    // Importance path: weights qw * sqrt(2 * mean(x^2) + x^2), least-squares 6-bit encoding.
    float sum_x2 = 0;
    for (int l = 0; l < kQK_K; ++l) sum_x2 += x[l] * x[l];
    const float sigma2 = 2 * sum_x2 / kQK_K;
    float sw[kQK_K / 32];
    for (int j = 0; j < kQK_K / 32; ++j) {
      for (int l = 0; l < 32; ++l) {
        weights[l] = qw[32 * j + l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
      }
      float sumw = 0;
      for (int l = 0; l < 32; ++l) sumw += weights[l];
      sw[j] = sumw;
      scales[j] =
          search::make_qkx3_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
    }
    const float d_block = search::make_qp_quants(kQK_K / 32, 63, scales, ls, sw);
    const float m_block = search::make_qp_quants(kQK_K / 32, 63, mins, lm, sw);
    // make_qp_quants already caps at 63 (only a negative scale could wrap); the reference
    // re-clamps for Q5_K only, and so do we, to stay byte-identical.
    if (nmax == 31) {
      for (int j = 0; j < kQK_K / 32; ++j) {
        ls[j] = std::min<uint8_t>(63, ls[j]);
        lm[j] = std::min<uint8_t>(63, lm[j]);
      }
    }
    y->d = fp32_to_fp16(d_block);
    y->dmin = fp32_to_fp16(m_block);
  }
  pack_scale_min_k4(ls, lm, y->scales);
}

void quantize_block_q4_k(const float* x, BlockQ4_K* y, const float* qw) {
  uint8_t L[kQK_K];
  search_scales_k4(x, qw, 15, y, L);
  requantize_k4(x, y->d, y->dmin, y->scales, 15, L);
  uint8_t* q = y->qs;
  for (int j = 0; j < kQK_K; j += 64, q += 32) {
    for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

void quantize_block_q5_k(const float* x, BlockQ5_K* y, const float* qw) {
  uint8_t L[kQK_K];
  search_scales_k4(x, qw, 31, y, L);
  requantize_k4(x, y->d, y->dmin, y->scales, 31, L);
  std::memset(y->qh, 0, sizeof(y->qh));
  uint8_t* ql = y->qs;
  uint8_t m1 = 1, m2 = 2;
  for (int n = 0; n < kQK_K; n += 64, ql += 32) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[n + j];
      if (l1 > 15) {
        l1 -= 16;
        y->qh[j] |= m1;
      }
      int l2 = L[n + j + 32];
      if (l2 > 15) {
        l2 -= 16;
        y->qh[j] |= m2;
      }
      ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
    m1 = static_cast<uint8_t>(m1 << 2);
    m2 = static_cast<uint8_t>(m2 << 2);
  }
}

void quantize_block_q6_k(const float* x, BlockQ6_K* y, const float* qw) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  float max_scale = 0;
  float max_abs_scale = 0;
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    // Without importance the error weight is x^2; with it, the importance itself.
    const float* w = qw != nullptr ? qw + 16 * ib : nullptr;
    const float scale = search::make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, search::ErrorWeight::kSquare, w);
    scales[ib] = scale;
    if (std::fabs(scale) > max_abs_scale) {
      max_abs_scale = std::fabs(scale);
      max_scale = scale;
    }
  }
  if (max_abs_scale < search::kGroupMaxEps) {
    std::memset(y, 0, sizeof(*y));
    y->d = fp32_to_fp16(0.f);
    return;
  }
  const float iscale = -128.f / max_scale;
  y->d = fp32_to_fp16(1 / iscale);
  for (int ib = 0; ib < kQK_K / 16; ++ib) {
    y->scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
  }
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = fp16_to_fp32(y->d) * static_cast<float>(y->scales[j]);
    if (d == 0) continue;
    for (int ii = 0; ii < 16; ++ii) {
      L[16 * j + ii] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
    }
  }
  uint8_t* ql = y->ql;
  uint8_t* qh = y->qh;
  for (int j = 0; j < kQK_K; j += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      const int q1 = L[j + l];
      const int q2 = L[j + l + 32];
      const int q3 = L[j + l + 64];
      const int q4 = L[j + l + 96];
      ql[l] = static_cast<uint8_t>((q1 & 0xf) | ((q3 & 0xf) << 4));
      ql[l + 32] = static_cast<uint8_t>((q2 & 0xf) | ((q4 & 0xf) << 4));
      qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

}  // namespace

void unpack_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t n, const float* importance) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    quantize_block_q4_k(x + kQK_K * i, y + i, importance ? importance + kQK_K * i : nullptr);
  }
}

void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t n, const float* importance) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    quantize_block_q5_k(x + kQK_K * i, y + i, importance ? importance + kQK_K * i : nullptr);
  }
}

void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t n, const float* importance) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    quantize_block_q6_k(x + kQK_K * i, y + i, importance ? importance + kQK_K * i : nullptr);
  }
}

void quantize_row_q8_k(const float* x, BlockQ8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
    float max = 0;
    float amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
      continue;
    }
    // -127 (not -128) so that |q| <= 127, which the SIMD dot products rely on.
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int j = 0; j < kQK_K / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[16 * j + ii];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

void dequantize_row_q4_k(const BlockQ4_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (int is = 0; is < kQK_K / 32; is += 2, q += 32) {
      uint8_t sc, m;
      unpack_scale_min_k4(is, x[i].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = min * static_cast<float>(m);
      unpack_scale_min_k4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xf) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequantize_row_q5_k(const BlockQ5_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    uint8_t u1 = 1, u2 = 2;
    for (int is = 0; is < kQK_K / 32; is += 2, ql += 32) {
      uint8_t sc, m;
      unpack_scale_min_k4(is, x[i].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = min * static_cast<float>(m);
      unpack_scale_min_k4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = min * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xf) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

void dequantize_row_q6_k(const BlockQ6_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int half = 0; half < kQK_K; half += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void dequantize_row_q8_k(const BlockQ8_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    for (int j = 0; j < kQK_K; ++j) *y++ = x[i].d * static_cast<float>(x[i].qs[j]);
  }
}

}  // namespace hearth::kernels::ref
