#include "hearth/train/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hearth::train {
namespace {

// Rows per parallel_for claim: large enough that claiming is cheap.
constexpr int64_t kRowGrain = 8;

inline float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

std::vector<float> rope_table(int64_t seq_len, int head_dim, float freq_base) {
  std::vector<float> cs(static_cast<size_t>(seq_len * head_dim));
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(head_dim));
  for (int64_t pos = 0; pos < seq_len; ++pos) {
    float theta = static_cast<float>(pos);
    float* c = cs.data() + pos * head_dim;
    for (int i = 0; i < head_dim; i += 2) {
      c[i] = std::cos(theta);  // no frequency factors, no linear scaling
      c[i + 1] = std::sin(theta);
      theta *= theta_scale;
    }
  }
  return cs;
}

float* Ops::scratch_floats(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

void Ops::linear(const float* w, int64_t rows, int64_t cols, const float* x, int64_t n, float* y) {
  const size_t need = kernels::matmul_scratch_bytes(*kt_, TensorType::F32, cols, n);
  if (mm_scratch_.size() < need) mm_scratch_.resize(need);
  kernels::MatmulArgs a{TensorType::F32, reinterpret_cast<const std::byte*>(w), static_cast<size_t>(cols) * 4,
                        rows, cols, x, cols, n, y, rows, mm_scratch_.data()};
  kt_->matmul(a, *pool_);
}

void Ops::transpose(const float* src, int64_t rows, int64_t cols, float* dst) {
  constexpr int64_t kTile = 32;
  pool_->parallel_for((cols + kTile - 1) / kTile, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t cb = b0 * kTile; cb < std::min(cols, b1 * kTile); cb += kTile) {
      const int64_t ce = std::min(cols, cb + kTile);
      for (int64_t rb = 0; rb < rows; rb += kTile) {
        const int64_t re = std::min(rows, rb + kTile);
        for (int64_t c = cb; c < ce; ++c) {
          for (int64_t r = rb; r < re; ++r) dst[c * rows + r] = src[r * cols + c];
        }
      }
    }
  });
}

void Ops::linear_backward(const float* wt, int64_t rows, int64_t cols, const float* x, const float* dy, int64_t n,
                          float* dx, float* dw) {
  if (dx != nullptr) {
    // dx[n][cols] += dy[n][rows] · W[rows][cols]: a matmul whose "weight" is W^T [cols][rows].
    float* t = scratch_floats(tmp_a_, static_cast<size_t>(n * cols));
    linear(wt, cols, rows, dy, n, t);
    const size_t total = static_cast<size_t>(n * cols);
    pool_->parallel_for(n, kRowGrain, [&](int64_t r0, int64_t r1) {
      for (size_t i = static_cast<size_t>(r0 * cols); i < std::min(total, static_cast<size_t>(r1 * cols)); ++i) {
        dx[i] += t[i];
      }
    });
  }
  if (dw != nullptr) {
    // dW[r][c] += sum_t dy[t][r] x[t][c]: with x^T [cols][n] as the "weight" and dy^T [rows][n]
    // as the activations, the kernel's output rows are W's rows.
    float* xt = scratch_floats(tmp_b_, static_cast<size_t>(cols * n));
    float* dyt = scratch_floats(tmp_c_, static_cast<size_t>(rows * n));
    transpose(x, n, cols, xt);
    transpose(dy, n, rows, dyt);
    float* t = scratch_floats(tmp_a_, static_cast<size_t>(rows * cols));
    linear(xt, cols, n, dyt, rows, t);
    pool_->parallel_for(rows, kRowGrain, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0 * cols; i < r1 * cols; ++i) dw[i] += t[i];
    });
  }
}

void Ops::rms_norm(const float* x, const float* w, int64_t n_tok, int64_t n, float eps, float* y) {
  pool_->parallel_for(n_tok, kRowGrain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) kt_->rms_norm(y + t * n, x + t * n, w, n, eps);
  });
}

