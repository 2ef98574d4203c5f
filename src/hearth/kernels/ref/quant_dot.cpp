// Reference dot products of a weight row with an activation row in the partner format
// (vec_dot_type). Integer dot per block, then scaled, in the order of ggml's scalar
// ggml_vec_dot_*_generic (ggml-cpu/quants.c) so results match it bit for bit; the K-quant dots
// keep ggml's 8 per-lane float accumulators for the same reason.
#include <cstring>

#include "hearth/kernels/fp16.h"
#include "hearth/kernels/quant_ref.h"

namespace hearth::kernels::ref {
namespace {

// Q4_K/Q5_K: the 8 6-bit scales (sc) and mins (m) of a block.
void unpack_scales_mins_k4(const uint8_t* packed, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < kQK_K / 32; ++j) unpack_scale_min_k4(j, packed, &sc[j], &m[j]);
}

// Adds the per-lane integer sums of one K-quant block to the lane accumulators. `q` holds the
// 256 weight levels (already centred where the format is symmetric), `scale[j]` the integer
// scale of each group of `group` elements. Element e lands in lane e % 8, as in ggml.
void accumulate_lanes(const int8_t* q, const int8_t* q8, const int* scale, int group, int32_t* aux32) {
  for (int e = 0; e < kQK_K; ++e) aux32[e % 8] += scale[e / group] * (q8[e] * q[e]);
}

}  // namespace

float vec_dot_q4_0_q8_0(int64_t n, const BlockQ4_0* x, const BlockQ8_0* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK8_0; ++ib) {
    int sumi0 = 0;
    int sumi1 = 0;
    for (int j = 0; j < kQK8_0 / 2; ++j) {
      sumi0 += ((x[ib].qs[j] & 0x0f) - 8) * y[ib].qs[j];
      sumi1 += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + kQK8_0 / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += static_cast<float>(sumi) * fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d);
  }
  return sumf;
}

float vec_dot_q4_1_q8_1(int64_t n, const BlockQ4_1* x, const BlockQ8_1* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK8_1; ++ib) {
    int sumi0 = 0;
    int sumi1 = 0;
    for (int j = 0; j < kQK8_1 / 2; ++j) {
      sumi0 += (x[ib].qs[j] & 0x0f) * y[ib].qs[j];
      sumi1 += (x[ib].qs[j] >> 4) * y[ib].qs[j + kQK8_1 / 2];
    }
    const int sumi = sumi0 + sumi1;
    // sum(d*q + m)(dy*qy) = d*dy*sum(q*qy) + m*(dy*sum(qy)), and s stores dy*sum(qy).
    sumf += (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d)) * static_cast<float>(sumi) +
            fp16_to_fp32(x[ib].m) * fp16_to_fp32(y[ib].s);
  }
  return sumf;
}

float vec_dot_q5_0_q8_0(int64_t n, const BlockQ5_0* x, const BlockQ8_0* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK8_0; ++ib) {
    uint32_t qh;
    std::memcpy(&qh, x[ib].qh, sizeof(qh));
    int sumi0 = 0;
    int sumi1 = 0;
    for (int j = 0; j < kQK8_0 / 2; ++j) {
      const int x0 = ((x[ib].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4)) - 16;
      const int x1 = ((x[ib].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4)) - 16;
      sumi0 += x0 * y[ib].qs[j];
      sumi1 += x1 * y[ib].qs[j + kQK8_0 / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d)) * static_cast<float>(sumi);
  }
  return sumf;
}

float vec_dot_q5_1_q8_1(int64_t n, const BlockQ5_1* x, const BlockQ8_1* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK8_1; ++ib) {
    uint32_t qh;
    std::memcpy(&qh, x[ib].qh, sizeof(qh));
    int sumi0 = 0;
    int sumi1 = 0;
    for (int j = 0; j < kQK8_1 / 2; ++j) {
      const int x0 = (x[ib].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int x1 = (x[ib].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      sumi0 += x0 * y[ib].qs[j];
      sumi1 += x1 * y[ib].qs[j + kQK8_1 / 2];
    }
    const int sumi = sumi0 + sumi1;
    sumf += (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d)) * static_cast<float>(sumi) +
            fp16_to_fp32(x[ib].m) * fp16_to_fp32(y[ib].s);
  }
  return sumf;
}

float vec_dot_q8_0_q8_0(int64_t n, const BlockQ8_0* x, const BlockQ8_0* y) {
  float sumf = 0;
  for (int64_t ib = 0; ib < n / kQK8_0; ++ib) {
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += x[ib].qs[j] * y[ib].qs[j];
    sumf += static_cast<float>(sumi) * (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d));
  }
  return sumf;
}

float vec_dot_q2_k_q8_k(int64_t n, const BlockQ2_K* x, const BlockQ8_K* y) {
  float sumf = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    // The min term: sum over sub-blocks of m_j * sum(q8) uses the precomputed bsums.
    int summs = 0;
    for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (x[i].scales[j] >> 4);
    const float dall = y[i].d * fp16_to_fp32(x[i].d);
    const float dmin = y[i].d * fp16_to_fp32(x[i].dmin);
    const uint8_t* q2 = x[i].qs;
    const int8_t* q8 = y[i].qs;
    int isum = 0;
    int is = 0;
    for (int half = 0; half < kQK_K / 128; ++half, q2 += 32) {
      for (int shift = 0; shift < 8; shift += 2, q8 += 32) {
        for (int part = 0; part < 2; ++part) {
          const int d = x[i].scales[is++] & 0xf;
          int isuml = 0;
          for (int l = 16 * part; l < 16 * part + 16; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
          isum += d * isuml;
        }
      }
    }
    sumf += dall * static_cast<float>(isum) - dmin * static_cast<float>(summs);
  }
  return sumf;
}

