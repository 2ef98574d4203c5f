// Scalar reference kernels. Arithmetic follows ggml's CPU reference where it matters for
// matching reference logits: sums of squares and softmax denominators in double.
#include <cmath>
#include <cstring>
#include <vector>

#include "hearth/kernels/fp16.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/matmul_driver.h"
#include "hearth/kernels/quant.h"
#include "hearth/kernels/type_traits.h"

namespace hearth::kernels {
namespace {

void matmul_ref(const MatmulArgs& a, ThreadPool& pool) {
  // The reference rows: activations converted by the reference quantizers, ggml's scalar dots.
  const TypeTraits& w = type_traits(a.wtype);
  const TensorType act_type = w.vec_dot_type;
  const size_t act_row = *row_bytes(act_type, static_cast<uint64_t>(a.cols));
  matmul_drive(a, pool, act_type, act_row, type_traits(act_type).from_float, w.vec_dot);
}

// One cache element; the float types inline, the quantized blocks through kv_value.
inline float kv_at(const void* base, KvType type, int64_t idx) {
  if (type == KvType::kF32) return static_cast<const float*>(base)[idx];
  if (type == KvType::kF16) return fp16_to_fp32(static_cast<const uint16_t*>(base)[idx]);
  return kv_value(base, type, idx);
}

// Where cache row j of the call is stored (AttentionArgs::ring).
inline int64_t slot(const AttentionArgs& a, int64_t j) { return a.ring > 0 ? (a.ring_first + j) % a.ring : j; }

void attention_ref(const AttentionArgs& args, ThreadPool& pool) {
  const int group = args.n_head / args.n_head_kv;
  const int64_t n_work = args.n_tokens * args.n_head;
  int64_t max_kv = 0;
  for (int64_t t = 0; t < args.n_tokens; ++t) max_kv = std::max<int64_t>(max_kv, args.pos[t] + 1);
  struct Ctx {
    const AttentionArgs* a;
    int group;
    int64_t n_work, max_kv;
  } ctx{&args, group, n_work, max_kv};
  pool.run(
      [](void* p, int ti, int nt) {
        const Ctx& c = *static_cast<Ctx*>(p);
        const AttentionArgs& a = *c.a;
        float* scores = a.scratch + static_cast<size_t>(ti) * static_cast<size_t>(c.max_kv);
        for (int64_t w = ti; w < c.n_work; w += nt) {
          const int64_t t = w / a.n_head;
          const int h = static_cast<int>(w % a.n_head);
          const int hk = h / c.group;
          const float* q = a.q + t * a.q_stride + static_cast<int64_t>(h) * a.head_dim;
          const int64_t n_kv = a.pos[t] + 1;
          float mx = -INFINITY;
          for (int64_t j = 0; j < n_kv; ++j) {
            const int64_t base = slot(a, j) * a.kv_stride + static_cast<int64_t>(hk) * a.head_dim;
            float s = 0.0f;
            for (int d = 0; d < a.head_dim; ++d) s += q[d] * kv_at(a.k, a.k_type, base + d);
            s *= a.scale;
            scores[j] = s;
            mx = std::max(mx, s);
          }
          double sum = 0.0;
          for (int64_t j = 0; j < n_kv; ++j) {
            float e = std::exp(scores[j] - mx);
            scores[j] = e;
            sum += e;
          }
          const float inv = static_cast<float>(1.0 / sum);
          float* out = a.out + t * a.out_stride + static_cast<int64_t>(h) * a.head_dim;
          for (int d = 0; d < a.head_dim; ++d) out[d] = 0.0f;
          for (int64_t j = 0; j < n_kv; ++j) {
            const float pj = scores[j] * inv;
            const int64_t base = slot(a, j) * a.kv_stride + static_cast<int64_t>(hk) * a.head_dim;
            for (int d = 0; d < a.head_dim; ++d) out[d] += pj * kv_at(a.v, a.v_type, base + d);
          }
        }
      },
      &ctx);
}

void rms_norm_ref(float* y, const float* x, const float* w, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * (w ? w[i] : 1.0f);
}

void layer_norm_ref(float* y, const float* x, const float* w, const float* b, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  double var = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - mean;
    var += static_cast<double>(d) * d;
  }
  const float variance = static_cast<float>(var / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(variance + eps);
  for (int64_t i = 0; i < n; ++i) {
    float v = (x[i] - mean) * scale;
    if (w) v *= w[i];
    if (b) v += b[i];
    y[i] = v;
  }
}

void rope_ref(float* x, int n_head, int head_dim, int n_rot, const float* cs, RopeMode mode) {
  for (int h = 0; h < n_head; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < n_rot; i += 2) {
      const float c = cs[i], s = cs[i + 1];
      const int a = mode == RopeMode::kNorm ? i : i / 2;
      const int b = mode == RopeMode::kNorm ? i + 1 : i / 2 + n_rot / 2;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

void softmax_ref(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu_ref(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void add_ref(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace

size_t matmul_scratch_bytes(const KernelTable& kt, TensorType wtype, int64_t cols, int64_t n_tokens) {
  return (kt.scratch_bytes != nullptr ? kt.scratch_bytes : activation_bytes)(wtype, cols, n_tokens);
}

namespace {
uint64_t read_sum_ref(const std::byte* p, size_t bytes) {
  // Eight independent sums: a single chain would measure the adder, not memory.
  uint64_t s[8] = {};
  for (size_t o = 0; o + 64 <= bytes; o += 64) {
    for (int u = 0; u < 8; ++u) {
      uint64_t v;
      std::memcpy(&v, p + o + 8 * static_cast<size_t>(u), 8);
      s[u] += v;
    }
  }
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}
}  // namespace

const KernelTable& ref_kernels() {
  static const KernelTable table = [] {
    KernelTable t{
        "ref", matmul_ref, attention_ref, rms_norm_ref, layer_norm_ref, rope_ref, softmax_ref, swiglu_ref, add_ref,
    };
    t.read_sum = &read_sum_ref;
    t.scratch_bytes = &activation_bytes;
    return t;
  }();
  return table;
}

}  // namespace hearth::kernels
