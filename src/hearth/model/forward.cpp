// The shared decoder forward pass (pre-norm transformer), written against the kernel table.
// References: Llama (Touvron et al. 2023), RoPE (Su et al. 2021), Mixtral (Jiang et al. 2024).
#include "hearth/model/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>

#include "hearth/kernels/fp16.h"
#include "hearth/kernels/quant.h"

namespace hearth::model {
namespace {

// Rows of an f32 buffer.
inline float* row(std::vector<float>& v, int64_t i, int64_t width) { return v.data() + i * width; }

void add_bias(float* y, const TensorView& b, int64_t n_tok, int64_t width, const kernels::KernelTable& kt) {
  if (!b.valid()) return;
  for (int64_t t = 0; t < n_tok; ++t) kt.add(y + t * width, b.f32(), width);
}

// GELU, tanh approximation (Hendrycks & Gimpel 2016), as the reference's CPU backend evaluates
// it: through a table over f16 inputs, gelu(x) = f16(gelu_tanh(f16(x))) for -10 < x < 10, x for
// x >= 10, 0 for x <= -10 (reference README §9). The table is built once, on first use.
float gelu(float x) {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(65536);
    constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f, kCoefA = 0.044715f;
    for (uint32_t h = 0; h < 65536; ++h) {
      const float v = kernels::fp16_to_fp32(static_cast<uint16_t>(h));
      t[h] = kernels::fp32_to_fp16(0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + kCoefA * v * v))));
    }
    return t;
  }();
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return kernels::fp16_to_fp32(table[kernels::fp32_to_fp16(x)]);
}

// cap * tanh(x / cap) over n values (Gemma 2's logit soft-capping).
void softcap(float* x, int64_t n, float cap) {
  const float inv = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] * inv);
}

// One cache row of n elements from f32: copied, rounded to f16, or quantized to Q8_0 / Q4_0
// blocks by the reference quantizer (as ggml's set_rows does for a quantized cache).
void store_row(std::byte* dst, kernels::KvType type, const float* src, int64_t n) {
  switch (type) {
    case kernels::KvType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case kernels::KvType::kF16: {
      auto* d = reinterpret_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = kernels::fp32_to_fp16(src[i]);
      break;
    }
    case kernels::KvType::kQ8_0:
    case kernels::KvType::kQ4_0:
      kernels::quantize_row(kernels::kv_tensor_type(type), src, dst, n);
      break;
  }
}

}  // namespace

Status Context::decode_chunk(std::span<const BatchToken> batch) {
  const HParams& hp = model_.hparams();
  const ModelWeights& w = model_.weights();
  const BlockFn block = model_.block();  // chosen once at load, by the architecture
  Forward f(*this, batch);
  f.embed();
  for (int64_t il = 0; il < hp.n_layer; ++il) block(f, w.layers[il], il);
  f.output_head();
  return ok_status();
}

void block_prenorm(Forward& f, const LayerWeights& l, int64_t il) {
  f.attn_norm(l);
  f.qkv(l);
  f.rope();
  f.store_kv(il);
  f.attend(il);
  f.attn_output(l);
  f.add_attn();
  f.ffn_norm(l);
  f.ffn(l);
  f.add_ffn();
}

void block_parallel(Forward& f, const LayerWeights& l, int64_t il) {
  f.attn_norm(l);
  f.qkv(l);
  f.rope();
  f.store_kv(il);
  f.attend(il);
  f.attn_output(l);
  f.ffn(l);  // reads cur = norm(x), as attention did
  f.add_attn();
  f.add_ffn();
}

Forward::Forward(Context& c, std::span<const BatchToken> batch)
    : c_(c), hp_(c.model_.hparams()), kt_(*c.kt_), batch_(batch), n_(static_cast<int64_t>(batch.size())) {}