void Ops::rms_norm_backward(const float* x, const float* w, const float* dy, int64_t n_tok, int64_t n, float eps,
                            float* dx, float* dw) {
  // s = 1/sqrt(mean(x^2) + eps); y = x s w.  dx = s (dy w) - x s^3/n sum(dy w x);  dw += dy x s.
  std::vector<float>& scales = tmp_a_;
  scales.resize(static_cast<size_t>(n_tok));
  pool_->parallel_for(n_tok, kRowGrain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* xr = x + t * n;
      const float* g = dy + t * n;
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(xr[i]) * xr[i];
      const float s = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
      scales[static_cast<size_t>(t)] = s;
      double gx = 0.0;
      for (int64_t i = 0; i < n; ++i) gx += static_cast<double>(g[i]) * w[i] * xr[i];
      const float k = static_cast<float>(gx) * s * s * s / static_cast<float>(n);
      float* d = dx + t * n;
      for (int64_t i = 0; i < n; ++i) d[i] += s * g[i] * w[i] - xr[i] * k;
    }
  });
  if (dw == nullptr) return;
  // Column sums in token order (one thread per column range: fixed order).
  pool_->parallel_for(n, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t t = 0; t < n_tok; ++t) {
      const float s = scales[static_cast<size_t>(t)];
      for (int64_t i = i0; i < i1; ++i) dw[i] += dy[t * n + i] * x[t * n + i] * s;
    }
  });
}

void Ops::rope(float* x, int64_t n_tok, int64_t seq_len, int n_head, int head_dim, const std::vector<float>& cs) {
  pool_->parallel_for(n_tok, kRowGrain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      kt_->rope(x + t * n_head * head_dim, n_head, head_dim, head_dim, cs.data() + (t % seq_len) * head_dim,
                kernels::RopeMode::kNorm);
    }
  });
}

void Ops::rope_backward(float* dx, int64_t n_tok, int64_t seq_len, int n_head, int head_dim,
                        const std::vector<float>& cs) {
  pool_->parallel_for(n_tok, kRowGrain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* c = cs.data() + (t % seq_len) * head_dim;
      for (int h = 0; h < n_head; ++h) {
        float* v = dx + (t * n_head + h) * head_dim;
        for (int i = 0; i < head_dim; i += 2) {
          const float x0 = v[i], x1 = v[i + 1];
          v[i] = x0 * c[i] + x1 * c[i + 1];
          v[i + 1] = -x0 * c[i + 1] + x1 * c[i];
        }
      }
    }
  });
}

void Ops::attention(const AttnShape& s, const float* q, const float* k, const float* v, float* probs, float* out) {
  const int64_t T = s.seq_len, hd = s.head_dim, nq = s.n_head * hd, nkv = s.n_head_kv * hd;
  const int group = s.n_head / s.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  pool_->parallel_for(s.n_seq * s.n_head, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / s.n_head, h = w % s.n_head, hk = h / group;
      float* P = probs + w * T * T;
      for (int64_t i = 0; i < T; ++i) {
        const float* qi = q + (b * T + i) * nq + h * hd;
        float* p = P + i * T;
        float mx = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {
          p[j] = dot(qi, k + (b * T + j) * nkv + hk * hd, hd) * scale;
          mx = std::max(mx, p[j]);
        }
        float sum = 0.0f;
        for (int64_t j = 0; j <= i; ++j) {
          p[j] = std::exp(p[j] - mx);
          sum += p[j];
        }
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j <= i; ++j) p[j] *= inv;
        for (int64_t j = i + 1; j < T; ++j) p[j] = 0.0f;
        float* o = out + (b * T + i) * nq + h * hd;
        std::fill(o, o + hd, 0.0f);
        for (int64_t j = 0; j <= i; ++j) axpy(o, p[j], v + (b * T + j) * nkv + hk * hd, hd);
      }
    }
  });
}

