// The shared decoder forward pass (pre-norm transformer), written against the kernel table.
// References: Llama (Touvron et al. 2023), RoPE (Su et al. 2021), Mixtral (Jiang et al. 2024).
#include "hearth/model/context.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>

#include "hearth/core/log.h"
#include "hearth/core/process_stats.h"
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

}  // namespace

int64_t default_context(const HParams& hp) { return std::min<int64_t>(4096, hp.n_ctx_train); }

Result<std::unique_ptr<Context>> Context::create(const Model& model, ContextParams p) {
  const HParams& hp = model.hparams();
  auto c = std::unique_ptr<Context>(new Context(model));
  c->kt_ = p.kernels ? p.kernels : &kernels::active_kernels();
  int64_t n_ctx = p.n_ctx > 0 ? p.n_ctx : default_context(hp);
  if (n_ctx > (int64_t{1} << 22)) {
    return make_error(ErrorCode::kOutOfRange, "context ", std::to_string(n_ctx), " is larger than hearth supports");
  }
  if (n_ctx > hp.n_ctx_train) {
    log::warn("context {} is larger than the model's context_length {}; quality may suffer", n_ctx, hp.n_ctx_train);
  }
  c->n_ctx_ = n_ctx;
  c->n_batch_ = std::clamp<int64_t>(p.n_batch, 1, n_ctx);
  int n_threads = p.n_threads > 0 ? p.n_threads : physical_core_count();
  c->pool_ = std::make_unique<ThreadPool>(n_threads);
  uint64_t limit = p.kv_limit_bytes;
  if (limit == 0) {
    uint64_t avail = available_memory_bytes();
    limit = avail > 0 ? avail / 4 * 3 : (uint64_t{8} << 30);
  }
  HEARTH_ASSIGN_OR_RETURN(c->kv_, KvCache::create(hp, n_ctx, p.n_seq, p.kv_type, limit));

  // RoPE tables, computed as ggml does: theta_i = pos * base^(-2i/n_rot) by repeated
  // multiplication in f32, divided by rope_freqs (Llama 3) and scaled linearly.
  const int64_t n_rot = hp.n_rot;
  c->rope_cs_.assign(static_cast<size_t>(n_ctx * std::max<int64_t>(n_rot, 1)), 0.0f);
  const float theta_scale = std::pow(hp.rope_freq_base, -2.0f / static_cast<float>(std::max<int64_t>(n_rot, 1)));
  const TensorView& ff = model.weights().rope_freqs;
  for (int64_t pos = 0; pos < n_ctx; ++pos) {
    float theta = static_cast<float>(pos);
    float* cs = c->rope_cs_.data() + pos * n_rot;
    for (int64_t i = 0; i < n_rot; i += 2) {
      const float f = ff.valid() ? ff.f32()[i / 2] : 1.0f;
      const float th = hp.rope_freq_scale * (theta / f);
      cs[i] = std::cos(th);
      cs[i + 1] = std::sin(th);
      theta *= theta_scale;
    }
  }

  const int64_t nb = c->n_batch_;
  auto alloc = [nb](std::vector<float>& v, int64_t width) { v.assign(static_cast<size_t>(nb * width), 0.0f); };
  alloc(c->x_, hp.n_embd);
  alloc(c->cur_, hp.n_embd);
  alloc(c->q_, hp.n_embd_q());
  alloc(c->k_, hp.n_embd_kv());
  alloc(c->v_, hp.n_embd_kv());
  alloc(c->attn_, hp.n_embd_q());
  alloc(c->o_, hp.n_embd);
  alloc(c->ffn_g_, hp.n_ff);
  alloc(c->ffn_u_, hp.n_ff);
  alloc(c->ffn_out_, hp.n_embd);
  if (hp.n_expert > 0) {
    alloc(c->router_, hp.n_expert);
    alloc(c->moe_in_, hp.n_embd);
    alloc(c->moe_g_, hp.n_ff);
    alloc(c->moe_u_, hp.n_ff);
    alloc(c->moe_out_, hp.n_embd);
  }
  c->attn_scratch_.assign(kernels::attention_scratch_floats(n_ctx, n_threads), 0.0f);
  // Matmul scratch: the largest converted activation block over every weight's type.
  size_t mm = 0;
  auto consider = [&](const TensorView& w) {
    if (w.valid()) mm = std::max(mm, kernels::matmul_scratch_bytes(*c->kt_, w.type, w.ne[0], nb));
  };
  const ModelWeights& w = model.weights();
  consider(w.output);
  for (const auto& l : w.layers) {
    for (const TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down, &l.ffn_gate_inp,
                                &l.ffn_gate_exps, &l.ffn_up_exps, &l.ffn_down_exps}) {
      consider(*t);
    }
  }
  c->mm_scratch_.assign(mm, std::byte{0});
  c->pos_.assign(static_cast<size_t>(nb), 0);
  c->near_tie_.assign(static_cast<size_t>(nb), 0);
  return c;
}