void Forward::embed() {
  const TensorView& e = c_.model_.weights().token_embd;
  const int64_t ne = hp_.n_embd;
  for (int64_t t = 0; t < n_; ++t) {
    float* x = row(c_.x_, t, ne);
    kernels::dequantize_row(e.type, e.row(batch_[t].token), x, ne);
    if (hp_.embd_scale != 1.0f) {
      for (int64_t i = 0; i < ne; ++i) x[i] *= hp_.embd_scale;
    }
    c_.pos_[t] = batch_[t].pos;
    c_.near_tie_[t] = 0;
  }
  const ModelWeights& w = c_.model_.weights();
  if (!w.position_embd.valid()) return;
  // Absolute positions (bert): + token_types[0] + position_embd[pos], then LayerNorm. The
  // type and position rows are converted into cur_, which the block overwrites anyway.
  float* tmp = c_.cur_.data();
  for (int64_t t = 0; t < n_; ++t) {
    float* x = row(c_.x_, t, ne);
    kernels::dequantize_row(w.token_types.type, w.token_types.row(0), tmp, ne);
    kt_.add(x, tmp, ne);
    kernels::dequantize_row(w.position_embd.type, w.position_embd.row(batch_[t].pos), tmp, ne);
    kt_.add(x, tmp, ne);
    norm(x, x, w.token_embd_norm, w.token_embd_norm_b);
  }
}

void Forward::residual_as_input() {
  std::memcpy(c_.cur_.data(), c_.x_.data(), static_cast<size_t>(n_ * hp_.n_embd) * sizeof(float));
}

void Forward::norm_residual(const TensorView& w, const TensorView& b) {
  const int64_t ne = hp_.n_embd;
  for (int64_t t = 0; t < n_; ++t) norm(row(c_.x_, t, ne), row(c_.x_, t, ne), w, b);
}

void Forward::attn_norm(const LayerWeights& l) {
  const int64_t ne = hp_.n_embd;
  for (int64_t t = 0; t < n_; ++t) norm(row(c_.cur_, t, ne), row(c_.x_, t, ne), l.attn_norm, l.attn_norm_b);
}

void Forward::qkv(const LayerWeights& l) {
  const int64_t ne = hp_.n_embd, nq = hp_.n_embd_q(), nkv = hp_.n_embd_kv();
  matmul(l.wq, c_.cur_.data(), ne, n_, c_.q_.data(), nq);
  matmul(l.wk, c_.cur_.data(), ne, n_, c_.k_.data(), nkv);
  matmul(l.wv, c_.cur_.data(), ne, n_, c_.v_.data(), nkv);
  add_bias(c_.q_.data(), l.bq, n_, nq, kt_);
  add_bias(c_.k_.data(), l.bk, n_, nkv, kt_);
  add_bias(c_.v_.data(), l.bv, n_, nkv, kt_);
}

void Forward::qkv_fused(const LayerWeights& l) {
  const int64_t ne = hp_.n_embd, nq = hp_.n_embd_q(), nkv = hp_.n_embd_kv(), nqkv = nq + 2 * nkv;
  matmul(l.wqkv, c_.cur_.data(), ne, n_, c_.qkv_.data(), nqkv);
  for (int64_t t = 0; t < n_; ++t) {
    const float* src = row(c_.qkv_, t, nqkv);
    std::memcpy(row(c_.q_, t, nq), src, static_cast<size_t>(nq) * sizeof(float));
    std::memcpy(row(c_.k_, t, nkv), src + nq, static_cast<size_t>(nkv) * sizeof(float));
    std::memcpy(row(c_.v_, t, nkv), src + nq + nkv, static_cast<size_t>(nkv) * sizeof(float));
  }
}

void Forward::qk_norm(const LayerWeights& l) {
  const int64_t nq = hp_.n_embd_q(), nkv = hp_.n_embd_kv(), hd = hp_.head_dim;
  for (int64_t t = 0; t < n_; ++t) {
    float* q = row(c_.q_, t, nq);
    float* k = row(c_.k_, t, nkv);
    for (int64_t h = 0; h < hp_.n_head; ++h)
      kt_.rms_norm(q + h * hd, q + h * hd, l.attn_q_norm.f32(), hd, hp_.norm_eps);
    for (int64_t h = 0; h < hp_.n_head_kv; ++h) {
      kt_.rms_norm(k + h * hd, k + h * hd, l.attn_k_norm.f32(), hd, hp_.norm_eps);
    }
  }
}

