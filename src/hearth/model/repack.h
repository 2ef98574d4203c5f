// Weight repacking at load: the matmul weights a kernel table reads faster in its own layout
// (KernelTable::pack) are copied once into that layout, on hearth's ThreadPool, and the mapped
// originals' pages are released. Model::load calls this; HEARTH_REPACK=0 turns it off.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/model/model_weights.h"

namespace hearth::model {

struct PackedUnmap {
  size_t bytes = 0;
  void operator()(std::byte* p) const;
};

// The packed copies of one model's weights for one kernel table: an anonymous mapping that
// every repacked TensorView's `packed` points into (transparent huge pages where the kernel
// allows: decode streams all of it per token, and 4 KiB pages would miss the TLB throughout).
class PackedWeights {
 public:
  // Bytes of the packed copies (0 when none), and the table they are for ("" when none).
  uint64_t bytes() const { return bytes_; }
  std::string_view isa() const { return isa_; }
  // Stored bytes of weights the table could pack but that were left as stored (budget).
  uint64_t kept_stored_bytes() const { return kept_stored_bytes_; }
  // The packed size of the weight whose stored data starts at `data`; 0 if it was not repacked.
  uint64_t packed_size_of(const std::byte* data) const;

 private:
  friend PackedWeights repack_weights(ModelWeights& w, const kernels::KernelTable& kt, uint64_t growth_budget,
                                      ThreadPool& pool, std::string_view file_name);
  std::unique_ptr<std::byte, PackedUnmap> mem_;
  uint64_t bytes_ = 0;
  uint64_t kept_stored_bytes_ = 0;
  std::vector<std::pair<const std::byte*, uint64_t>> sizes_;  // stored data -> packed bytes
  std::string_view isa_;
};

// Repacks the matmul weights of `w` that `kt` packs (see KernelTable::pack): every one whose
// packed size is about its stored size, and those that grow while the total growth stays
// within growth_budget; the copies are made on `pool`'s threads, one weight at a time each.
// Points each repacked view's `packed` at its copy. Weights that already have a packed copy
// are left alone. `file_name` is for the log. A table without pack gives an empty result.
PackedWeights repack_weights(ModelWeights& w, const kernels::KernelTable& kt, uint64_t growth_budget, ThreadPool& pool,
                             std::string_view file_name);

}  // namespace hearth::model
