// Context: creation (KV cache, RoPE tables, activation buffers) and batch validation. The
// forward pass itself is in forward.cpp.
#include "hearth/model/context.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "hearth/core/log.h"
#include "hearth/core/process_stats.h"
#include "hearth/model/rope_table.h"

namespace hearth::model {

int64_t default_context(const HParams& hp) { return std::min<int64_t>(4096, hp.n_ctx_train); }

Result<std::unique_ptr<Context>> Context::create(const Model& model, ContextParams p) {
  const HParams& hp = model.hparams();
  auto c = std::unique_ptr<Context>(new Context(model));
  c->kt_ = p.kernels ? p.kernels : &kernels::active_kernels();
  int64_t n_ctx = p.n_ctx > 0 ? p.n_ctx : default_context(hp);
  if (n_ctx > (int64_t{1} << 22)) {
    return make_error(ErrorCode::kOutOfRange, "context {} is larger than hearth supports", n_ctx);
  }
  if (n_ctx > hp.n_ctx_train && model.weights().position_embd.valid()) {
    // Absolute position embeddings (bert) have one row per trained position and no more.
    return make_error(ErrorCode::kOutOfRange,
                      "context {} is larger than the model's context_length {} (its position embeddings end there); "
                      "use a context of at most {}",
                      n_ctx, hp.n_ctx_train, hp.n_ctx_train);
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
  HEARTH_ASSIGN_OR_RETURN(c->kv_,
                          KvCache::create(hp, n_ctx, p.n_seq, p.kv_type, limit, c->n_batch_, p.swa_full_cache));
  log::info("kv cache: {:.1f} MiB (K {}, V {}; {} x {} positions{})", c->kv_->bytes() / 1048576.0,
            kernels::kv_type_name(p.kv_type.k), kernels::kv_type_name(p.kv_type.v), p.n_seq, n_ctx,
            c->kv_->has_ring() ? fmt::format(", sliding layers a ring of {}", c->kv_->ring()) : std::string());

  // RoPE tables (rope_table.h): linear, Llama 3 (rope_freqs) and YaRN scaling in the cos/sin pairs.
  fill_rope_table(c->rope_cs_, n_ctx, rope_table_params(hp, model.weights().rope_freqs));
  if (hp.rope_freq_base_swa > 0.0f) {
    RopeTableParams swa;  // the sliding layers' own base, unscaled (gemma3)
    swa.n_rot = hp.n_rot;
    swa.base = hp.rope_freq_base_swa;
    fill_rope_table(c->rope_cs_swa_, n_ctx, swa);
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
  const ModelWeights& w = model.weights();
  int64_t g_width = hp.n_ff;  // a fused gate+up (phi3) writes both halves into ffn_g_
  bool fused_qkv = false;
  for (const auto& l : w.layers) {
    if (l.ffn_up.valid()) g_width = std::max(g_width, l.ffn_up.ne[1]);
    fused_qkv = fused_qkv || l.wqkv.valid();
  }
  if (fused_qkv) alloc(c->qkv_, hp.n_embd_q() + 2 * hp.n_embd_kv());
  alloc(c->ffn_g_, g_width);
  alloc(c->ffn_u_, hp.n_ff);
  alloc(c->ffn_out_, hp.n_embd);
  if (hp.n_expert > 0) {
    alloc(c->router_, hp.n_expert);
    alloc(c->moe_in_, hp.n_embd);
    alloc(c->moe_g_, hp.n_ff);
    alloc(c->moe_u_, hp.n_ff);
    alloc(c->moe_out_, hp.n_embd);
    c->moe_order_.assign(static_cast<size_t>(hp.n_expert), 0);
    c->moe_sorted_.assign(static_cast<size_t>(hp.n_expert), 0.0f);
    c->moe_count_.assign(static_cast<size_t>(hp.n_expert), 0);
    c->moe_tok_.assign(static_cast<size_t>(hp.n_expert * nb), 0);
    alloc(c->moe_wgt_, hp.n_expert);
  }
  c->attn_scratch_.assign(kernels::attention_scratch_floats(n_ctx, n_threads), 0.0f);
  // Matmul scratch: the largest converted activation block over every weight's type.
  size_t mm = 0;
  auto consider = [&](const TensorView& t) {
    if (t.valid()) mm = std::max(mm, kernels::matmul_scratch_bytes(*c->kt_, t.type, t.ne[0], nb));
  };
  consider(w.output);
  for (const auto& l : w.layers) {
    for (const TensorView* t : {&l.wq, &l.wqkv, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down,
                                &l.ffn_gate_inp, &l.ffn_gate_exps, &l.ffn_up_exps, &l.ffn_down_exps}) {
      consider(*t);
    }
  }
  c->mm_scratch_.assign(mm, std::byte{0});
  c->pos_.assign(static_cast<size_t>(nb), 0);
  if (!hp.causal) c->pos_all_.assign(static_cast<size_t>(nb), 0);
  c->near_tie_.assign(static_cast<size_t>(nb), 0);
  c->lora_.resize(static_cast<size_t>(c->kv_->n_seq()));
  return c;
}

Status Context::set_adapters(int seq, std::vector<LoraUse> adapters) {
  if (seq < 0 || seq >= kv_->n_seq()) {
    return make_error(ErrorCode::kInvalidArgument, "sequence {} is outside [0, {})", seq, kv_->n_seq());
  }
  int64_t max_rank = 0, max_rows = 0, max_cols = 0;
  for (const LoraUse& u : adapters) {
    if (u.adapter == nullptr) return make_error(ErrorCode::kInvalidArgument, "sequence {}: a null LoRA adapter", seq);
    if (&u.adapter->base() != &model_) {
      return make_error(ErrorCode::kInvalidArgument, "LoRA adapter {} was loaded for another model than {}",
                        u.adapter->path(), model_.path());
    }
    if (!std::isfinite(u.scale)) {
      return make_error(ErrorCode::kInvalidArgument, "LoRA adapter {}: scale {} is not finite", u.adapter->path(),
                        u.scale);
    }
    for (const LoraWeight& w : u.adapter->weights()) {
      max_rank = std::max(max_rank, w.rank);
      max_rows = std::max(max_rows, w.rows);
      max_cols = std::max(max_cols, w.cols);
    }
  }
  // Scratch for the largest product any sequence's adapters need (it only grows).
  const auto nb = static_cast<size_t>(n_batch_);
  auto grow = [](auto& v, size_t n) {
    if (v.size() < n) v.resize(n);
  };
  grow(lora_tmp_, nb * static_cast<size_t>(max_rank));
  grow(lora_delta_, nb * static_cast<size_t>(max_rows));
  grow(lora_scratch_, std::max(kernels::matmul_scratch_bytes(*kt_, TensorType::F32, max_cols, n_batch_),
                               kernels::matmul_scratch_bytes(*kt_, TensorType::F32, max_rank, n_batch_)));
  auto& slot = lora_[static_cast<size_t>(seq)];
  n_lora_seqs_ += (adapters.empty() ? 0 : 1) - (slot.empty() ? 0 : 1);
  slot = std::move(adapters);
  return ok_status();
}

std::span<const float> Context::logits(int i) const {
  const int64_t nv = model_.hparams().n_vocab;
  if (out_logits_.empty()) return {};  // an encoder (bert) has no logits
  return {out_logits_.data() + static_cast<size_t>(i) * static_cast<size_t>(nv), static_cast<size_t>(nv)};
}

std::span<const float> Context::hidden(int i) const {
  const int64_t ne = model_.hparams().n_embd;
  return {out_hidden_.data() + static_cast<size_t>(i) * static_cast<size_t>(ne), static_cast<size_t>(ne)};
}

int64_t Context::reusable_prefix(int seq, int64_t n) const {
  if (!kv_->has_ring() || seq < 0 || seq >= kv_->n_seq() || n <= 0) return std::max<int64_t>(n, 0);
  return KvCache::window_held(kv_->spans()[static_cast<size_t>(seq)], n, model_.hparams().n_swa) ? n : 0;
}

Status Context::decode(std::span<const BatchToken> batch) {
  const HParams& hp = model_.hparams();
  int total_out = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchToken& t = batch[i];
    if (t.token < 0 || t.token >= hp.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "token id {} at batch index {} is outside the vocabulary [0, {})",
                        t.token, i, hp.n_vocab);
    }
    if (t.pos < 0 || t.pos >= n_ctx_) {
      return make_error(ErrorCode::kOutOfRange, "position {} is outside the context of {} tokens", t.pos, n_ctx_);
    }
    if (t.seq < 0 || t.seq >= kv_->n_seq()) {
      return make_error(ErrorCode::kInvalidArgument, "sequence {} is outside [0, {})", t.seq, kv_->n_seq());
    }
    total_out += t.logits ? 1 : 0;
  }
  if (kv_->has_ring()) {
    // The positions each sequence's rings hold, as this batch writes them in order.
    std::vector<KvCache::RingSpan> spans = kv_->spans();
    for (const BatchToken& t : batch) {
      KvCache::RingSpan& s = spans[static_cast<size_t>(t.seq)];
      if (!KvCache::window_held(s, t.pos, hp.n_swa)) {
        return make_error(ErrorCode::kFailedPrecondition,
                          "sequence {} at position {}: the sliding-window layers' ring of {} rows no longer holds "
                          "positions {}..{} (overwritten by later positions up to {}); evaluate the sequence again "
                          "from an earlier position",
                          t.seq, t.pos, kv_->ring(), std::max<int64_t>(0, t.pos - hp.n_swa + 1), s.lo - 1, s.hi);
      }
      s = KvCache::advance(s, t.pos, kv_->ring());
    }
    kv_->set_spans(std::move(spans));
  }
  if (!hp.causal && static_cast<int64_t>(batch.size()) > n_batch_) {
    // A chunk boundary would cut a sequence in two halves that cannot see each other.
    return make_error(ErrorCode::kInvalidArgument,
                      "a batch of {} tokens is larger than n_batch {}; an encoder ({}) needs each sequence in one "
                      "batch (raise n_batch)",
                      batch.size(), n_batch_, hp.arch);
  }
  const bool has_logits = model_.weights().output.valid();
  out_logits_.resize(has_logits ? static_cast<size_t>(total_out) * static_cast<size_t>(hp.n_vocab) : 0);
  out_hidden_.resize(static_cast<size_t>(total_out) * static_cast<size_t>(hp.n_embd));
  out_near_tie_.assign(static_cast<size_t>(total_out), 0);
  n_outputs_ = 0;
  for (size_t b = 0; b < batch.size(); b += static_cast<size_t>(n_batch_)) {
    size_t e = std::min(batch.size(), b + static_cast<size_t>(n_batch_));
    HEARTH_TRY(decode_chunk(batch.subspan(b, e - b)));
  }
  return ok_status();
}

}  // namespace hearth::model