std::span<const float> Context::logits(int i) const {
  const int64_t nv = model_.hparams().n_vocab;
  return {out_logits_.data() + static_cast<size_t>(i) * static_cast<size_t>(nv), static_cast<size_t>(nv)};
}

std::span<const float> Context::hidden(int i) const {
  const int64_t ne = model_.hparams().n_embd;
  return {out_hidden_.data() + static_cast<size_t>(i) * static_cast<size_t>(ne), static_cast<size_t>(ne)};
}

void Context::matmul(const TensorView& w, const float* x, int64_t x_stride, int64_t n_tok, float* y,
                     int64_t y_stride) {
  if (matmul_observer_) matmul_observer_(w, x, x_stride, n_tok);
  kernels::MatmulArgs a{w.type, w.data, w.nb1, w.ne[1], w.ne[0], x, x_stride, n_tok, y, y_stride, mm_scratch_.data()};
  if (w.packed != nullptr && w.packed_isa == kt_->name) a.packed = w.packed;
  kt_->matmul(a, *pool_);
}

void Context::norm(float* y, const float* x, const TensorView& w, const TensorView& b) {
  const HParams& hp = model_.hparams();
  if (hp.norm == NormType::kRms) {
    kt_->rms_norm(y, x, w.f32(), hp.n_embd, hp.norm_eps);
  } else {
    kt_->layer_norm(y, x, w.f32(), b.valid() ? b.f32() : nullptr, hp.n_embd, hp.norm_eps);
  }
}

Status Context::decode(std::span<const BatchToken> batch) {
  const HParams& hp = model_.hparams();
  int total_out = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchToken& t = batch[i];
    if (t.token < 0 || t.token >= hp.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "token id ", std::to_string(t.token), " at batch index ",
                        std::to_string(i), " is outside the vocabulary [0, ", std::to_string(hp.n_vocab), ")");
    }
    if (t.pos < 0 || t.pos >= n_ctx_) {
      return make_error(ErrorCode::kOutOfRange, "position ", std::to_string(t.pos), " is outside the context of ",
                        std::to_string(n_ctx_), " tokens");
    }
    if (t.seq < 0 || t.seq >= kv_->n_seq()) {
      return make_error(ErrorCode::kInvalidArgument, "sequence ", std::to_string(t.seq), " is outside [0, ",
                        std::to_string(kv_->n_seq()), ")");
    }
    total_out += t.logits ? 1 : 0;
  }
  out_logits_.resize(static_cast<size_t>(total_out) * static_cast<size_t>(hp.n_vocab));
  out_hidden_.resize(static_cast<size_t>(total_out) * static_cast<size_t>(hp.n_embd));
  out_near_tie_.assign(static_cast<size_t>(total_out), 0);
  n_outputs_ = 0;
  for (size_t b = 0; b < batch.size(); b += static_cast<size_t>(n_batch_)) {
    size_t e = std::min(batch.size(), b + static_cast<size_t>(n_batch_));
    HEARTH_TRY(decode_chunk(batch.subspan(b, e - b)));
  }
  return ok_status();
}