void Ops::attention_backward(const AttnShape& s, const float* q, const float* k, const float* v, const float* probs,
                             const float* d_out, float* dq, float* dk, float* dv) {
  const int64_t T = s.seq_len, hd = s.head_dim, nq = s.n_head * hd, nkv = s.n_head_kv * hd;
  const int group = s.n_head / s.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // One work item per (sequence, kv head): the query heads of a group add into the same dk, dv
  // rows, so they run in order on one thread.
  pool_->parallel_for(s.n_seq * s.n_head_kv, 1, [&](int64_t w0, int64_t w1) {
    std::vector<float> dp(static_cast<size_t>(T));
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / s.n_head_kv, hk = w % s.n_head_kv;
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
        const float* P = probs + (b * s.n_head + h) * T * T;
        for (int64_t i = 0; i < T; ++i) {
          const float* p = P + i * T;
          const float* go = d_out + (b * T + i) * nq + h * hd;
          // dP_ij = dO_i · v_j;  dv_j += P_ij dO_i;  dS_ij = P_ij (dP_ij - sum_j P_ij dP_ij).
          float pdp = 0.0f;
          for (int64_t j = 0; j <= i; ++j) {
            dp[j] = dot(go, v + (b * T + j) * nkv + hk * hd, hd);
            pdp += p[j] * dp[j];
            axpy(dv + (b * T + j) * nkv + hk * hd, p[j], go, hd);
          }
          const float* qi = q + (b * T + i) * nq + h * hd;
          float* dqi = dq + (b * T + i) * nq + h * hd;
          for (int64_t j = 0; j <= i; ++j) {
            const float ds = p[j] * (dp[j] - pdp) * scale;
            axpy(dqi, ds, k + (b * T + j) * nkv + hk * hd, hd);
            axpy(dk + (b * T + j) * nkv + hk * hd, ds, qi, hd);
          }
        }
      }
    }
  });
}

void Ops::swiglu(const float* g, const float* u, int64_t count, float* h) {
  std::memcpy(h, g, static_cast<size_t>(count) * sizeof(float));
  constexpr int64_t kChunk = 4096;
  pool_->parallel_for((count + kChunk - 1) / kChunk, 1, [&](int64_t c0, int64_t c1) {
    const int64_t b = c0 * kChunk, e = std::min(count, c1 * kChunk);
    kt_->swiglu(h + b, u + b, e - b);
  });
}

void Ops::swiglu_backward(const float* g, const float* u, const float* dh, int64_t count, float* dg, float* du) {
  // h = g sig(g) u:  dg += dh u sig(g) (1 + g (1 - sig(g)));  du += dh g sig(g).
  constexpr int64_t kChunk = 4096;
  pool_->parallel_for((count + kChunk - 1) / kChunk, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t i = c0 * kChunk; i < std::min(count, c1 * kChunk); ++i) {
      const float sg = 1.0f / (1.0f + std::exp(-g[i]));
      dg[i] += dh[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
      du[i] += dh[i] * g[i] * sg;
    }
  });
}

double Ops::cross_entropy(float* logits, const int32_t* targets, int64_t n, int64_t n_vocab, float grad_scale) {
  std::vector<double> per(static_cast<size_t>(n));
  pool_->parallel_for(n, kRowGrain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* z = logits + t * n_vocab;
      float mx = -INFINITY;
      for (int64_t i = 0; i < n_vocab; ++i) mx = std::max(mx, z[i]);
      double sum = 0.0;
      for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(z[i] - mx));
      const double lse = static_cast<double>(mx) + std::log(sum);
      per[static_cast<size_t>(t)] = lse - static_cast<double>(z[targets[t]]);
      if (grad_scale != 0.0f) {
        for (int64_t i = 0; i < n_vocab; ++i) {
          z[i] = grad_scale * static_cast<float>(std::exp(static_cast<double>(z[i]) - lse));
        }
        z[targets[t]] -= grad_scale;
      }
    }
  });
  double total = 0.0;
  for (double l : per) total += l;
  return total;
}

}  // namespace hearth::train
