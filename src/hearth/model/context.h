// Context: the state needed to run a Model — KV cache, activation buffers (allocated once),
// RoPE tables and a thread pool — and the batched forward pass (its steps: forward.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/model/kv_cache.h"
#include "hearth/model/lora_adapter.h"
#include "hearth/model/model.h"

namespace hearth::model {

struct ContextParams {
  int64_t n_ctx = 0;      // 0: min(4096, the model's context_length)
  int n_seq = 1;          // independent sequences (server slots)
  int64_t n_batch = 512;  // most tokens per forward pass; longer batches are split
  int n_threads = 0;      // 0: physical cores
  kernels::KvTypes kv_type = kernels::KvType::kF16;  // K and V cache types (one KvType: both)
  uint64_t kv_limit_bytes = 0;                    // 0: 75% of available memory
  const kernels::KernelTable* kernels = nullptr;  // nullptr: active_kernels()
  // Sliding-window layers keep every position instead of a ring of n_swa + n_batch rows
  // (kv_cache.h). For tests, as the oracle of the ring; it only costs memory.
  bool swa_full_cache = false;
};

// One token of a batch: its id, position, sequence and whether its logits are wanted.
struct BatchToken {
  int32_t token;
  int32_t pos;
  int32_t seq = 0;
  bool logits = false;
};

class Context {
 public:
  static Result<std::unique_ptr<Context>> create(const Model& model, ContextParams params);

  // Runs the tokens through the model. A token at position p of sequence s attends to the
  // cache rows 0..p of s, so rows below p must have been filled before (or earlier in this
  // batch). Outputs (logits, hidden states) of tokens with logits=true, in batch order.
  // With a sliding window held in a ring (kv_cache.h), the rows that p's window reads must
  // not have been overwritten since (by positions at least a ring further on): otherwise
  // failed_precondition, and the sequence must be evaluated again from an earlier position
  // (reusable_prefix says which).
  // An encoder (hp.causal false, bert) attends both ways: each sequence's tokens must all be
  // in one batch of at most n_batch tokens, and it has hidden states only (no logits).
  Status decode(std::span<const BatchToken> batch);

  // How many of the first n positions of sequence seq that the cache holds a continuation at
  // position n can keep: n, or 0 when the sliding-window rings have overwritten rows that
  // position n's window reads (a sequence that went on far past n, then came back). Callers
  // that reuse a cached prefix (prefix matching, rollback) keep this many.
  int64_t reusable_prefix(int seq, int64_t n) const;

  int n_outputs() const { return n_outputs_; }
  std::span<const float> logits(int i) const;
  // Final hidden state after the output norm (used for embeddings); an encoder's last hidden state.
  std::span<const float> hidden(int i) const;

  const Model& model() const { return model_; }
  int64_t n_ctx() const { return n_ctx_; }
  int n_seq() const { return kv_->n_seq(); }
  int n_threads() const { return pool_->size(); }
  KvCache& kv_cache() { return *kv_; }
  const kernels::KernelTable& kernels() const { return *kt_; }
  // For MoE models: whether the router's k-th and (k+1)-th gate logits of output i were within
  // 1% of the gate logits' range in any layer (a near-tie that any arithmetic change may flip).
  bool router_near_tie(int i) const { return i < static_cast<int>(out_near_tie_.size()) && out_near_tie_[i]; }

  // Optional observer of every weight matmul's input, called before the product with the
  // weight (one expert's matrix for MoE weights) and its activations x [n_tok][w.ne[0]], rows
  // x_stride floats apart. Used to collect importance matrices; empty (the default): off.
  using MatmulObserver = std::function<void(const TensorView& w, const float* x, int64_t x_stride, int64_t n_tok)>;
  void set_matmul_observer(MatmulObserver observer) { matmul_observer_ = std::move(observer); }

  // The LoRA adapters (lora_adapter.h) applied to the tokens of sequence `seq` from the next
  // decode on: each adapted weight W acts as W + sum_i scale_i * (alpha_i / rank_i) * B_i A_i.
  // Every adapter must have been loaded for this context's model; scales must be finite.
  // Empty (the default): the base model, on the same path as a context without adapters.
  Status set_adapters(int seq, std::vector<LoraUse> adapters);
  const std::vector<LoraUse>& adapters(int seq) const { return lora_[static_cast<size_t>(seq)]; }

 private:
  friend class Forward;  // the forward pass's steps (forward.h) work on the buffers below
  explicit Context(const Model& m) : model_(m) {}
  Status decode_chunk(std::span<const BatchToken> batch);  // forward.cpp

  const Model& model_;
  const kernels::KernelTable* kt_ = nullptr;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<KvCache> kv_;
  int64_t n_ctx_ = 0, n_batch_ = 0;
  std::vector<float> rope_cs_;      // [n_ctx][n_rot] (cos, sin) pairs
  std::vector<float> rope_cs_swa_;  // the same for the sliding layers' own base (gemma3); else empty

  // Activation buffers, one row per token of a chunk (n = n_batch rows).
  std::vector<float> x_;                 // [n][n_embd] the residual stream
  std::vector<float> cur_;               // [n][n_embd] normed input of attention / FFN
  std::vector<float> q_, attn_;          // [n][n_head * head_dim]
  std::vector<float> k_, v_;             // [n][n_head_kv * head_dim]
  std::vector<float> o_, ffn_out_;       // [n][n_embd] attention and FFN outputs
  std::vector<float> qkv_;               // [n][(n_head + 2 n_head_kv) * head_dim] fused qkv (phi3)
  std::vector<float> ffn_g_, ffn_u_;     // [n][n_ff]; ffn_g_ [n][2 n_ff] with a fused gate+up (phi3)
  std::vector<float> router_;            // [n][n_expert] MoE gate logits, then probabilities
  std::vector<float> moe_in_, moe_out_;  // [n][n_embd] the rows routed to one expert
  std::vector<float> moe_g_, moe_u_;     // [n][n_ff]
  // MoE routing scratch, so that decode allocates nothing per token.
  std::vector<int32_t> moe_order_;  // [n_expert] experts by probability
  std::vector<float> moe_sorted_;   // [n_expert] gate logits, sorted (near-tie check)
  std::vector<int64_t> moe_count_;  // [n_expert] tokens routed to each expert
  std::vector<int64_t> moe_tok_;    // [n_expert][n] the tokens routed to each expert, in order
  std::vector<float> moe_wgt_;      // [n_expert][n] their routing weights
  std::vector<float> out_hidden_;   // [n_outputs][n_embd]
  std::vector<float> out_logits_;   // [n_outputs][n_vocab]
  std::vector<float> attn_scratch_;
  std::vector<std::byte> mm_scratch_;
  std::vector<int32_t> pos_;
  std::vector<int32_t> pos_all_;    // [n] bidirectional attention: each run's last position (bert)
  std::vector<char> near_tie_;      // per batch token of the current chunk
  std::vector<char> out_near_tie_;  // per output
  int n_outputs_ = 0;
  MatmulObserver matmul_observer_;
  // LoRA: the adapters of each sequence, how many sequences have any (0: no adapter work at
  // all), and the scratch of the low-rank products, sized by set_adapters.
  std::vector<std::vector<LoraUse>> lora_;  // [n_seq]
  int n_lora_seqs_ = 0;
  std::vector<float> lora_tmp_;          // [n][max rank]   A x
  std::vector<float> lora_delta_;        // [n][max rows]   B (A x)
  std::vector<std::byte> lora_scratch_;  // the f32 matmul's scratch for those products
};

// The default context size for a model: min(4096, context_length).
int64_t default_context(const HParams& hp);

}  // namespace hearth::model
