#include "hearth/train/llama_graph.h"

#include <algorithm>
#include <cstring>

namespace hearth::train {
namespace {

void zero(std::vector<float>& v, size_t n) { v.assign(n, 0.0f); }

}  // namespace

void LlamaGraph::resize(int64_t n_seq, int64_t seq_len) {
  const LlamaShape& s = p_.shape();
  n_seq_ = n_seq;
  seq_len_ = seq_len;
  n_ = n_seq * seq_len;
  const size_t n = static_cast<size_t>(n_), ne = static_cast<size_t>(s.n_embd);
  const size_t nkv = static_cast<size_t>(s.n_embd_kv()), ff = static_cast<size_t>(s.n_ff);
  acts_.resize(static_cast<size_t>(s.n_layer));
  for (LayerActs& a : acts_) {
    for (auto* v : {&a.x_in, &a.xn1, &a.q, &a.att, &a.x_mid, &a.xn2}) v->resize(n * ne);
    a.k.resize(n * nkv);
    a.v.resize(n * nkv);
    a.probs.resize(static_cast<size_t>(n_seq * s.n_head * seq_len * seq_len));
    for (auto* v : {&a.g, &a.u, &a.h}) v->resize(n * ff);
  }
  x_fin_.resize(n * ne);
  xnf_.resize(n * ne);
  logits_.resize(n * static_cast<size_t>(s.n_vocab));
  if (rope_len_ != seq_len) {
    rope_cs_ = rope_table(seq_len, static_cast<int>(s.head_dim()), s.rope_freq_base);
    rope_len_ = seq_len;
  }
}

void LlamaGraph::forward(const float* w, const int32_t* inputs, int64_t n_seq, int64_t seq_len) {
  const LlamaShape& s = p_.shape();
  resize(n_seq, seq_len);
  inputs_.assign(inputs, inputs + n_);
  const int64_t n = n_, ne = s.n_embd, nkv = s.n_embd_kv(), ff = s.n_ff;
  const int hd = static_cast<int>(s.head_dim());
  const Ops::AttnShape as{n_seq, seq_len, static_cast<int>(s.n_head), static_cast<int>(s.n_head_kv), hd};

  // The matrices transposed ([cols][rows]), for linear().
  wt_.resize(p_.n_params());
  for (const ParamTensor& t : p_.tensors()) {
    if (t.is_matrix) ops_.transpose(w + t.offset, t.ne[1], t.ne[0], wt_.data() + t.offset);
  }
  const float* wt = wt_.data();

  // x[t] = token_embd[token]   [n][n_embd]
  float* x = acts_[0].x_in.data();
  for (int64_t t = 0; t < n; ++t) std::memcpy(x + t * ne, w + p_.token_embd() + inputs[t] * ne, ne * sizeof(float));

  for (int64_t il = 0; il < s.n_layer; ++il) {
    const LayerSlots& l = p_.layer(il);
    LayerActs& a = acts_[static_cast<size_t>(il)];
    // xn1 = rms_norm(x) * attn_norm; q, k, v = xn1 · W^T; RoPE on q, k
    ops_.rms_norm(a.x_in.data(), w + l.attn_norm, n, ne, s.norm_eps, a.xn1.data());
    ops_.linear(wt + l.wq, ne, ne, a.xn1.data(), n, a.q.data());
    ops_.linear(wt + l.wk, nkv, ne, a.xn1.data(), n, a.k.data());
    ops_.linear(wt + l.wv, nkv, ne, a.xn1.data(), n, a.v.data());
    ops_.rope(a.q.data(), n, seq_len, static_cast<int>(s.n_head), hd, rope_cs_);
    ops_.rope(a.k.data(), n, seq_len, static_cast<int>(s.n_head_kv), hd, rope_cs_);
    // att = causal softmax(q k^T / sqrt(hd)) v;  x_mid = x + att · Wo^T
    ops_.attention(as, a.q.data(), a.k.data(), a.v.data(), a.probs.data(), a.att.data());
    ops_.linear(wt + l.wo, ne, ne, a.att.data(), n, a.x_mid.data());
    for (int64_t i = 0; i < n * ne; ++i) a.x_mid[i] += a.x_in[i];
    // xn2 = rms_norm(x_mid) * ffn_norm; h = silu(xn2 Wg^T) * (xn2 Wu^T); x_out = x_mid + h Wd^T
    ops_.rms_norm(a.x_mid.data(), w + l.ffn_norm, n, ne, s.norm_eps, a.xn2.data());
    ops_.linear(wt + l.ffn_gate, ff, ne, a.xn2.data(), n, a.g.data());
    ops_.linear(wt + l.ffn_up, ff, ne, a.xn2.data(), n, a.u.data());
    ops_.swiglu(a.g.data(), a.u.data(), n * ff, a.h.data());
    float* x_out = il + 1 < s.n_layer ? acts_[static_cast<size_t>(il + 1)].x_in.data() : x_fin_.data();
    ops_.linear(wt + l.ffn_down, ne, ff, a.h.data(), n, x_out);
    for (int64_t i = 0; i < n * ne; ++i) x_out[i] += a.x_mid[i];
  }
  // logits = (rms_norm(x) * output_norm) · Wout^T   [n][n_vocab]
  ops_.rms_norm(x_fin_.data(), w + p_.output_norm(), n, ne, s.norm_eps, xnf_.data());
  ops_.linear(wt + p_.output(), s.n_vocab, ne, xnf_.data(), n, logits_.data());
}

double LlamaGraph::backward(const float* w, const int32_t* targets, float* grad, float grad_scale,
                            LinearGradSink* sink) {
  const bool any = grad != nullptr || sink != nullptr;
  const double loss = ops_.cross_entropy(logits_.data(), targets, n_, p_.shape().n_vocab, any ? grad_scale : 0.0f);
  if (any) backward_from_logits(w, grad, sink);
  return loss;
}

double LlamaGraph::backward_distill(const float* w, const int32_t* targets, const float* teacher_logits,
                                    float temperature, float alpha, float* grad, float grad_scale) {
  const double loss = ops_.distill_loss(logits_.data(), teacher_logits, targets, n_, p_.shape().n_vocab, temperature,
                                        alpha, grad != nullptr ? grad_scale : 0.0f);
  if (grad != nullptr) backward_from_logits(w, grad);
  return loss;
}

void LlamaGraph::backward_from_logits(const float* w, float* grad, LinearGradSink* sink) {
  const LlamaShape& s = p_.shape();
  const int64_t n = n_, ne = s.n_embd, nkv = s.n_embd_kv(), ff = s.n_ff, nv = s.n_vocab;
  const size_t nz = static_cast<size_t>(n);
  const int hd = static_cast<int>(s.head_dim());
  const Ops::AttnShape as{n_seq_, seq_len_, static_cast<int>(s.n_head), static_cast<int>(s.n_head_kv), hd};
  auto lin_back = [&](size_t off, int64_t rows, int64_t cols, const std::vector<float>& x, const float* dy,
                      std::vector<float>& dx) {
    ops_.linear_backward(w + off, rows, cols, x.data(), dy, n, dx.data(), grad != nullptr ? grad + off : nullptr);
    if (sink != nullptr) sink->linear(off, x.data(), dy, n, rows, cols);
  };
  auto at = [&](size_t off) { return grad != nullptr ? grad + off : nullptr; };

  // Output head and final norm; logits_ now holds d(loss)/d(logits).
  zero(dxn_, nz * ne);
  lin_back(p_.output(), nv, ne, xnf_, logits_.data(), dxn_);
  zero(dx_, nz * ne);
  ops_.rms_norm_backward(x_fin_.data(), w + p_.output_norm(), dxn_.data(), n, ne, s.norm_eps, dx_.data(),
                         at(p_.output_norm()));

  for (int64_t il = s.n_layer - 1; il >= 0; --il) {
    const LayerSlots& l = p_.layer(il);
    const LayerActs& a = acts_[static_cast<size_t>(il)];
    // FFN: dx holds d(x_out); the residual passes it to x_mid unchanged.
    zero(dh_, nz * ff);
    lin_back(l.ffn_down, ne, ff, a.h, dx_.data(), dh_);
    zero(dg_, nz * ff);
    zero(du_, nz * ff);
    ops_.swiglu_backward(a.g.data(), a.u.data(), dh_.data(), n * ff, dg_.data(), du_.data());
    zero(dxn_, nz * ne);
    lin_back(l.ffn_gate, ff, ne, a.xn2, dg_.data(), dxn_);
    lin_back(l.ffn_up, ff, ne, a.xn2, du_.data(), dxn_);
    ops_.rms_norm_backward(a.x_mid.data(), w + l.ffn_norm, dxn_.data(), n, ne, s.norm_eps, dx_.data(),
                           at(l.ffn_norm));
    // Attention: dx holds d(x_mid).
    zero(datt_, nz * ne);
    lin_back(l.wo, ne, ne, a.att, dx_.data(), datt_);
    zero(dq_, nz * ne);
    zero(dk_, nz * nkv);
    zero(dv_, nz * nkv);
    ops_.attention_backward(as, a.q.data(), a.k.data(), a.v.data(), a.probs.data(), datt_.data(), dq_.data(),
                            dk_.data(), dv_.data());
    ops_.rope_backward(dq_.data(), n, seq_len_, static_cast<int>(s.n_head), hd, rope_cs_);
    ops_.rope_backward(dk_.data(), n, seq_len_, static_cast<int>(s.n_head_kv), hd, rope_cs_);
    zero(dxn_, nz * ne);
    lin_back(l.wq, ne, ne, a.xn1, dq_.data(), dxn_);
    lin_back(l.wk, nkv, ne, a.xn1, dk_.data(), dxn_);
    lin_back(l.wv, nkv, ne, a.xn1, dv_.data(), dxn_);
    ops_.rms_norm_backward(a.x_in.data(), w + l.attn_norm, dxn_.data(), n, ne, s.norm_eps, dx_.data(),
                           at(l.attn_norm));
  }
  // Embedding rows, in token order (a token that repeats adds in a fixed order).
  if (grad == nullptr) return;
  float* ge = grad + p_.token_embd();
  for (int64_t t = 0; t < n; ++t) {
    float* row = ge + static_cast<int64_t>(inputs_[static_cast<size_t>(t)]) * ne;
    const float* d = dx_.data() + t * ne;
    for (int64_t i = 0; i < ne; ++i) row[i] += d[i];
  }
}

double LlamaGraph::step(const float* w, const int32_t* windows, int64_t n_seq, int64_t seq_len, float* grad,
                        float grad_scale) {
  std::vector<int32_t> in(static_cast<size_t>(n_seq * seq_len));
  targets_.resize(in.size());
  for (int64_t b = 0; b < n_seq; ++b) {
    const int32_t* win = windows + b * (seq_len + 1);
    std::copy(win, win + seq_len, in.begin() + b * seq_len);
    std::copy(win + 1, win + seq_len + 1, targets_.begin() + b * seq_len);
  }
  forward(w, in.data(), n_seq, seq_len);
  return backward(w, targets_.data(), grad, grad_scale);
}

}  // namespace hearth::train