void Forward::rope() { rope_with(c_.rope_cs_.data()); }

void Forward::rope(int64_t il) {
  rope_with(hp_.is_swa(il) && !c_.rope_cs_swa_.empty() ? c_.rope_cs_swa_.data() : c_.rope_cs_.data());
}

void Forward::rope_with(const float* table) {
  const int64_t nq = hp_.n_embd_q(), nkv = hp_.n_embd_kv();
  const int head_dim = static_cast<int>(hp_.head_dim), n_rot = static_cast<int>(hp_.n_rot);
  for (int64_t t = 0; t < n_; ++t) {
    const float* cs = table + static_cast<int64_t>(c_.pos_[t]) * hp_.n_rot;  // [n_rot] (cos, sin)
    kt_.rope(row(c_.q_, t, nq), static_cast<int>(hp_.n_head), head_dim, n_rot, cs, hp_.rope_mode);
    kt_.rope(row(c_.k_, t, nkv), static_cast<int>(hp_.n_head_kv), head_dim, n_rot, cs, hp_.rope_mode);
  }
}

void Forward::store_kv(int64_t il) {
  KvCache& kv = *c_.kv_;
  const int64_t nkv = hp_.n_embd_kv();
  const kernels::KvTypes types = kv.types();
  for (int64_t t = 0; t < n_; ++t) {
    const int seq = batch_[t].seq;
    const auto r = static_cast<size_t>(kv.row_of(il, c_.pos_[t]));  // the position's row (ring: p % rows)
    store_row(static_cast<std::byte*>(kv.k(il, seq)) + r * kv.k_row_bytes(), types.k, row(c_.k_, t, nkv), nkv);
    store_row(static_cast<std::byte*>(kv.v(il, seq)) + r * kv.v_row_bytes(), types.v, row(c_.v_, t, nkv), nkv);
  }
}

void Forward::attend(int64_t il) {
  if (hp_.attn_softcap > 0.0f) {
    attend_softcap(il);
    return;
  }
  if (hp_.is_swa(il)) {
    attend_window(il);
    return;
  }
  KvCache& kv = *c_.kv_;
  const int64_t nq = hp_.n_embd_q(), nkv = hp_.n_embd_kv();
  for (int64_t t0 = 0; t0 < n_;) {
    int64_t t1 = t0 + 1;
    while (t1 < n_ && batch_[t1].seq == batch_[t0].seq) ++t1;
    const int32_t* pos = c_.pos_.data() + t0;
    if (!hp_.causal) {
      // Bidirectional: the kernel's causal limit is raised to the run's last position for
      // every query, so each one sees all the rows this run stored.
      const int32_t last = *std::max_element(c_.pos_.data() + t0, c_.pos_.data() + t1);
      std::fill(c_.pos_all_.begin() + t0, c_.pos_all_.begin() + t1, last);
      pos = c_.pos_all_.data() + t0;
    }
    kernels::AttentionArgs a{};
    a.q = row(c_.q_, t0, nq);
    a.q_stride = nq;
    a.k = kv.k(il, batch_[t0].seq);
    a.v = kv.v(il, batch_[t0].seq);
    a.kv_stride = nkv;
    a.k_type = kv.types().k;
    a.v_type = kv.types().v;
    a.pos = pos;
    a.n_tokens = t1 - t0;
    a.n_head = static_cast<int>(hp_.n_head);
    a.n_head_kv = static_cast<int>(hp_.n_head_kv);
    a.head_dim = static_cast<int>(hp_.head_dim);
    a.scale = hp_.kq_scale();
    a.out = row(c_.attn_, t0, nq);
    a.out_stride = nq;
    a.scratch = c_.attn_scratch_.data();
    kt_.attention(a, *c_.pool_);
    t0 = t1;
  }
}

