// Importance matrix (imatrix): for each weight matrix, the per-column sum of squared input
// activations and the number of input rows seen, so that quantization can weight each
// column's error by how strongly it is used. Stored in the GGUF layout that the ecosystem's
// imatrix and quantize tools exchange (llama.cpp tools/imatrix):
//   general.type = "imatrix", imatrix.datasets (string array), imatrix.chunk_count (u32),
//   imatrix.chunk_size (u32); per weight W two F32 tensors, names sorted:
//   "W.in_sum2" [n_cols, n_mat] (sums of x^2) and "W.counts" [1, n_mat] (rows seen);
//   n_mat is the number of experts for a 3-D (MoE) weight, else 1.
// The importance of a column is in_sum2 / count (a matrix that saw no rows gets all ones).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/gguf/gguf.h"

namespace hearth::quantize {

struct ImatrixEntry {
  int64_t n_cols = 0;
  int64_t n_mat = 1;
  std::vector<double> sum2;    // [n_mat][n_cols]
  std::vector<double> counts;  // [n_mat]
};

class Imatrix {
 public:
  std::map<std::string, ImatrixEntry, std::less<>>& entries() { return entries_; }
  const std::map<std::string, ImatrixEntry, std::less<>>& entries() const { return entries_; }
  const ImatrixEntry* find(std::string_view weight_name) const;

  std::vector<std::string> datasets;
  uint32_t chunk_count = 0;
  uint32_t chunk_size = 0;

  // Adds the rows x[0..n_rows) (each n_cols floats, stride floats apart) to matrix `mat` of
  // `weight_name` (created with n_mat matrices on first use). Errors on a shape mismatch.
  Status accumulate(std::string_view weight_name, int64_t mat, int64_t n_mat, int64_t n_cols, const float* x,
                    int64_t stride, int64_t n_rows);

  // Importance weights of matrix `mat`: n_cols values, sum2 / count (ones if count is 0).
  std::vector<float> importance(const ImatrixEntry& e, int64_t mat) const;

  // GGUF serialization (atomic write).
  Status write(const std::string& path) const;
  static Result<Imatrix> from_gguf(const gguf::GgufFile& file);
  static Result<Imatrix> read(const std::string& path);

 private:
  std::map<std::string, ImatrixEntry, std::less<>> entries_;
};

}  // namespace hearth::quantize
