#include "hearth/train/ops.h"

#include "hearth/train/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hearth::train {
namespace {

// Rows per parallel_for claim: large enough that claiming is cheap.
constexpr int64_t kRowGrain = 8;

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

void Ops::linear(const float* wt, int64_t rows, int64_t cols, const float* x, int64_t n, float* y) {
  gemm({n, rows, cols, x, cols, wt, rows, y, rows, false}, *pool_);
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

void Ops::linear_backward(const float* w, int64_t rows, int64_t cols, const float* x, const float* dy, int64_t n,
                          float* dx, float* dw) {
  // dx[n][cols] += dy[n][rows] · W[rows][cols]
  if (dx != nullptr) gemm({n, cols, rows, dy, rows, w, cols, dx, cols, true}, *pool_);
  if (dw != nullptr) {
    // dW[rows][cols] += dy^T[rows][n] · x[n][cols]
    float* dyt = scratch_floats(tmp_c_, static_cast<size_t>(rows * n));
    transpose(dy, n, rows, dyt);
    gemm({rows, cols, n, dyt, n, x, cols, dw, cols, true}, *pool_);
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

// Attention per (sequence, head) as small matrix products on the calling thread. Causality is
// exploited per block of kAttnRows query rows: block [i0, i1) only needs keys [0, i1).
namespace {

constexpr int64_t kAttnRows = 32;

// dst[c][r] = src[r * ld + c] for r < rows, c < cols.
void gather_t(const float* src, int64_t ld, int64_t rows, int64_t cols, float* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * ld + c];
  }
}

}  // namespace

void Ops::attention(const AttnShape& s, const float* q, const float* k, const float* v, float* probs, float* out) {
  const int64_t T = s.seq_len, hd = s.head_dim, nq = s.n_head * hd, nkv = s.n_head_kv * hd;
  const int group = s.n_head / s.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  pool_->parallel_for(s.n_seq * s.n_head, 1, [&](int64_t w0, int64_t w1) {
    std::vector<float> kt(static_cast<size_t>(hd * T));
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / s.n_head, h = w % s.n_head, hk = h / group;
      const float* qh = q + b * T * nq + h * hd;
      const float* kh = k + b * T * nkv + hk * hd;
      const float* vh = v + b * T * nkv + hk * hd;
      float* P = probs + w * T * T;
      gather_t(kh, nkv, T, hd, kt.data());  // [hd][T]
      for (int64_t i0 = 0; i0 < T; i0 += kAttnRows) {
        const int64_t i1 = std::min(T, i0 + kAttnRows);
        // S = q k^T for rows [i0, i1), keys [0, i1)
        gemm_serial({i1 - i0, i1, hd, qh + i0 * nq, nq, kt.data(), T, P + i0 * T, T, false});
        for (int64_t i = i0; i < i1; ++i) {
          float* p = P + i * T;
          float mx = -INFINITY;
          for (int64_t j = 0; j <= i; ++j) mx = std::max(mx, p[j] *= scale);
          float sum = 0.0f;
          for (int64_t j = 0; j <= i; ++j) sum += p[j] = std::exp(p[j] - mx);
          const float inv = 1.0f / sum;
          for (int64_t j = 0; j <= i; ++j) p[j] *= inv;
          for (int64_t j = i + 1; j < i1; ++j) p[j] = 0.0f;  // masked (read by the product below)
        }
        // out = P v
        gemm_serial({i1 - i0, hd, i1, P + i0 * T, T, vh, nkv, out + b * T * nq + i0 * nq + h * hd, nq, false});
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
    const size_t tt = static_cast<size_t>(T * T);
    std::vector<float> vt(static_cast<size_t>(hd * T)), ds(tt), pt(tt), dst(tt);
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / s.n_head_kv, hk = w % s.n_head_kv;
      const float* kh = k + b * T * nkv + hk * hd;
      const float* vh = v + b * T * nkv + hk * hd;
      float* dkh = dk + b * T * nkv + hk * hd;
      float* dvh = dv + b * T * nkv + hk * hd;
      gather_t(vh, nkv, T, hd, vt.data());  // [hd][T]
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
        const float* P = probs + (b * s.n_head + h) * T * T;
        const float* qh = q + b * T * nq + h * hd;
        const float* goh = d_out + b * T * nq + h * hd;
        float* dqh = dq + b * T * nq + h * hd;
        for (int64_t i0 = 0; i0 < T; i0 += kAttnRows) {
          const int64_t i1 = std::min(T, i0 + kAttnRows);
          // dP = dO v^T;  dS = P (dP - rowsum(P dP)) * scale, zero above the diagonal.
          gemm_serial({i1 - i0, i1, hd, goh + i0 * nq, nq, vt.data(), T, ds.data() + i0 * T, T, false});
          for (int64_t i = i0; i < i1; ++i) {
            const float* p = P + i * T;
            float* d = ds.data() + i * T;
            float pdp = 0.0f;
            for (int64_t j = 0; j <= i; ++j) pdp += p[j] * d[j];
            for (int64_t j = 0; j <= i; ++j) d[j] = p[j] * (d[j] - pdp) * scale;
            for (int64_t j = i + 1; j < i1; ++j) d[j] = 0.0f;
          }
          // dq += dS k
          gemm_serial({i1 - i0, hd, i1, ds.data() + i0 * T, T, kh, nkv, dqh + i0 * nq, nq, true});
        }
        // Transposes of P and dS (lower triangles; the rest zero) for the key-side products.
        for (int64_t j = 0; j < T; ++j) {
          for (int64_t i = 0; i < T; ++i) {
            const bool in = i >= j;
            pt[static_cast<size_t>(j * T + i)] = in ? P[i * T + j] : 0.0f;
            dst[static_cast<size_t>(j * T + i)] = in ? ds[static_cast<size_t>(i * T + j)] : 0.0f;
          }
        }
        // dv += P^T dO;  dk += dS^T q   (key rows j see queries i >= j)
        for (int64_t j0 = 0; j0 < T; j0 += kAttnRows) {
          const int64_t j1 = std::min(T, j0 + kAttnRows);
          gemm_serial({j1 - j0, hd, T - j0, pt.data() + j0 * T + j0, T, goh + j0 * nq, nq, dvh + j0 * nkv, nkv, true});
          gemm_serial({j1 - j0, hd, T - j0, dst.data() + j0 * T + j0, T, qh + j0 * nq, nq, dkh + j0 * nkv, nkv, true});
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
      if (targets[t] < 0) {  // not trained (a masked position): no loss, no gradient
        per[static_cast<size_t>(t)] = 0.0;
        if (grad_scale != 0.0f) std::fill(z, z + n_vocab, 0.0f);
        continue;
      }
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

double Ops::distill_loss(float* logits, const float* teacher, const int32_t* targets, int64_t n, int64_t n_vocab,
                         float temperature, float alpha, float grad_scale) {
  std::vector<double> per(static_cast<size_t>(n));
  const double T = temperature;
  pool_->parallel_for(n, kRowGrain, [&](int64_t t0, int64_t t1) {
    std::vector<double> ps(static_cast<size_t>(n_vocab)), pt(static_cast<size_t>(n_vocab)),
        p1(static_cast<size_t>(n_vocab));
    // softmax(x / tau) into out; returns log of its normalizer (with the max folded in).
    auto softmax = [&](const float* x, double tau, std::vector<double>& out) {
      double mx = -INFINITY;
      for (int64_t i = 0; i < n_vocab; ++i) mx = std::max(mx, x[i] / tau);
      double sum = 0.0;
      for (int64_t i = 0; i < n_vocab; ++i) sum += out[i] = std::exp(x[i] / tau - mx);
      for (int64_t i = 0; i < n_vocab; ++i) out[i] /= sum;
      return mx + std::log(sum);
    };
    for (int64_t t = t0; t < t1; ++t) {
      float* z = logits + t * n_vocab;
      const float* tz = teacher + t * n_vocab;
      const double lse1 = softmax(z, 1.0, p1);
      softmax(z, T, ps);
      softmax(tz, T, pt);
      double kl = 0.0;
      for (int64_t i = 0; i < n_vocab; ++i) {
        if (pt[i] > 0.0) kl += pt[i] * (std::log(pt[i]) - std::log(std::max(ps[i], 1e-300)));
      }
      const bool has_target = targets[t] >= 0;
      const double ce = has_target ? lse1 - z[targets[t]] : 0.0;
      per[static_cast<size_t>(t)] = (1.0 - alpha) * ce + alpha * T * T * kl;
      if (grad_scale != 0.0f) {
        // d/dz: (1 - alpha)(p1 - onehot) + alpha T (ps - pt)
        for (int64_t i = 0; i < n_vocab; ++i) {
          double g = alpha * T * (ps[i] - pt[i]);
          if (has_target) g += (1.0 - alpha) * (p1[i] - (i == targets[t] ? 1.0 : 0.0));
          z[i] = grad_scale * static_cast<float>(g);
        }
      }
    }
  });
  double total = 0.0;
  for (double l : per) total += l;
  return total;
}

}  // namespace hearth::train