void Forward::attend_window(int64_t il) {
  // The attention kernel sees cache rows 0..pos[t] of the call. A query whose window starts at
  // position s > 0 is given the cache from position s on, as a ring view of the layer's rows
  // (its own ring, or the whole context), and the position pos - s; the queries whose window is
  // still the whole prefix (pos < n_swa) go together as usual.
  KvCache& kv = *c_.kv_;
  const int64_t nq = hp_.n_embd_q(), nkv = hp_.n_embd_kv();
  for (int64_t t0 = 0; t0 < n_;) {
    const int seq = batch_[t0].seq;
    const int64_t start = std::max<int64_t>(0, c_.pos_[t0] - hp_.n_swa + 1);
    int64_t t1 = t0 + 1;
    if (start == 0) {
      while (t1 < n_ && batch_[t1].seq == seq && c_.pos_[t1] < hp_.n_swa) ++t1;
    }
    const int32_t shifted = static_cast<int32_t>(c_.pos_[t0] - start);
    kernels::AttentionArgs a{};
    a.q = row(c_.q_, t0, nq);
    a.q_stride = nq;
    a.k = kv.k(il, seq);
    a.v = kv.v(il, seq);
    a.kv_stride = nkv;
    a.k_type = kv.types().k;
    a.v_type = kv.types().v;
    a.ring = kv.rows(il);
    a.ring_first = kv.row_of(il, start);
    a.pos = start == 0 ? c_.pos_.data() + t0 : &shifted;
    a.n_tokens = t1 - t0;
    a.n_head = static_cast<int>(hp_.n_head);
    a.n_head_kv = static_cast<int>(hp_.n_head_kv);
    a.head_dim = static_cast<int>(hp_.head_dim);
    a.scale = hp_.kq_scale();
    a.out = row(c_.attn_, t0, nq);
    a.out_stride = nq;
    a.scratch = c_.attn_scratch_.data();
    kt_.attention(a, *c_.pool_);
    t0 = t1;
  }
}

void Forward::attn_output(const LayerWeights& l) {
  const int64_t ne = hp_.n_embd;
  matmul(l.wo, c_.attn_.data(), hp_.n_embd_q(), n_, c_.o_.data(), ne);
  add_bias(c_.o_.data(), l.bo, n_, ne, kt_);
}

void Forward::post_attn_norm(const LayerWeights& l) {
  const int64_t ne = hp_.n_embd;
  for (int64_t t = 0; t < n_; ++t) norm(row(c_.o_, t, ne), row(c_.o_, t, ne), l.post_attention_norm, TensorView{});
}

void Forward::add_attn() {
  const int64_t ne = hp_.n_embd;
  for (int64_t t = 0; t < n_; ++t) kt_.add(row(c_.x_, t, ne), row(c_.o_, t, ne), ne);
}

void Forward::ffn_norm(const LayerWeights& l) {
  const int64_t ne = hp_.n_embd;
  for (int64_t t = 0; t < n_; ++t) norm(row(c_.cur_, t, ne), row(c_.x_, t, ne), l.ffn_norm, l.ffn_norm_b);
}

void Forward::ffn(const LayerWeights& l) {
  if (hp_.n_expert > 0) {
    ffn_moe(l);
  } else {
    ffn_dense(l);
  }
}

void Forward::ffn_geglu(const LayerWeights& l) {
  const int64_t ne = hp_.n_embd, ff = hp_.n_ff;
  // g = gelu(cur · Wgate) * (cur · Wup)   [n][n_ff];  out = g · Wdown   [n][n_embd]
  matmul(l.ffn_gate, c_.cur_.data(), ne, n_, c_.ffn_g_.data(), ff);
  matmul(l.ffn_up, c_.cur_.data(), ne, n_, c_.ffn_u_.data(), ff);
  for (int64_t t = 0; t < n_; ++t) {
    float* g = row(c_.ffn_g_, t, ff);
    const float* u = row(c_.ffn_u_, t, ff);
    for (int64_t i = 0; i < ff; ++i) g[i] = gelu(g[i]) * u[i];
  }
  matmul(l.ffn_down, c_.ffn_g_.data(), ff, n_, c_.ffn_out_.data(), ne);
}