Status Context::decode_chunk(std::span<const BatchToken> batch) {
  const HParams& hp = model_.hparams();
  const ModelWeights& w = model_.weights();
  const kernels::KernelTable& kt = *kt_;
  const int64_t n = static_cast<int64_t>(batch.size());
  const int64_t ne = hp.n_embd, nq = hp.n_embd_q(), nkv = hp.n_embd_kv();

  // Token embeddings: x[t] = token_embd[token]   (x: [n][n_embd])
  for (int64_t t = 0; t < n; ++t) {
    kernels::dequantize_row(w.token_embd.type, w.token_embd.row(batch[t].token), row(x_, t, ne), ne);
    pos_[t] = batch[t].pos;
    near_tie_[t] = 0;
  }

  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LayerWeights& l = w.layers[il];
    // cur = norm(x) * attn_norm (+ bias)
    for (int64_t t = 0; t < n; ++t) norm(row(cur_, t, ne), row(x_, t, ne), l.attn_norm, l.attn_norm_b);
    // q [n][n_head*head_dim], k, v [n][n_head_kv*head_dim]
    matmul(l.wq, cur_.data(), ne, n, q_.data(), nq);
    matmul(l.wk, cur_.data(), ne, n, k_.data(), nkv);
    matmul(l.wv, cur_.data(), ne, n, v_.data(), nkv);
    add_bias(q_.data(), l.bq, n, nq, kt);
    add_bias(k_.data(), l.bk, n, nkv, kt);
    add_bias(v_.data(), l.bv, n, nkv, kt);
    for (int64_t t = 0; t < n; ++t) {
      const float* cs = rope_cs_.data() + static_cast<int64_t>(pos_[t]) * hp.n_rot;
      kt.rope(row(q_, t, nq), static_cast<int>(hp.n_head), static_cast<int>(hp.head_dim), static_cast<int>(hp.n_rot),
              cs, hp.rope_mode);
      kt.rope(row(k_, t, nkv), static_cast<int>(hp.n_head_kv), static_cast<int>(hp.head_dim),
              static_cast<int>(hp.n_rot), cs, hp.rope_mode);
    }
    // Store K and V rows at their positions.
    for (int64_t t = 0; t < n; ++t) {
      const int seq = batch[t].seq;
      const int64_t off = static_cast<int64_t>(pos_[t]) * nkv;
      if (kv_->type() == kernels::KvType::kF32) {
        std::memcpy(static_cast<float*>(kv_->k(il, seq)) + off, row(k_, t, nkv), static_cast<size_t>(nkv) * 4);
        std::memcpy(static_cast<float*>(kv_->v(il, seq)) + off, row(v_, t, nkv), static_cast<size_t>(nkv) * 4);
      } else {
        uint16_t* kd = static_cast<uint16_t*>(kv_->k(il, seq)) + off;
        uint16_t* vd = static_cast<uint16_t*>(kv_->v(il, seq)) + off;
        const float* ks = row(k_, t, nkv);
        const float* vs = row(v_, t, nkv);
        for (int64_t i = 0; i < nkv; ++i) {
          kd[i] = kernels::fp32_to_fp16(ks[i]);
          vd[i] = kernels::fp32_to_fp16(vs[i]);
        }
      }
    }
    // Causal attention over each run of consecutive tokens of one sequence.
    for (int64_t t0 = 0; t0 < n;) {
      int64_t t1 = t0 + 1;
      while (t1 < n && batch[t1].seq == batch[t0].seq) ++t1;
      kernels::AttentionArgs a{};
      a.q = row(q_, t0, nq);
      a.q_stride = nq;
      a.k = kv_->k(il, batch[t0].seq);
      a.v = kv_->v(il, batch[t0].seq);
      a.kv_stride = nkv;
      a.kv_type = kv_->type();
      a.pos = pos_.data() + t0;
      a.n_tokens = t1 - t0;
      a.n_head = static_cast<int>(hp.n_head);
      a.n_head_kv = static_cast<int>(hp.n_head_kv);
      a.head_dim = static_cast<int>(hp.head_dim);
      a.scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
      a.out = row(attn_, t0, nq);
      a.out_stride = nq;
      a.scratch = attn_scratch_.data();
      kt.attention(a, *pool_);
      t0 = t1;
    }
    // o = attn · Wo (+ bias)   [n][n_embd]
    matmul(l.wo, attn_.data(), nq, n, o_.data(), ne);
    add_bias(o_.data(), l.bo, n, ne, kt);
    if (hp.parallel_residual) {
      // x = x + attn(norm(x)) + ffn(norm(x)): the FFN reads the same normed input.
      if (hp.n_expert > 0) ffn_moe(l, n); else ffn_dense(l, n);
      for (int64_t t = 0; t < n; ++t) {
        kt.add(row(x_, t, ne), row(o_, t, ne), ne);
        kt.add(row(x_, t, ne), row(ffn_out_, t, ne), ne);
      }
    } else {
      for (int64_t t = 0; t < n; ++t) kt.add(row(x_, t, ne), row(o_, t, ne), ne);
      for (int64_t t = 0; t < n; ++t) norm(row(cur_, t, ne), row(x_, t, ne), l.ffn_norm, l.ffn_norm_b);
      if (hp.n_expert > 0) ffn_moe(l, n); else ffn_dense(l, n);
      for (int64_t t = 0; t < n; ++t) kt.add(row(x_, t, ne), row(ffn_out_, t, ne), ne);
    }
  }

  // Output head for the requested tokens: hidden = norm(x) * output_norm; logits = hidden · Wout.
  const int first_out = n_outputs_;
  for (int64_t t = 0; t < n; ++t) {
    if (!batch[t].logits) continue;
    out_near_tie_[static_cast<size_t>(n_outputs_)] = near_tie_[t];
    norm(out_hidden_.data() + static_cast<size_t>(n_outputs_) * static_cast<size_t>(ne), row(x_, t, ne),
         w.output_norm, w.output_norm_b);
    ++n_outputs_;
  }
  const int n_new = n_outputs_ - first_out;
  // The output matmul runs in chunks of n_batch rows (the scratch is sized for that).
  for (int i = 0; i < n_new; i += static_cast<int>(n_batch_)) {
    const int m = std::min<int>(static_cast<int>(n_batch_), n_new - i);
    const size_t o = static_cast<size_t>(first_out + i);
    matmul(w.output, out_hidden_.data() + o * static_cast<size_t>(ne), ne, m,
           out_logits_.data() + o * static_cast<size_t>(hp.n_vocab), hp.n_vocab);
  }
  return ok_status();
}

