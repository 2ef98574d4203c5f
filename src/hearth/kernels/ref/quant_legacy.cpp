// The 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: reference quantizers
// (ggml-quants.c quantize_row_*_ref, byte-identical), importance-weighted quantizers
// (quantize_q*_0/1 with quant_weights), and dequantizers.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "hearth/kernels/fp16.h"
#include "hearth/kernels/quant_ref.h"
#include "hearth/kernels/quant_search.h"

namespace hearth::kernels::ref {
namespace {

// The value of largest magnitude in a block, with its sign (first one on ties).
float signed_absmax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, int n, float* min_out, float* max_out) {
  float min = 3.402823466e+38f;  // FLT_MAX
  float max = -3.402823466e+38f;
  for (int j = 0; j < n; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  *min_out = min;
  *max_out = max;
}

// C's float -> integer conversion (truncation toward zero) for the quantizers below, defined
// for every input: values outside int range (only from inf/NaN input) become 0.
int trunc_to_int(float v) { return (v > -2147483648.0f && v < 2147483648.0f) ? static_cast<int>(v) : 0; }

// Packs 32 five-bit values: low nibbles into qs (element j and j + 16 share a byte), bit 4 of
// element j into bit j of qh.
void pack_5bit(const uint8_t* q, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const uint8_t q0 = q[j];
    const uint8_t q1 = q[j + 16];
    qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
    qh |= ((q0 & 0x10u) >> 4) << j;
    qh |= ((q1 & 0x10u) >> 4) << (j + 16);
  }
  std::memcpy(qh_bytes, &qh, sizeof(qh));
}

// Row statistic the importance-weighted legacy quantizers use: mean of x^2 over the row.
float row_sigma2(const float* x, int64_t n) {
  float sum_x2 = 0;
  for (int64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
  return sum_x2 / static_cast<float>(n);
}

void importance_weights(const float* xb, const float* qw, float sigma2, float* weight) {
  for (int j = 0; j < 32; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
}

}  // namespace

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n) {
  const int64_t nb = n / kQK4_0;
  for (int64_t i = 0; i < nb; ++i, x += kQK4_0) {
    // d = max / -8 maps the extreme value to q = 0 exactly; the other side gets up to +7.
    const float d = signed_absmax(x, kQK4_0) / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      // +8.5 then truncation: round half up into [0, 16], clamped to 15.
      const int q0 = std::min(15, trunc_to_int(x[j] * id + 8.5f));
      const int q1 = std::min(15, trunc_to_int(x[j + kQK4_0 / 2] * id + 8.5f));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n) {
  const int64_t nb = n / kQK4_1;
  for (int64_t i = 0; i < nb; ++i, x += kQK4_1) {
    float min, max;
    min_max(x, kQK4_1, &min, &max);
    const float d = (max - min) / 15;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      const int q0 = std::min(15, trunc_to_int((x[j] - min) * id + 0.5f));
      const int q1 = std::min(15, trunc_to_int((x[j + kQK4_1 / 2] - min) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n) {
  const int64_t nb = n / kQK5_0;
  for (int64_t i = 0; i < nb; ++i, x += kQK5_0) {
    const float d = signed_absmax(x, kQK5_0) / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint8_t q[kQK5_0];
    for (int j = 0; j < kQK5_0; ++j) {
      q[j] = static_cast<uint8_t>(std::min(31, trunc_to_int(x[j] * id + 16.5f)));
    }
    pack_5bit(q, y[i].qs, y[i].qh);
  }
}

void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n) {
  const int64_t nb = n / kQK5_1;
  for (int64_t i = 0; i < nb; ++i, x += kQK5_1) {
    float min, max;
    min_max(x, kQK5_1, &min, &max);
    const float d = (max - min) / 31;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    uint8_t q[kQK5_1];
    // No clamp here (as in the reference): (x - min) * id never exceeds 31.5 for finite x.
    for (int j = 0; j < kQK5_1; ++j) {
      q[j] = static_cast<uint8_t>(trunc_to_int((x[j] - min) * id + 0.5f));
    }
    pack_5bit(q, y[i].qs, y[i].qh);
  }
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  const int64_t nb = n / kQK8_0;
  for (int64_t i = 0; i < nb; ++i, x += kQK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    // roundf: halves away from zero (the x86 SIMD path rounds them to even; see *_x86).
    for (int j = 0; j < kQK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(trunc_to_int(std::round(x[j] * id)));
  }
}

void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n) {
  const int64_t nb = n / kQK8_1;
  for (int64_t i = 0; i < nb; ++i, x += kQK8_1) {
    float amax = 0.0f;
    for (int j = 0; j < kQK8_1; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < kQK8_1; ++j) {
      y[i].qs[j] = static_cast<int8_t>(trunc_to_int(std::round(x[j] * id)));
      sum += y[i].qs[j];
    }
    y[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

void quantize_row_q8_0_x86(const float* x, BlockQ8_0* y, int64_t n) {
  const int64_t nb = n / kQK8_0;
  for (int64_t i = 0; i < nb; ++i, x += kQK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    y[i].d = fp32_to_fp16(amax / 127.f);
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    for (int j = 0; j < kQK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(search::nearest_int(x[j] * id));
  }
}

void quantize_row_q8_1_x86(const float* x, BlockQ8_1* y, int64_t n) {
  const int64_t nb = n / kQK8_1;
  for (int64_t i = 0; i < nb; ++i, x += kQK8_1) {
    float amax = 0.0f;
    for (int j = 0; j < kQK8_1; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    y[i].d = fp32_to_fp16(d);
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQK8_1; ++j) {
      y[i].qs[j] = static_cast<int8_t>(search::nearest_int(x[j] * id));
      sum += y[i].qs[j];
    }
    y[i].s = fp32_to_fp16(d * static_cast<float>(sum));
  }
}

void quantize_row_q4_0_imatrix(const float* x, BlockQ4_0* y, int64_t n, const float* importance) {
  const float sigma2 = row_sigma2(x, n);
  float weight[32];
  int8_t L[32];
  for (int64_t ib = 0; ib < n / kQK4_0; ++ib) {
    const float* xb = x + kQK4_0 * ib;
    importance_weights(xb, importance + kQK4_0 * ib, sigma2, weight);
    const float d = search::make_qx_quants(kQK4_0, 8, xb, L, search::ErrorWeight::kSquare, weight);
    y[ib].d = fp32_to_fp16(d);
    for (int j = 0; j < 16; ++j) y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  }
}

void quantize_row_q4_1_imatrix(const float* x, BlockQ4_1* y, int64_t n, const float* importance) {
  const float sigma2 = row_sigma2(x, n);
  float weight[32];
  uint8_t L[32], Laux[32];
  for (int64_t ib = 0; ib < n / kQK4_1; ++ib) {
    const float* xb = x + kQK4_1 * ib;
    importance_weights(xb, importance + kQK4_1 * ib, sigma2, weight);
    float min = 0;
    const float d = search::make_qkx3_quants(kQK4_1, 15, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, false);
    y[ib].d = fp32_to_fp16(d);
    y[ib].m = fp32_to_fp16(-min);
    for (int j = 0; j < 16; ++j) y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
  }
}

void quantize_row_q5_0_imatrix(const float* x, BlockQ5_0* y, int64_t n, const float* importance) {
  const float sigma2 = row_sigma2(x, n);
  float weight[32];
  int8_t L[32];
  for (int64_t ib = 0; ib < n / kQK5_0; ++ib) {
    const float* xb = x + kQK5_0 * ib;
    importance_weights(xb, importance + kQK5_0 * ib, sigma2, weight);
    const float d = search::make_qx_quants(kQK5_0, 16, xb, L, search::ErrorWeight::kSquare, weight);
    y[ib].d = fp32_to_fp16(d);
    uint8_t q[32];
    for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(L[j]);
    pack_5bit(q, y[ib].qs, y[ib].qh);
  }
}

void quantize_row_q5_1_imatrix(const float* x, BlockQ5_1* y, int64_t n, const float* importance) {
  const float sigma2 = row_sigma2(x, n);
  float weight[32];
  uint8_t L[32], Laux[32];
  for (int64_t ib = 0; ib < n / kQK5_1; ++ib) {
    const float* xb = x + kQK5_1 * ib;
    importance_weights(xb, importance + kQK5_1 * ib, sigma2, weight);
    float min = 0;
    const float d = search::make_qkx3_quants(kQK5_1, 31, xb, weight, L, &min, Laux, -0.9f, 0.05f, 36, false);
    y[ib].d = fp32_to_fp16(d);
    y[ib].m = fp32_to_fp16(-min);
    pack_5bit(L, y[ib].qs, y[ib].qh);
  }
}

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK4_0; ++i, y += kQK4_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      y[j] = static_cast<float>((x[i].qs[j] & 0x0f) - 8) * d;
      y[j + kQK4_0 / 2] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK4_1; ++i, y += kQK4_1) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < kQK4_1 / 2; ++j) {
      y[j] = static_cast<float>(x[i].qs[j] & 0x0f) * d + m;
      y[j + kQK4_1 / 2] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
    }
  }
}

namespace {
// The 5-bit value of element j (0..31) of a Q5_0/Q5_1 block.
int q5_value(const uint8_t* qs, uint32_t qh, int j) {
  const int low = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
  return low | static_cast<int>(((qh >> j) & 1u) << 4);
}
}  // namespace

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK5_0; ++i, y += kQK5_0) {
    const float d = fp16_to_fp32(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < kQK5_0; ++j) y[j] = static_cast<float>(q5_value(x[i].qs, qh, j) - 16) * d;
  }
}

void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK5_1; ++i, y += kQK5_1) {
    const float d = fp16_to_fp32(x[i].d);
    const float m = fp16_to_fp32(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < kQK5_1; ++j) y[j] = static_cast<float>(q5_value(x[i].qs, qh, j)) * d + m;
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK8_0; ++i, y += kQK8_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK8_0; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK8_1; ++i, y += kQK8_1) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK8_1; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

}  // namespace hearth::kernels::ref