void Forward::ffn_gelu(const LayerWeights& l) {
  const int64_t ne = hp_.n_embd, ff = hp_.n_ff;
  // u = gelu(cur · Wup + b_up)   [n][n_ff];  out = u · Wdown + b_down   [n][n_embd]
  matmul(l.ffn_up, c_.cur_.data(), ne, n_, c_.ffn_u_.data(), ff);
  add_bias(c_.ffn_u_.data(), l.ffn_up_b, n_, ff, kt_);
  for (int64_t i = 0; i < n_ * ff; ++i) c_.ffn_u_[static_cast<size_t>(i)] = gelu(c_.ffn_u_[static_cast<size_t>(i)]);
  matmul(l.ffn_down, c_.ffn_u_.data(), ff, n_, c_.ffn_out_.data(), ne);
  add_bias(c_.ffn_out_.data(), l.ffn_down_b, n_, ne, kt_);
}

void Forward::post_ffn_norm(const LayerWeights& l) {
  const int64_t ne = hp_.n_embd;
  for (int64_t t = 0; t < n_; ++t) {
    norm(row(c_.ffn_out_, t, ne), row(c_.ffn_out_, t, ne), l.post_ffw_norm, TensorView{});
  }
}

void Forward::add_ffn() {
  const int64_t ne = hp_.n_embd;
  for (int64_t t = 0; t < n_; ++t) kt_.add(row(c_.x_, t, ne), row(c_.ffn_out_, t, ne), ne);
}

void Forward::output_head() {
  const ModelWeights& w = c_.model_.weights();
  const int64_t ne = hp_.n_embd;
  const int first_out = c_.n_outputs_;
  for (int64_t t = 0; t < n_; ++t) {
    if (!batch_[t].logits) continue;
    c_.out_near_tie_[static_cast<size_t>(c_.n_outputs_)] = c_.near_tie_[t];
    float* hidden = c_.out_hidden_.data() + static_cast<size_t>(c_.n_outputs_) * static_cast<size_t>(ne);
    if (w.output_norm.valid()) {
      norm(hidden, row(c_.x_, t, ne), w.output_norm, w.output_norm_b);
    } else {
      std::memcpy(hidden, row(c_.x_, t, ne), static_cast<size_t>(ne) * sizeof(float));
    }
    ++c_.n_outputs_;
  }
  if (!w.output.valid()) return;  // an encoder (bert): the hidden state is the output
  const int n_new = c_.n_outputs_ - first_out;
  // The output matmul runs in chunks of n_batch rows (the scratch is sized for that).
  const int n_batch = static_cast<int>(c_.n_batch_);
  for (int i = 0; i < n_new; i += n_batch) {
    const int m = std::min<int>(n_batch, n_new - i);
    const size_t o = static_cast<size_t>(first_out + i);
    matmul(w.output, c_.out_hidden_.data() + o * static_cast<size_t>(ne), ne, m,
           c_.out_logits_.data() + o * static_cast<size_t>(hp_.n_vocab), hp_.n_vocab);
  }
  if (hp_.final_softcap > 0.0f) {
    softcap(c_.out_logits_.data() + static_cast<size_t>(first_out) * static_cast<size_t>(hp_.n_vocab),
            static_cast<int64_t>(n_new) * hp_.n_vocab, hp_.final_softcap);
  }
}

void Forward::matmul(const TensorView& w, const float* x, int64_t x_stride, int64_t n_tok, float* y, int64_t y_stride) {
  if (c_.matmul_observer_) c_.matmul_observer_(w, x, x_stride, n_tok);
  kernels::MatmulArgs a{
      w.type, w.data, w.nb1, w.ne[1], w.ne[0], x, x_stride, n_tok, y, y_stride, c_.mm_scratch_.data()};
  if (w.packed != nullptr && w.packed_isa == kt_.name) a.packed = w.packed;
  kt_.matmul(a, *c_.pool_);
  if (c_.n_lora_seqs_ > 0) add_lora(w, x, x_stride, n_tok, y, y_stride);
}