void Context::ffn_dense(const LayerWeights& l, int64_t n) {
  const HParams& hp = model_.hparams();
  const int64_t ne = hp.n_embd, ff = hp.n_ff;
  // g = silu(cur · Wgate) * (cur · Wup)   [n][n_ff];  out = g · Wdown   [n][n_embd]
  matmul(l.ffn_gate, cur_.data(), ne, n, ffn_g_.data(), ff);
  matmul(l.ffn_up, cur_.data(), ne, n, ffn_u_.data(), ff);
  for (int64_t t = 0; t < n; ++t) kt_->swiglu(row(ffn_g_, t, ff), row(ffn_u_, t, ff), ff);
  matmul(l.ffn_down, ffn_g_.data(), ff, n, ffn_out_.data(), ne);
}

void Context::ffn_moe(const LayerWeights& l, int64_t n) {
  const HParams& hp = model_.hparams();
  const int64_t ne = hp.n_embd, ff = hp.n_ff, n_exp = hp.n_expert, k = hp.n_expert_used;
  // Router: probabilities over all experts, top-k, weights renormalised over the chosen k
  // (equal to a softmax over the k selected logits).
  matmul(l.ffn_gate_inp, cur_.data(), ne, n, router_.data(), n_exp);
  std::fill(ffn_out_.begin(), ffn_out_.begin() + n * ne, 0.0f);
  std::vector<int32_t> order(static_cast<size_t>(n_exp));
  std::vector<std::vector<std::pair<int64_t, float>>> routed(static_cast<size_t>(n_exp));
  for (int64_t t = 0; t < n; ++t) {
    float* p = row(router_, t, n_exp);
    if (k < n_exp) {
      // Near-tie diagnostics on the raw gate logits (before the softmax).
      std::vector<float> sorted(p, p + n_exp);
      std::sort(sorted.begin(), sorted.end(), std::greater<float>());
      const float range = sorted.front() - sorted.back();
      if (sorted[k - 1] - sorted[k] <= 0.01f * range) near_tie_[t] = 1;
    }
    kt_->softmax(p, n_exp);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [p](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    float sum = 0.0f;
    for (int64_t j = 0; j < k; ++j) sum += p[order[j]];
    for (int64_t j = 0; j < k; ++j) routed[order[j]].emplace_back(t, p[order[j]] / sum);
  }
  for (int64_t e = 0; e < n_exp; ++e) {
    const auto& toks = routed[e];
    if (toks.empty()) continue;
    const int64_t m = static_cast<int64_t>(toks.size());
    for (int64_t i = 0; i < m; ++i) std::memcpy(row(moe_in_, i, ne), row(cur_, toks[i].first, ne), ne * sizeof(float));
    matmul(l.ffn_gate_exps.matrix(e), moe_in_.data(), ne, m, moe_g_.data(), ff);
    matmul(l.ffn_up_exps.matrix(e), moe_in_.data(), ne, m, moe_u_.data(), ff);
    for (int64_t i = 0; i < m; ++i) kt_->swiglu(row(moe_g_, i, ff), row(moe_u_, i, ff), ff);
    matmul(l.ffn_down_exps.matrix(e), moe_g_.data(), ff, m, moe_out_.data(), ne);
    for (int64_t i = 0; i < m; ++i) {
      float* dst = row(ffn_out_, toks[i].first, ne);
      const float* src = row(moe_out_, i, ne);
      const float wgt = toks[i].second;
      for (int64_t j = 0; j < ne; ++j) dst[j] += wgt * src[j];
    }
  }
}

}  // namespace hearth::model
