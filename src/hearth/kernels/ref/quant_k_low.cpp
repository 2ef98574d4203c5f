// Q2_K and Q3_K: 256-element super-blocks of 16 sub-blocks of 16, with 4-bit (Q2_K) or 6-bit
// (Q3_K) sub-block scales. Quantizers follow ggml-quants.c (quantize_row_q2_K_ref / _impl,
// quantize_row_q3_K_ref / _impl) operation by operation, so the output is byte-identical.
#include <cmath>
#include <cstring>

#include "hearth/kernels/fp16.h"
#include "hearth/kernels/quant_ref.h"
#include "hearth/kernels/quant_search.h"

namespace hearth::kernels::ref {
namespace {

using search::nearest_int;

int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// 2-bit packing shared by Q2_K and Q3_K: per 128 elements, byte l holds elements
// l, l + 32, l + 64, l + 96 at bit offsets 0, 2, 4, 6.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK_K; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] =
          static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
  }
}

// Q2_K tail shared by both quantizers: re-round every element against the stored (fp16)
// scales, then pack. Sub-blocks whose scale is 0 keep the search's levels.
void requantize_q2_k(const float* x, BlockQ2_K* y, uint8_t* L) {
  const float dall = fp16_to_fp32(y->d);
  const float mall = fp16_to_fp32(y->dmin);
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = dall * static_cast<float>(y->scales[j] & 0xf);
    if (d == 0) continue;
    const float dm = mall * static_cast<float>(y->scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii) {
      L[16 * j + ii] = static_cast<uint8_t>(clamp_int(nearest_int((x[16 * j + ii] + dm) / d), 0, 3));
    }
  }
  pack_2bit(L, y->qs);
}

void quantize_block_q2_k_ref(const float* x, BlockQ2_K* y) {
  constexpr float kQ4Scale = 15.f;
  uint8_t L[kQK_K];
  uint8_t Laux[16];
  float weights[16];
  float mins[kQK_K / 16];
  float scales[kQK_K / 16];
  float max_scale = 0;  // as the min is subtracted, scales are non-negative
  float max_min = 0;
  for (int j = 0; j < kQK_K / 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] = search::make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  if (max_scale > 0) {
    const float iscale = kQ4Scale / max_scale;
    for (int j = 0; j < kQK_K / 16; ++j) y->scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
    y->d = fp32_to_fp16(max_scale / kQ4Scale);
  } else {
    std::memset(y->scales, 0, sizeof(y->scales));
    y->d = fp32_to_fp16(0.f);
  }
  if (max_min > 0) {
    const float iscale = kQ4Scale / max_min;
    for (int j = 0; j < kQK_K / 16; ++j) {
      y->scales[j] = static_cast<uint8_t>(y->scales[j] | (nearest_int(iscale * mins[j]) << 4));
    }
    y->dmin = fp32_to_fp16(max_min / kQ4Scale);
  } else {
    y->dmin = fp32_to_fp16(0.f);
  }
  requantize_q2_k(x, y, L);
}

