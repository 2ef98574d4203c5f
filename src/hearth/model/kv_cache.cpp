#include "hearth/model/kv_cache.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace hearth::model {

uint64_t KvCache::bytes_needed(const HParams& hp, int64_t n_ctx, int n_seq, kernels::KvTypes types) {
  // (K row + V row) x layers x seqs x ctx: all factors are bounded at load, but check anyway.
  uint64_t b = 0;
  if (__builtin_add_overflow(kernels::kv_row_bytes(types.k, hp.n_embd_kv()),
                             kernels::kv_row_bytes(types.v, hp.n_embd_kv()), &b))
    return UINT64_MAX;
  for (uint64_t f : {static_cast<uint64_t>(hp.n_layer), static_cast<uint64_t>(n_seq), static_cast<uint64_t>(n_ctx)}) {
    if (__builtin_mul_overflow(b, f, &b)) return UINT64_MAX;
  }
  return b;
}

Result<std::unique_ptr<KvCache>> KvCache::create(const HParams& hp, int64_t n_ctx, int n_seq, kernels::KvTypes types,
                                                 uint64_t limit_bytes) {
  if (n_ctx < 1 || n_seq < 1)
    return make_error(ErrorCode::kInvalidArgument, "kv cache: context and sequence count must be positive");
  const int64_t row = hp.n_embd_kv();
  for (auto [t, which] : {std::pair{types.k, "K"}, std::pair{types.v, "V"}}) {
    if (kernels::kv_type_quantized(t) && row % kernels::kKvBlock != 0) {
      return make_error(ErrorCode::kInvalidArgument,
                        "kv cache type {} for {} needs rows of a multiple of {} elements, but this model's rows are "
                        "n_head_kv {} x head_dim {} = {}; use f16 or f32 for {}",
                        kernels::kv_type_name(t), which, kernels::kKvBlock, hp.n_head_kv, hp.head_dim, row, which);
    }
  }
  const uint64_t need = bytes_needed(hp, n_ctx, n_seq, types);
  if (need > limit_bytes) {
    return make_error(ErrorCode::kResourceExhausted,
                      "kv cache for context {} x {} sequence(s) needs {} MiB, over the limit of {} MiB; use a smaller "
                      "-c, a quantized --cache-type-k/--cache-type-v, or raise --kv-limit",
                      n_ctx, n_seq, need >> 20, limit_bytes >> 20);
  }
  auto c = std::unique_ptr<KvCache>(new KvCache());
  c->data_ = static_cast<std::byte*>(std::calloc(1, need));
  if (c->data_ == nullptr) {
    return make_error(ErrorCode::kResourceExhausted, "kv cache: cannot allocate {} MiB", need >> 20);
  }
  c->bytes_ = need;
  c->n_layer_ = hp.n_layer;
  c->n_ctx_ = n_ctx;
  c->n_seq_ = n_seq;
  c->row_elems_ = row;
  c->types_ = types;
  c->row_bytes_[0] = kernels::kv_row_bytes(types.k, row);
  c->row_bytes_[1] = kernels::kv_row_bytes(types.v, row);
  return c;
}

KvCache::~KvCache() { std::free(data_); }

void* KvCache::at(int which, int64_t layer, int seq) {
  // The K region (every layer and sequence), then the V region.
  const auto ctx = static_cast<size_t>(n_ctx_);
  const size_t base = which == 0 ? 0 : static_cast<size_t>(n_layer_) * static_cast<size_t>(n_seq_) * ctx * row_bytes_[0];
  const size_t idx = static_cast<size_t>(layer) * static_cast<size_t>(n_seq_) + static_cast<size_t>(seq);
  return data_ + base + idx * ctx * row_bytes_[which];
}

void KvCache::copy_prefix(int src, int dst, int64_t n) {
  if (src == dst || n <= 0) return;
  const auto un = static_cast<size_t>(n);
  for (int64_t l = 0; l < n_layer_; ++l) {
    std::memcpy(k(l, dst), k(l, src), un * row_bytes_[0]);
    std::memcpy(v(l, dst), v(l, src), un * row_bytes_[1]);
  }
}

}  // namespace hearth::model
