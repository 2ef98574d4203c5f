// Model: a loaded GGUF model — the mapping, its hyper-parameters and weight views.
// Weights stay in their stored types inside the mapping; nothing is copied, except that load()
// lets the active kernel table repack the matmul weights it reads faster in its own layout
// (repack.h; HEARTH_REPACK=0 turns that off), releasing the mapped originals' pages as it goes.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hearth/core/mapped_file.h"
#include "hearth/core/status.h"
#include "hearth/gguf/gguf.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/model/model_weights.h"
#include "hearth/model/repack.h"

namespace hearth::model {

// How to load a model. n_threads: the threads that repack the weights (the command's -t;
// 0: physical cores).
struct LoadOptions {
  int n_threads = 0;
};

class Model {
 public:
  // Loads a GGUF file: parses it, finds its architecture, validates every weight's shape
  // and type against the hyper-parameters. Errors name the file and the problem.
  // `path` is an explicit local file; a store model is loaded from its verified mapping
  // (trust::VerifiedArtifact::weights()), so that the bytes used are the bytes hashed.
  static Result<std::unique_ptr<Model>> load(const std::string& path, const LoadOptions& options = {});
  static Result<std::unique_ptr<Model>> load(std::shared_ptr<const MappedFile> mapping,
                                             const LoadOptions& options = {});
  // How much repacking may grow the weights (bytes): layouts that grow a weight (Q3_K, Q4_1,
  // Q5_x, Q2_K) are used only within it, so that RSS stays within the file size plus ~200 MB of run time.
  static constexpr uint64_t kRepackGrowthBudget = uint64_t{96} << 20;
  // As load(), with repacking for `kernels` (nullptr: no repacking) within growth_budget.
  static Result<std::unique_ptr<Model>> load(const std::string& path, const kernels::KernelTable* kernels,
                                             uint64_t growth_budget = kRepackGrowthBudget,
                                             const LoadOptions& options = {});
  static Result<std::unique_ptr<Model>> load(std::shared_ptr<const MappedFile> mapping,
                                             const kernels::KernelTable* kernels,
                                             uint64_t growth_budget = kRepackGrowthBudget,
                                             const LoadOptions& options = {});

  const HParams& hparams() const { return hp_; }
  const ModelWeights& weights() const { return w_; }
  // The layer's forward function, chosen at load by the architecture (forward.h).
  BlockFn block() const { return block_; }
  const gguf::GgufFile& gguf() const { return file_; }
  const std::string& path() const { return map_->path(); }
  uint64_t file_bytes() const { return map_->size(); }
  // The mapped file the weights are views into.
  const MappedFile& mapping() const { return *map_; }
  // Bytes of weight data (all tensors).
  uint64_t weight_bytes() const;
  // Bytes of repacked weight copies, and the kernel table they are for ("" when none).
  uint64_t packed_bytes() const { return packed_.bytes(); }
  std::string_view packed_isa() const { return packed_.isa(); }
  // Stored bytes of weights the table could pack but that were left as stored (budget).
  uint64_t kept_stored_bytes() const { return packed_.kept_stored_bytes(); }
  // Bytes a matmul reads of this file tensor: its packed copy's size if it was repacked for
  // `isa`, else its stored size.
  uint64_t bytes_read(const gguf::TensorInfo& t, std::string_view isa) const;

  // Repacks the matmul weights that `kernels` packs (see KernelTable::pack): every one whose
  // packed size is about its stored size, and those that grow while the total growth stays
  // within growth_budget. Idempotent per table; a second table replaces nothing (contexts of
  // other tables read the stored form). The copies are made on a ThreadPool of n_threads
  // (0: physical cores); the packed bytes do not depend on it. Defined in repack.cpp.
  void repack(const kernels::KernelTable& kernels, uint64_t growth_budget = kRepackGrowthBudget, int n_threads = 0);

 private:
  std::shared_ptr<const MappedFile> map_;  // outlives file_ and every view into it
  gguf::GgufFile file_;
  HParams hp_;
  ModelWeights w_;
  BlockFn block_ = nullptr;
  PackedWeights packed_;  // the repacked copies w_'s views point into
};

}  // namespace hearth::model