void Forward::add_lora(const TensorView& w, const float* x, int64_t x_stride, int64_t n_tok, float* y,
                       int64_t y_stride) {
  // Only the per-layer dense weights are adapted (LoraAdapter binds nothing else), and their
  // rows are this chunk's batch tokens; runs of one sequence share its adapters.
  for (int64_t t0 = 0; t0 < n_tok;) {
    const int seq = batch_[t0].seq;
    int64_t t1 = t0 + 1;
    while (t1 < n_tok && batch_[t1].seq == seq) ++t1;
    const int64_t m = t1 - t0;
    for (const LoraUse& u : c_.lora_[static_cast<size_t>(seq)]) {
      const LoraWeight* lw = u.adapter->find(&w);
      if (lw == nullptr) continue;
      const float s = u.scale * lw->alpha_over_rank;
      if (s == 0.0f) continue;  // scale 0 is the base model, bit for bit
      // tmp = x A^T   [m][rank];   delta = tmp B^T   [m][rows]
      float* tmp = c_.lora_tmp_.data();
      float* delta = c_.lora_delta_.data();
      kernels::MatmulArgs pa{TensorType::F32,
                             reinterpret_cast<const std::byte*>(lw->a.data()),
                             static_cast<size_t>(lw->cols) * sizeof(float),
                             lw->rank,
                             lw->cols,
                             x + t0 * x_stride,
                             x_stride,
                             m,
                             tmp,
                             lw->rank,
                             c_.lora_scratch_.data()};
      kt_.matmul(pa, *c_.pool_);
      kernels::MatmulArgs pb{TensorType::F32,
                             reinterpret_cast<const std::byte*>(lw->b.data()),
                             static_cast<size_t>(lw->rank) * sizeof(float),
                             lw->rows,
                             lw->rank,
                             tmp,
                             lw->rank,
                             m,
                             delta,
                             lw->rows,
                             c_.lora_scratch_.data()};
      kt_.matmul(pb, *c_.pool_);
      for (int64_t t = 0; t < m; ++t) {
        float* yt = y + (t0 + t) * y_stride;
        const float* dt = delta + t * lw->rows;
        for (int64_t j = 0; j < lw->rows; ++j) yt[j] += s * dt[j];
      }
    }
    t0 = t1;
  }
}

void Forward::norm(float* y, const float* x, const TensorView& w, const TensorView& b) {
  if (hp_.norm == NormType::kRms) {
    kt_.rms_norm(y, x, w.f32(), hp_.n_embd, hp_.norm_eps);
  } else {
    kt_.layer_norm(y, x, w.f32(), b.valid() ? b.f32() : nullptr, hp_.n_embd, hp_.norm_eps);
  }
}

void Forward::ffn_dense(const LayerWeights& l) {
  const int64_t ne = hp_.n_embd, ff = hp_.n_ff;
  // g = silu(cur · Wgate) * (cur · Wup)   [n][n_ff];  out = g · Wdown   [n][n_embd]
  matmul(l.ffn_gate, c_.cur_.data(), ne, n_, c_.ffn_g_.data(), ff);
  matmul(l.ffn_up, c_.cur_.data(), ne, n_, c_.ffn_u_.data(), ff);
  for (int64_t t = 0; t < n_; ++t) kt_.swiglu(row(c_.ffn_g_, t, ff), row(c_.ffn_u_, t, ff), ff);
  matmul(l.ffn_down, c_.ffn_g_.data(), ff, n_, c_.ffn_out_.data(), ne);
}