float vec_dot_q3_k_q8_k(int64_t n, const BlockQ3_K* x, const BlockQ8_K* y) {
  float sums[8] = {};
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    // Levels in [-4, 3]: low 2 bits from qs, minus 4 unless the hmask bit is set.
    int8_t q[kQK_K];
    const uint8_t* q3 = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    int8_t* a = q;
    uint8_t m = 1;
    for (int half = 0; half < kQK_K; half += 128, q3 += 32) {
      for (int shift = 0; shift < 8; shift += 2, a += 32, m = static_cast<uint8_t>(m << 1)) {
        for (int l = 0; l < 32; ++l) a[l] = static_cast<int8_t>(((q3[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
      }
    }
    int8_t sc8[kQK_K / 16];
    unpack_scales_q3_k(x[i].scales, sc8);
    int scale[kQK_K / 16];
    for (int j = 0; j < kQK_K / 16; ++j) scale[j] = sc8[j];
    int32_t aux32[8] = {};
    accumulate_lanes(q, y[i].qs, scale, 16, aux32);
    const float d = fp16_to_fp32(x[i].d) * y[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
  }
  float sumf = 0;
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

namespace {

// Shared by Q4_K and Q5_K: `q` holds the 256 unsigned levels of block i.
void dot_k4_block(const int8_t* q, const uint8_t* packed_scales, uint16_t d_bits, uint16_t dmin_bits,
                  const BlockQ8_K& y, float* sums, float* sumf) {
  uint8_t sc[kQK_K / 32], m[kQK_K / 32];
  unpack_scales_mins_k4(packed_scales, sc, m);
  int sumi = 0;
  for (int j = 0; j < kQK_K / 16; ++j) sumi += y.bsums[j] * m[j / 2];
  int scale[kQK_K / 32];
  for (int j = 0; j < kQK_K / 32; ++j) scale[j] = sc[j];
  int32_t aux32[8] = {};
  accumulate_lanes(q, y.qs, scale, 32, aux32);
  const float d = fp16_to_fp32(d_bits) * y.d;
  for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
  const float dmin = fp16_to_fp32(dmin_bits) * y.d;
  *sumf -= dmin * static_cast<float>(sumi);
}

}  // namespace

float vec_dot_q4_k_q8_k(int64_t n, const BlockQ4_K* x, const BlockQ8_K* y) {
  float sums[8] = {};
  float sumf = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t q[kQK_K];
    const uint8_t* q4 = x[i].qs;
    for (int j = 0; j < kQK_K; j += 64, q4 += 32) {
      for (int l = 0; l < 32; ++l) {
        q[j + l] = static_cast<int8_t>(q4[l] & 0xf);
        q[j + l + 32] = static_cast<int8_t>(q4[l] >> 4);
      }
    }
    dot_k4_block(q, x[i].scales, x[i].d, x[i].dmin, y[i], sums, &sumf);
  }
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

float vec_dot_q5_k_q8_k(int64_t n, const BlockQ5_K* x, const BlockQ8_K* y) {
  float sums[8] = {};
  float sumf = 0;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t q[kQK_K];
    const uint8_t* q4 = x[i].qs;
    const uint8_t* hm = x[i].qh;
    uint8_t m = 1;
    for (int j = 0; j < kQK_K; j += 64, q4 += 32, m = static_cast<uint8_t>(m << 2)) {
      const uint8_t m2 = static_cast<uint8_t>(m << 1);
      for (int l = 0; l < 32; ++l) {
        q[j + l] = static_cast<int8_t>((q4[l] & 0xf) + ((hm[l] & m) ? 16 : 0));
        q[j + l + 32] = static_cast<int8_t>((q4[l] >> 4) + ((hm[l] & m2) ? 16 : 0));
      }
    }
    dot_k4_block(q, x[i].scales, x[i].d, x[i].dmin, y[i], sums, &sumf);
  }
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

float vec_dot_q6_k_q8_k(int64_t n, const BlockQ6_K* x, const BlockQ8_K* y) {
  float sums[8] = {};
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    int8_t q[kQK_K];
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    for (int j = 0; j < kQK_K; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        q[j + l] = static_cast<int8_t>(((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32);
        q[j + l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32);
        q[j + l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        q[j + l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int scale[kQK_K / 16];
    for (int j = 0; j < kQK_K / 16; ++j) scale[j] = x[i].scales[j];
    int32_t aux32[8] = {};
    accumulate_lanes(q, y[i].qs, scale, 16, aux32);
    const float d = fp16_to_fp32(x[i].d) * y[i].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(aux32[l]);
  }
  float sumf = 0;
  for (int l = 0; l < 8; ++l) sumf += sums[l];
  return sumf;
}

float vec_dot_f32(int64_t n, const float* x, const float* y) {
  double sumf = 0;
  for (int64_t i = 0; i < n; ++i) sumf += static_cast<double>(x[i] * y[i]);
  return static_cast<float>(sumf);
}

float vec_dot_f16(int64_t n, const uint16_t* x, const uint16_t* y) {
  double sumf = 0;
  for (int64_t i = 0; i < n; ++i) sumf += static_cast<double>(fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]));
  return static_cast<float>(sumf);
}

float vec_dot_bf16(int64_t n, const uint16_t* x, const uint16_t* y) {
  double sumf = 0;
  for (int64_t i = 0; i < n; ++i) sumf += static_cast<double>(bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]));
  return static_cast<float>(sumf);
}

}  // namespace hearth::kernels::ref
