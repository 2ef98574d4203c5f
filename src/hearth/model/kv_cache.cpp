#include "hearth/model/kv_cache.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

namespace hearth::model {

int64_t KvCache::swa_rows(const HParams& hp, int64_t n_ctx, int64_t n_batch, bool full) {
  if (full || hp.n_swa <= 0) return n_ctx;
  return std::min(n_ctx, hp.n_swa + std::max<int64_t>(n_batch, 1));
}

uint64_t KvCache::bytes_needed(const HParams& hp, int64_t n_ctx, int n_seq, kernels::KvTypes types, int64_t n_batch,
                               bool swa_full) {
  // Sum over layers of (K row + V row) x rows x seqs: all factors are bounded at load, but check anyway.
  uint64_t row = 0;
  if (__builtin_add_overflow(kernels::kv_row_bytes(types.k, hp.n_embd_kv()),
                             kernels::kv_row_bytes(types.v, hp.n_embd_kv()), &row))
    return UINT64_MAX;
  const int64_t ring = swa_rows(hp, n_ctx, n_batch, swa_full);
  uint64_t total = 0;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    uint64_t b = row;
    const auto rows = static_cast<uint64_t>(hp.is_swa(il) ? ring : n_ctx);
    if (__builtin_mul_overflow(b, rows, &b) || __builtin_mul_overflow(b, static_cast<uint64_t>(n_seq), &b) ||
        __builtin_add_overflow(total, b, &total))
      return UINT64_MAX;
  }
  return total;
}

Result<std::unique_ptr<KvCache>> KvCache::create(const HParams& hp, int64_t n_ctx, int n_seq, kernels::KvTypes types,
                                                 uint64_t limit_bytes, int64_t n_batch, bool swa_full) {
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
  const uint64_t need = bytes_needed(hp, n_ctx, n_seq, types, n_batch, swa_full);
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
  const int64_t ring = swa_rows(hp, n_ctx, n_batch, swa_full);
  c->ring_ = ring < n_ctx ? ring : 0;
  c->spans_.assign(static_cast<size_t>(n_seq), RingSpan{});
  // The K region (every layer and sequence), then the V region; within each, layer by layer.
  size_t off = 0;
  for (int which : {0, 1}) {
    for (int64_t il = 0; il < hp.n_layer; ++il) {
      const int64_t rows = hp.is_swa(il) ? ring : n_ctx;
      if (which == 0) c->rows_.push_back(rows);
      c->layer_off_[which].push_back(off);
      off += static_cast<size_t>(rows) * static_cast<size_t>(n_seq) * c->row_bytes_[which];
    }
  }
  return c;
}

KvCache::~KvCache() { std::free(data_); }

void* KvCache::at(int which, int64_t layer, int seq) {
  const auto l = static_cast<size_t>(layer);
  return data_ + layer_off_[which][l] +
         static_cast<size_t>(seq) * static_cast<size_t>(rows_[l]) * row_bytes_[which];
}

bool KvCache::window_held(const RingSpan& s, int64_t pos, int64_t n_swa) {
  const int64_t first = std::max<int64_t>(0, pos - n_swa + 1);
  return first == pos || first >= s.lo;
}

KvCache::RingSpan KvCache::advance(RingSpan s, int64_t pos, int64_t ring) {
  if (pos < s.lo) return {pos, pos};
  return {std::max(s.lo, pos - ring + 1), pos};
}

void KvCache::copy_prefix(int src, int dst, int64_t n) {
  if (src == dst || n <= 0) return;
  for (int64_t l = 0; l < n_layer_; ++l) {
    // A ring holds positions below n in min(n, rows) rows (all of them once n wraps).
    const auto un = static_cast<size_t>(std::min(n, rows(l)));
    std::memcpy(k(l, dst), k(l, src), un * row_bytes_[0]);
    std::memcpy(v(l, dst), v(l, src), un * row_bytes_[1]);
  }
  const RingSpan s = spans_[static_cast<size_t>(src)];
  spans_[static_cast<size_t>(dst)] = {s.lo, std::min(s.hi, n - 1)};
}

}  // namespace hearth::model
