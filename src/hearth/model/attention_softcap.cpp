// Attention with Gemma 2's logit soft-capping, which the kernel table's attention does not
// have: s = cap * tanh((q · k) * scale / cap), then the causal (and, on sliding layers,
// windowed) softmax and the weighted sum of V. Scalar, per (token, head) across the pool.
// Reference: Gemma 2 (Gemma Team 2024, §2 "Logit soft-capping").
#include <algorithm>
#include <cmath>

#include "hearth/kernels/fp16.h"
#include "hearth/model/forward.h"

namespace hearth::model {
namespace {

struct SoftcapJob {
  const float* q;  // [n_tok][q_stride]
  int64_t q_stride;
  const void* k;  // cache rows [ring][kv_stride]: position p in row p % ring
  const void* v;
  int64_t ring;  // the layer's rows (n_ctx, or a sliding layer's ring)
  int64_t kv_stride;
  kernels::KvType k_type, v_type;
  const int32_t* pos;  // [n_tok]
  int64_t n_tok;
  int n_head, group, head_dim;
  int64_t n_swa;  // 0: the whole prefix
  float scale, cap;
  float* out;  // [n_tok][out_stride]
  int64_t out_stride;
  float* scratch;  // n_ctx floats per thread
  int64_t n_ctx;
};

// One cache element; the float types inline, the quantized blocks through kv_value.
inline float kv_at(const void* base, kernels::KvType type, int64_t idx) {
  if (type == kernels::KvType::kF32) return static_cast<const float*>(base)[idx];
  if (type == kernels::KvType::kF16) return kernels::fp16_to_fp32(static_cast<const uint16_t*>(base)[idx]);
  return kernels::kv_value(base, type, idx);
}

void run_softcap(void* p, int ti, int nt) {
  const SoftcapJob& a = *static_cast<const SoftcapJob*>(p);
  float* scores = a.scratch + static_cast<int64_t>(ti) * a.n_ctx;
  const float inv_cap = 1.0f / a.cap;
  for (int64_t w = ti; w < a.n_tok * a.n_head; w += nt) {
    const int64_t t = w / a.n_head;
    const int h = static_cast<int>(w % a.n_head);
    const int64_t kv_off = static_cast<int64_t>(h / a.group) * a.head_dim;
    const float* q = a.q + t * a.q_stride + static_cast<int64_t>(h) * a.head_dim;
    const int64_t last = a.pos[t];
    const int64_t first = a.n_swa > 0 ? std::max<int64_t>(0, last - a.n_swa + 1) : 0;
    float mx = -INFINITY;
    for (int64_t j = first; j <= last; ++j) {
      const int64_t base = (j % a.ring) * a.kv_stride + kv_off;
      float s = 0.0f;
      for (int d = 0; d < a.head_dim; ++d) s += q[d] * kv_at(a.k, a.k_type, base + d);
      s = a.cap * std::tanh(s * a.scale * inv_cap);
      scores[j - first] = s;
      mx = std::max(mx, s);
    }
    double sum = 0.0;
    for (int64_t j = 0; j <= last - first; ++j) {
      scores[j] = std::exp(scores[j] - mx);
      sum += scores[j];
    }
    const float inv = static_cast<float>(1.0 / sum);
    float* out = a.out + t * a.out_stride + static_cast<int64_t>(h) * a.head_dim;
    std::fill(out, out + a.head_dim, 0.0f);
    for (int64_t j = first; j <= last; ++j) {
      const float pj = scores[j - first] * inv;
      const int64_t base = (j % a.ring) * a.kv_stride + kv_off;
      for (int d = 0; d < a.head_dim; ++d) out[d] += pj * kv_at(a.v, a.v_type, base + d);
    }
  }
}

}  // namespace

void Forward::attend_softcap(int64_t il) {
  KvCache& kv = *c_.kv_;
  const int64_t nq = hp_.n_embd_q(), nkv = hp_.n_embd_kv();
  for (int64_t t0 = 0; t0 < n_;) {
    int64_t t1 = t0 + 1;
    while (t1 < n_ && batch_[t1].seq == batch_[t0].seq) ++t1;
    SoftcapJob a{};
    a.q = c_.q_.data() + t0 * nq;
    a.q_stride = nq;
    a.k = kv.k(il, batch_[t0].seq);
    a.v = kv.v(il, batch_[t0].seq);
    a.ring = kv.rows(il);
    a.kv_stride = nkv;
    a.k_type = kv.types().k;
    a.v_type = kv.types().v;
    a.pos = c_.pos_.data() + t0;
    a.n_tok = t1 - t0;
    a.n_head = static_cast<int>(hp_.n_head);
    a.group = static_cast<int>(hp_.n_head / hp_.n_head_kv);
    a.head_dim = static_cast<int>(hp_.head_dim);
    a.n_swa = hp_.is_swa(il) ? hp_.n_swa : 0;
    a.scale = hp_.kq_scale();
    a.cap = hp_.attn_softcap;
    a.out = c_.attn_.data() + t0 * nq;
    a.out_stride = nq;
    a.scratch = c_.attn_scratch_.data();  // holds at least n_ctx floats per pool thread
    a.n_ctx = c_.n_ctx_;
    c_.pool_->run(&run_softcap, &a);
    t0 = t1;
  }
}

}  // namespace hearth::model
