// KvCache: per-layer, per-sequence key and value rows, indexed by position.
// Layout: K rows [layer][seq][row] of k_row_bytes, then V rows the same with v_row_bytes; a row
// is n_head_kv * head_dim elements of the K or V type (kv_type.h: f32, f16, or Q8_0 / Q4_0
// blocks of 32, which need rows of whole blocks). A full layer has n_ctx rows, position p in
// row p. A sliding-window layer (hp.is_swa) has a ring of n_swa + n_batch rows when that is
// fewer, position p in row p % rows: a chunk of up to n_batch tokens then writes its rows
// without overwriting any that its own queries' windows still read, so memory grows with the
// window, not the context. Going back (prefix reuse, a rejected draft) is possible while the
// rows the new position's window reads are still held: up to n_batch positions behind the
// furthest written; Context::reusable_prefix says how much a caller may keep, and decode
// refuses (failed_precondition) a position whose window was overwritten. Memory is reserved lazily (calloc'd pages are only backed when
// written), but its full size is checked against the limit up front.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/model/model_weights.h"

namespace hearth::model {

class KvCache {
 public:
  // The rows of a sliding layer's ring for these shapes: min(n_ctx, n_swa + n_batch), or
  // n_ctx when `full` (the whole context, as a full layer keeps) or the model has no window.
  static int64_t swa_rows(const HParams& hp, int64_t n_ctx, int64_t n_batch, bool full = false);

  // Errors: invalid_argument when a quantized type does not fit the model's rows (a row must be
  // a multiple of 32 elements), resource_exhausted when the cache would need more than limit_bytes.
  // n_batch: the most tokens of one sequence in a forward chunk (sizes the sliding layers' rings);
  // swa_full: sliding layers keep every position (no ring; the tests' oracle).
  static Result<std::unique_ptr<KvCache>> create(const HParams& hp, int64_t n_ctx, int n_seq, kernels::KvTypes types,
                                                 uint64_t limit_bytes, int64_t n_batch = 512, bool swa_full = false);
  ~KvCache();

  // The bytes create() allocates for these shapes and types (UINT64_MAX on overflow).
  static uint64_t bytes_needed(const HParams& hp, int64_t n_ctx, int n_seq, kernels::KvTypes types,
                               int64_t n_batch = 512, bool swa_full = false);

  void* k(int64_t layer, int seq) { return at(0, layer, seq); }
  void* v(int64_t layer, int seq) { return at(1, layer, seq); }
  // Rows of layer il (n_ctx, or its ring's size) and the row position pos is stored in.
  int64_t rows(int64_t layer) const { return rows_[static_cast<size_t>(layer)]; }
  int64_t row_of(int64_t layer, int64_t pos) const { return pos % rows(layer); }
  int64_t n_ctx() const { return n_ctx_; }
  int n_seq() const { return n_seq_; }
  int64_t row_elems() const { return row_elems_; }
  kernels::KvTypes types() const { return types_; }
  size_t k_row_bytes() const { return row_bytes_[0]; }
  size_t v_row_bytes() const { return row_bytes_[1]; }
  uint64_t bytes() const { return bytes_; }
  bool has_ring() const { return ring_ > 0; }

  // The positions a sequence's rings hold: [lo, hi] (empty when hi < lo). Writing position p
  // overwrites p - ring; writing below lo leaves only p (the older rows are gone).
  struct RingSpan {
    int64_t lo = 0, hi = -1;
  };
  // Whether a token at `pos` of a sequence whose rings hold `s` finds the rows its window
  // (n_swa positions, itself included) needs: every earlier one it sees must still be there.
  static bool window_held(const RingSpan& s, int64_t pos, int64_t n_swa);
  // s after position pos is written into rings of `ring` rows.
  static RingSpan advance(RingSpan s, int64_t pos, int64_t ring);
  int64_t ring() const { return ring_; }
  const std::vector<RingSpan>& spans() const { return spans_; }
  void set_spans(std::vector<RingSpan> s) { spans_ = std::move(s); }

  // Copies positions [0, n) of sequence src to sequence dst (prefix sharing): n rows of each
  // full layer, and of each ring the rows that hold positions below n.
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
  std::vector<int64_t> rows_;          // [n_layer] rows per sequence
  std::vector<size_t> layer_off_[2];   // [n_layer] byte offset of each layer's K / V rows
  int64_t ring_ = 0;                   // rows of the sliding layers' rings; 0: no ring
  std::vector<RingSpan> spans_;        // [n_seq]
};

}  // namespace hearth::model
