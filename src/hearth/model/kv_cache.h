// KvCache: per-layer, per-sequence key and value rows, indexed by position.
// Layout: K rows [layer][seq][pos] of k_row_bytes, then V rows the same with v_row_bytes; a row
// is n_head_kv * head_dim elements of the K or V type (kv_type.h: f32, f16, or Q8_0 / Q4_0
// blocks of 32, which need rows of whole blocks). Memory is reserved lazily (calloc'd pages
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
  // Errors: invalid_argument when a quantized type does not fit the model's rows (a row must be
  // a multiple of 32 elements), resource_exhausted when the cache would need more than limit_bytes.
  static Result<std::unique_ptr<KvCache>> create(const HParams& hp, int64_t n_ctx, int n_seq, kernels::KvTypes types,
                                                 uint64_t limit_bytes);
  ~KvCache();

  // The bytes create() allocates for these shapes and types (UINT64_MAX on overflow).
  static uint64_t bytes_needed(const HParams& hp, int64_t n_ctx, int n_seq, kernels::KvTypes types);

  void* k(int64_t layer, int seq) { return at(0, layer, seq); }
  void* v(int64_t layer, int seq) { return at(1, layer, seq); }
  int64_t n_ctx() const { return n_ctx_; }
  int n_seq() const { return n_seq_; }
  int64_t row_elems() const { return row_elems_; }
  kernels::KvTypes types() const { return types_; }
  size_t k_row_bytes() const { return row_bytes_[0]; }
  size_t v_row_bytes() const { return row_bytes_[1]; }
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
  size_t row_bytes_[2] = {0, 0};  // K, V
  kernels::KvTypes types_;
};

}  // namespace hearth::model