void Forward::ffn_fused(const LayerWeights& l) {
  const int64_t ne = hp_.n_embd, ff = hp_.n_ff;
  // gu = cur · Wup   [n][2 n_ff];  g = silu(gu[:n_ff]) * gu[n_ff:] in place;  out = g · Wdown   [n][n_embd]
  matmul(l.ffn_up, c_.cur_.data(), ne, n_, c_.ffn_g_.data(), 2 * ff);
  for (int64_t t = 0; t < n_; ++t) {
    float* gu = row(c_.ffn_g_, t, 2 * ff);
    kt_.swiglu(gu, gu + ff, ff);
  }
  matmul(l.ffn_down, c_.ffn_g_.data(), 2 * ff, n_, c_.ffn_out_.data(), ne);
}

void Forward::ffn_moe(const LayerWeights& l) {
  const int64_t ne = hp_.n_embd, ff = hp_.n_ff, n_exp = hp_.n_expert, k = hp_.n_expert_used;
  // Router: probabilities over all experts, top-k, weights renormalised over the chosen k
  // (equal to a softmax over the k selected logits).
  matmul(l.ffn_gate_inp, c_.cur_.data(), ne, n_, c_.router_.data(), n_exp);
  std::fill(c_.ffn_out_.begin(), c_.ffn_out_.begin() + n_ * ne, 0.0f);
  // Tokens routed to expert e: moe_tok_[e * n_batch + i], i < moe_count_[e], in token order.
  const int64_t cap = c_.n_batch_;
  int32_t* order = c_.moe_order_.data();
  float* sorted = c_.moe_sorted_.data();
  std::fill(c_.moe_count_.begin(), c_.moe_count_.end(), 0);
  for (int64_t t = 0; t < n_; ++t) {
    float* p = row(c_.router_, t, n_exp);
    if (k < n_exp) {
      // Near-tie diagnostics on the raw gate logits (before the softmax).
      std::copy(p, p + n_exp, sorted);
      std::sort(sorted, sorted + n_exp, std::greater<float>());
      const float range = sorted[0] - sorted[n_exp - 1];
      if (sorted[k - 1] - sorted[k] <= 0.01f * range) c_.near_tie_[t] = 1;
    }
    kt_.softmax(p, n_exp);
    std::iota(order, order + n_exp, 0);
    std::partial_sort(order, order + k, order + n_exp,
                      [p](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    float sum = 0.0f;
    for (int64_t j = 0; j < k; ++j) sum += p[order[j]];
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = order[j];
      const int64_t i = c_.moe_count_[e]++;
      c_.moe_tok_[e * cap + i] = t;
      c_.moe_wgt_[e * cap + i] = p[e] / sum;
    }
  }
  for (int64_t e = 0; e < n_exp; ++e) {
    const int64_t m = c_.moe_count_[e];  // rows routed to expert e
    if (m == 0) continue;
    const int64_t* toks = c_.moe_tok_.data() + e * cap;
    const float* wgts = c_.moe_wgt_.data() + e * cap;
    for (int64_t i = 0; i < m; ++i) std::memcpy(row(c_.moe_in_, i, ne), row(c_.cur_, toks[i], ne), ne * sizeof(float));
    // moe_in [m][n_embd] -> moe_g, moe_u [m][n_ff] -> moe_out [m][n_embd]
    matmul(l.ffn_gate_exps.matrix(e), c_.moe_in_.data(), ne, m, c_.moe_g_.data(), ff);
    matmul(l.ffn_up_exps.matrix(e), c_.moe_in_.data(), ne, m, c_.moe_u_.data(), ff);
    for (int64_t i = 0; i < m; ++i) kt_.swiglu(row(c_.moe_g_, i, ff), row(c_.moe_u_, i, ff), ff);
    matmul(l.ffn_down_exps.matrix(e), c_.moe_g_.data(), ff, m, c_.moe_out_.data(), ne);
    // ffn_out[t] += weight * moe_out[i]
    for (int64_t i = 0; i < m; ++i) {
      float* dst = row(c_.ffn_out_, toks[i], ne);
      const float* src = row(c_.moe_out_, i, ne);
      const float wgt = wgts[i];
      for (int64_t j = 0; j < ne; ++j) dst[j] += wgt * src[j];
    }
  }
}

}  // namespace hearth::model