void quantize_block_q2_k_imatrix(const float* x, BlockQ2_K* y, const float* qw) {
  uint8_t L[kQK_K];
  uint8_t Laux[16];
  float mins[kQK_K / 16];
  float scales[kQK_K / 16];
  float sw[kQK_K / 16];
  float weight[16];
  uint8_t Ls[kQK_K / 16], Lm[kQK_K / 16];
  float sumx2 = 0;
  for (int j = 0; j < kQK_K; ++j) sumx2 += x[j] * x[j];
  const float sigma2 = sumx2 / kQK_K;
  for (int j = 0; j < kQK_K / 16; ++j) {
    for (int l = 0; l < 16; ++l) {
      weight[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
    }
    sw[j] = 0;
    for (int l = 0; l < 16; ++l) sw[j] += weight[l];
    scales[j] =
        search::make_qkx3_quants(16, 3, x + 16 * j, weight, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
  }
  const float dm = search::make_qp_quants(kQK_K / 16, 15, scales, Ls, sw);
  const float mm = search::make_qp_quants(kQK_K / 16, 15, mins, Lm, sw);
  y->d = fp32_to_fp16(dm);
  y->dmin = fp32_to_fp16(mm);
  for (int j = 0; j < kQK_K / 16; ++j) y->scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
  requantize_q2_k(x, y, L);
}

// Packs 16 6-bit Q3_K scales (already offset by 32, in [0, 63]): low nibbles of scales 0..7 in
// bytes 0..7 and of 8..15 in their high nibbles; the top 2 bits of scale j in byte 8 + j % 4 at
// bit offset 2 * (j / 4).
void pack_scales_q3_k(const int* ls, uint8_t* packed) {
  std::memset(packed, 0, 12);
  for (int j = 0; j < kQK_K / 16; ++j) {
    const int l = ls[j];
    if (j < 8) {
      packed[j] = static_cast<uint8_t>(l & 0xf);
    } else {
      packed[j - 8] = static_cast<uint8_t>(packed[j - 8] | ((l & 0xf) << 4));
    }
    packed[j % 4 + 8] = static_cast<uint8_t>(packed[j % 4 + 8] | ((l >> 4) << (2 * (j / 4))));
  }
}

// Q3_K tail shared by both quantizers: re-round against the stored scales, split off the high
// bit into hmask, pack the low 2 bits. L holds levels in [0, 7].
void requantize_q3_k(const float* x, BlockQ3_K* y, int8_t* L) {
  int8_t sc[kQK_K / 16];
  unpack_scales_q3_k(y->scales, sc);
  const float dall = fp16_to_fp32(y->d);
  for (int j = 0; j < kQK_K / 16; ++j) {
    const float d = dall * static_cast<float>(sc[j]);
    if (d == 0) continue;
    for (int ii = 0; ii < 16; ++ii) {
      L[16 * j + ii] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
    }
  }
  std::memset(y->hmask, 0, sizeof(y->hmask));
  uint8_t low[kQK_K];
  for (int j = 0; j < kQK_K; ++j) {
    // Element j's high bit: byte j % 32, bit j / 32.
    if (L[j] > 3) y->hmask[j % 32] = static_cast<uint8_t>(y->hmask[j % 32] | (1u << (j / 32)));
    low[j] = static_cast<uint8_t>(L[j] & 3);
  }
  pack_2bit(low, y->qs);
}

void quantize_block_q3_k_ref(const float* x, BlockQ3_K* y) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  float max_scale = 0;
  float amax = 0;
  for (int j = 0; j < kQK_K / 16; ++j) {
    scales[j] = search::make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
    const float scale = std::fabs(scales[j]);
    if (scale > amax) {
      amax = scale;
      max_scale = scales[j];
    }
  }
  if (max_scale != 0) {
    const float iscale = -32.f / max_scale;
    int ls[kQK_K / 16];
    for (int j = 0; j < kQK_K / 16; ++j) {
      // The reference narrows to int8_t first; |iscale * scale| <= 32 so nothing is lost.
      const int l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
      ls[j] = clamp_int(l, -32, 31) + 32;
    }
    pack_scales_q3_k(ls, y->scales);
    y->d = fp32_to_fp16(1 / iscale);
  } else {
    std::memset(y->scales, 0, sizeof(y->scales));
    y->d = fp32_to_fp16(0.f);
  }
  requantize_q3_k(x, y, L);
}

void quantize_block_q3_k_imatrix(const float* x, BlockQ3_K* y, const float* qw) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  float weight[16];
  float sw[kQK_K / 16];
  int8_t Ls[kQK_K / 16];
  float sumx2 = 0;
  for (int j = 0; j < kQK_K; ++j) sumx2 += x[j] * x[j];
  const float sigma2 = 2 * sumx2 / kQK_K;
  for (int j = 0; j < kQK_K / 16; ++j) {
    for (int l = 0; l < 16; ++l) {
      weight[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
    }
    float sumw = 0;
    for (int l = 0; l < 16; ++l) sumw += weight[l];
    sw[j] = sumw;
    scales[j] = search::make_qx_quants(16, 4, x + 16 * j, L + 16 * j, search::ErrorWeight::kSquare, weight);
  }
  const float d_block = search::make_qx_quants(kQK_K / 16, 32, scales, Ls, search::ErrorWeight::kSquare, sw);
  int ls[kQK_K / 16];
  for (int j = 0; j < kQK_K / 16; ++j) ls[j] = Ls[j];
  pack_scales_q3_k(ls, y->scales);
  y->d = fp32_to_fp16(d_block);
  requantize_q3_k(x, y, L);
}

}  // namespace

void unpack_scales_q3_k(const uint8_t* packed, int8_t* scales) {
  for (int j = 0; j < kQK_K / 16; ++j) {
    const int low = j < 8 ? (packed[j] & 0xf) : (packed[j - 8] >> 4);
    const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    scales[j] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

void quantize_row_q2_k(const float* x, BlockQ2_K* y, int64_t n, const float* importance) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    if (importance != nullptr) {
      quantize_block_q2_k_imatrix(x + kQK_K * i, y + i, importance + kQK_K * i);
    } else {
      quantize_block_q2_k_ref(x + kQK_K * i, y + i);
    }
  }
}

void quantize_row_q3_k(const float* x, BlockQ3_K* y, int64_t n, const float* importance) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    if (importance != nullptr) {
      quantize_block_q3_k_imatrix(x + kQK_K * i, y + i, importance + kQK_K * i);
    } else {
      quantize_block_q3_k_ref(x + kQK_K * i, y + i);
    }
  }
}

void dequantize_row_q2_k(const BlockQ2_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int half = 0; half < kQK_K; half += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {  // two sub-blocks of 16 share each 32 bytes
          const uint8_t sc = x[i].scales[is++];
          const float dl = d * static_cast<float>(sc & 0xf);
          const float ml = min * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) {
            *y++ = dl * static_cast<float>((q[16 * part + l] >> shift) & 3) - ml;
          }
        }
      }
    }
  }
}

void dequantize_row_q3_k(const BlockQ3_K* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d_all = fp16_to_fp32(x[i].d);
    int8_t scales[kQK_K / 16];
    unpack_scales_q3_k(x[i].scales, scales);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    int is = 0;
    for (int half = 0; half < kQK_K; half += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * static_cast<float>(scales[is++]);
          for (int l = 16 * part; l < 16 * part + 16; ++l) {
            const int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
            *y++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

}  // namespace hearth::kernels::ref
