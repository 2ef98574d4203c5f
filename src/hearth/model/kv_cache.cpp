#include "hearth/model/kv_cache.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace hearth::model {

uint64_t KvCache::bytes_needed(const HParams& hp, int64_t n_ctx, int n_seq, kernels::KvType type) {
  const uint64_t elem = type == kernels::KvType::kF32 ? 4 : 2;
  // 2 (K and V) x layers x seqs x ctx x row: all factors are bounded at load, but check anyway.
  uint64_t b = 2 * elem;
  for (uint64_t f : {static_cast<uint64_t>(hp.n_layer), static_cast<uint64_t>(n_seq), static_cast<uint64_t>(n_ctx),
                     static_cast<uint64_t>(hp.n_embd_kv())}) {
    if (__builtin_mul_overflow(b, f, &b)) return UINT64_MAX;
  }
  return b;
}

Result<std::unique_ptr<KvCache>> KvCache::create(const HParams& hp, int64_t n_ctx, int n_seq, kernels::KvType type,
                                                 uint64_t limit_bytes) {
  if (n_ctx < 1 || n_seq < 1)
    return make_error(ErrorCode::kInvalidArgument, "kv cache: context and sequence count must be positive");
  const uint64_t need = bytes_needed(hp, n_ctx, n_seq, type);
  if (need > limit_bytes) {
    return make_error(ErrorCode::kResourceExhausted,
                      "kv cache for context {} x {} sequence(s) needs {} MiB, over the limit of {} MiB; use a smaller "
                      "-c or raise --kv-limit",
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
  c->row_elems_ = hp.n_embd_kv();
  c->type_ = type;
  c->elem_bytes_ = type == kernels::KvType::kF32 ? 4 : 2;
  return c;
}

KvCache::~KvCache() { std::free(data_); }

void* KvCache::at(int which, int64_t layer, int seq) {
  const size_t seq_bytes = static_cast<size_t>(n_ctx_ * row_elems_) * elem_bytes_;
  const size_t idx = (static_cast<size_t>(which) * static_cast<size_t>(n_layer_) + static_cast<size_t>(layer)) *
                         static_cast<size_t>(n_seq_) +
                     static_cast<size_t>(seq);
  return data_ + idx * seq_bytes;
}

void KvCache::copy_prefix(int src, int dst, int64_t n) {
  if (src == dst || n <= 0) return;
  const size_t bytes = static_cast<size_t>(n * row_elems_) * elem_bytes_;
  for (int64_t l = 0; l < n_layer_; ++l) {
    std::memcpy(k(l, dst), k(l, src), bytes);
    std::memcpy(v(l, dst), v(l, src), bytes);
  }
}

}  // namespace hearth::model
