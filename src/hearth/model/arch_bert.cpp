// `bert`: BERT-style sentence-embedding encoders (Devlin et al. 2018; BGE, MiniLM, nomic-free
// layouts). Input = token_embd[id] + token_types[0] + position_embd[pos], LayerNorm; post-LN
// blocks with biases everywhere:
//   x = LN(x + attn_output(attn(x)))      attn_output_norm
//   x = LN(x + ffn_down(gelu(ffn_up(x)))) layer_output_norm
// Attention is bidirectional (bert.attention.causal = false), there is no output norm and no
// LM head: the output is the last hidden state, pooled as bert.pooling_type says.
#include "hearth/model/architecture.h"
#include "hearth/model/forward.h"

namespace hearth::model {
namespace {

Status bind_pair(WeightBinder& b, const std::string& name, int64_t n, TensorView& w, TensorView& bias) {
  HEARTH_ASSIGN_OR_RETURN(w, b.require(name + ".weight", {n}, WeightKind::kVector));
  HEARTH_ASSIGN_OR_RETURN(bias, b.require(name + ".bias", {n}, WeightKind::kVector));
  return ok_status();
}

Status bind_bert_layer(const HParams& hp, LayerWeights& l, WeightBinder& b, int il) {
  const std::string p = "blk." + std::to_string(il) + ".";
  const int64_t n = hp.n_embd, nq = hp.n_embd_q(), nkv = hp.n_embd_kv(), ff = hp.n_ff;
  HEARTH_ASSIGN_OR_RETURN(l.wq, b.require(p + "attn_q.weight", {n, nq}, WeightKind::kMatrix));
  HEARTH_ASSIGN_OR_RETURN(l.wk, b.require(p + "attn_k.weight", {n, nkv}, WeightKind::kMatrix));
  HEARTH_ASSIGN_OR_RETURN(l.wv, b.require(p + "attn_v.weight", {n, nkv}, WeightKind::kMatrix));
  HEARTH_ASSIGN_OR_RETURN(l.wo, b.require(p + "attn_output.weight", {nq, n}, WeightKind::kMatrix));
  HEARTH_ASSIGN_OR_RETURN(l.bq, b.require(p + "attn_q.bias", {nq}, WeightKind::kVector));
  HEARTH_ASSIGN_OR_RETURN(l.bk, b.require(p + "attn_k.bias", {nkv}, WeightKind::kVector));
  HEARTH_ASSIGN_OR_RETURN(l.bv, b.require(p + "attn_v.bias", {nkv}, WeightKind::kVector));
  HEARTH_ASSIGN_OR_RETURN(l.bo, b.require(p + "attn_output.bias", {n}, WeightKind::kVector));
  HEARTH_TRY(bind_pair(b, p + "attn_output_norm", n, l.attn_out_norm, l.attn_out_norm_b));
  HEARTH_ASSIGN_OR_RETURN(l.ffn_up, b.require(p + "ffn_up.weight", {n, ff}, WeightKind::kMatrix));
  HEARTH_ASSIGN_OR_RETURN(l.ffn_up_b, b.require(p + "ffn_up.bias", {ff}, WeightKind::kVector));
  HEARTH_ASSIGN_OR_RETURN(l.ffn_down, b.require(p + "ffn_down.weight", {ff, n}, WeightKind::kMatrix));
  HEARTH_ASSIGN_OR_RETURN(l.ffn_down_b, b.require(p + "ffn_down.bias", {n}, WeightKind::kVector));
  HEARTH_TRY(bind_pair(b, p + "layer_output_norm", n, l.layer_out_norm, l.layer_out_norm_b));
  if (b.has(p + "ffn_gate.weight")) {
    return make_error(ErrorCode::kUnimplemented, "tensor '{}ffn_gate.weight': gated bert FFNs (nomic-bert, jina) are "
                      "not supported", p);
  }
  return ok_status();
}

void block_bert(Forward& f, const LayerWeights& l, int64_t il) {
  f.residual_as_input();
  f.qkv(l);
  f.store_kv(il);
  f.attend(il);  // bidirectional: hp.causal is false
  f.attn_output(l);
  f.add_attn();
  f.norm_residual(l.attn_out_norm, l.attn_out_norm_b);
  f.residual_as_input();
  f.ffn_gelu(l);
  f.add_ffn();
  f.norm_residual(l.layer_out_norm, l.layer_out_norm_b);
}

}  // namespace

Status load_bert(const gguf::GgufFile& f, HParams& hp, ModelWeights& w, WeightBinder& b) {
  HEARTH_TRY(read_common_hparams(f, hp));
  if (hp.n_expert != 0) return make_error(ErrorCode::kUnimplemented, "{}: bert with experts is not supported", f.name());
  auto eps = f.get_f32("bert.attention.layer_norm_epsilon");
  if (!eps.ok()) return eps.status().with_context(f.name());
  hp.norm_eps = *eps;
  hp.norm = NormType::kLayer;
  hp.n_rot = 0;  // absolute positions, no RoPE
  hp.causal = false;
  if (f.find("bert.attention.causal") != nullptr) {
    auto causal = f.get_bool("bert.attention.causal");
    if (!causal.ok()) return causal.status().with_context(f.name());
    if (*causal) {
      return make_error(ErrorCode::kUnimplemented, "{}: bert.attention.causal = true is not supported (an encoder "
                        "attends both ways)", f.name());
    }
  }
  if (f.find("bert.pooling_type") != nullptr) {
    auto pt = f.get_uint("bert.pooling_type");
    if (!pt.ok()) return pt.status().with_context(f.name());
    if (*pt > 3) {
      return make_error(ErrorCode::kUnimplemented,
                        "{}: bert.pooling_type {} is not supported (0 none, 1 mean, 2 cls, 3 last are)", f.name(), *pt);
    }
    hp.pooling = static_cast<PoolingType>(*pt);
  } else {
    hp.pooling = PoolingType::kCls;  // BERT's classic sentence vector
  }
  const int64_t n = hp.n_embd;
  HEARTH_ASSIGN_OR_RETURN(w.token_embd, b.require("token_embd.weight", {n, hp.n_vocab}, WeightKind::kEmbedding));
  const gguf::TensorInfo* tt = f.find_tensor("token_types.weight");
  if (tt == nullptr) return make_error(ErrorCode::kInvalidArgument, "{}: tensor 'token_types.weight' is missing", f.name());
  const auto n_types = static_cast<int64_t>(tt->ne[1]);
  if (n_types < 1 || n_types > 1024) {
    return make_error(ErrorCode::kInvalidArgument, "{}: token_types.weight has {} token types (expected 1 to 1024)",
                      f.name(), n_types);
  }
  HEARTH_ASSIGN_OR_RETURN(w.token_types, b.require("token_types.weight", {n, n_types}, WeightKind::kEmbedding));
  HEARTH_ASSIGN_OR_RETURN(w.position_embd,
                          b.require("position_embd.weight", {n, hp.n_ctx_train}, WeightKind::kEmbedding));
  HEARTH_TRY(bind_pair(b, "token_embd_norm", n, w.token_embd_norm, w.token_embd_norm_b));
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int il = 0; il < hp.n_layer; ++il) HEARTH_TRY(bind_bert_layer(hp, w.layers[static_cast<size_t>(il)], b, il));
  return ok_status();
}

BlockFn bert_block(const HParams&) { return &block_bert; }

}  // namespace hearth::model
