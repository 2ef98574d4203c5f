// KvCache: per-layer, per-sequence key and value rows, indexed by position.
// Layout: [layer][seq][pos][n_head_kv * head_dim]. Memory is reserved lazily (calloc'd pages
// are only backed when written), but its full size is checked against the limit up front.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "hearth/core/status.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/model/model_weights.h"

namespace hearth::model {

class KvCache {
 public:
  // Errors (resource_exhausted) when the cache would need more than limit_bytes.
  static Result<std::unique_ptr<KvCache>> create(const HParams& hp, int64_t n_ctx, int n_seq, kernels::KvType type,
                                                 uint64_t limit_bytes);
  ~KvCache();

  static uint64_t bytes_needed(const HParams& hp, int64_t n_ctx, int n_seq, kernels::KvType type);

  void* k(int64_t layer, int seq) { return at(0, layer, seq); }
  void* v(int64_t layer, int seq) { return at(1, layer, seq); }
  int64_t n_ctx() const { return n_ctx_; }
  int n_seq() const { return n_seq_; }
  int64_t row_elems() const { return row_elems_; }
  kernels::KvType type() const { return type_; }
  uint64_t bytes() const { return bytes_; }

  // Copies positions [0, n) of sequence src to sequence dst (prefix sharing).
  void copy_prefix(int src, int dst, int64_t n);

 private:
  KvCache() = default;
  void* at(int which, int64_t layer, int seq);
  std::byte* data_ = nullptr;
  uint64_t bytes_ = 0;
  int64_t n_layer_ = 0, n_ctx_ = 0, row_elems_ = 0;
  int n_seq_ = 0;
  size_t elem_bytes_ = 4;
  kernels::KvType type_ = kernels::KvType::kF32;
};

}  // namespace hearth::model
