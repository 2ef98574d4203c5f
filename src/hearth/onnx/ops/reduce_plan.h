// The reduction layout shared by the Reduce*, ArgMax/ArgMin, Softmax and TopK ops: with size-1
// dims dropped and neighbouring dims of the same kind merged, a reduction over one run of
// axes is [A, R, B] — out[a, b] combines in[a, r, b] over r — where B == 1 is a contiguous row
// and B > 1 accumulates whole rows of B (both vectorize). Reductions over several separated
// runs of axes (rare) go through the reference loop.
#pragma once

#include <cstdint>
#include <vector>

#include "hearth/onnx/tensor.h"

namespace hearth::onnx {

struct ReducePlan {
  bool single_run = true;  // the reduced axes form one [A, R, B] block
  int64_t a = 1, r = 1, b = 1;
  int64_t count = 1;  // elements combined into each output (the product of the reduced dims)
};

inline ReducePlan plan_reduce(const Shape& shape, const std::vector<bool>& reduced) {
  ReducePlan p;
  std::vector<std::pair<int64_t, bool>> runs;  // (size, reduced)
  for (size_t d = 0; d < shape.size(); ++d) {
    if (reduced[d]) p.count *= shape[d];
    if (shape[d] == 1) continue;
    if (!runs.empty() && runs.back().second == reduced[d]) runs.back().first *= shape[d];
    else runs.push_back({shape[d], reduced[d]});
  }
  int n_reduced = 0;
  for (const auto& run : runs) n_reduced += run.second ? 1 : 0;
  p.single_run = n_reduced <= 1;
  if (!p.single_run) return p;
  bool after = false;
  for (const auto& [size, red] : runs) {
    if (red) {
      p.r = size;
      after = true;
    } else if (after) {
      p.b *= size;
    } else {
      p.a *= size;
    }
  }
  return p;
}

// The output element (row-major over the kept dims) that input element `flat` reduces into.
inline int64_t reduced_index(const Shape& shape, const std::vector<bool>& reduced, int64_t flat) {
  int64_t out = 0, stride = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    const int64_t i = flat % shape[d];
    flat /= shape[d];
    if (!reduced[d]) {
      out += i * stride;
      stride *= shape[d];
    }
  }
  return out;
}

// The reference reduction for any axes: every input element stepped into its output element,
// in input order. R<T> supplies init(), step(acc, x) and finish(acc, count).
template <template <typename> class R, typename T>
void reduce_ref(const T* in, const Shape& shape, const std::vector<bool>& reduced, T* out) {
  int64_t numel = 1, n_out = 1, count = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    numel *= shape[d];
    (reduced[d] ? count : n_out) *= shape[d];
  }
  for (int64_t j = 0; j < n_out; ++j) out[j] = R<T>::init();
  for (int64_t i = 0; i < numel; ++i) {
    T& acc = out[reduced_index(shape, reduced, i)];
    acc = R<T>::step(acc, in[i]);
  }
  for (int64_t j = 0; j < n_out; ++j) out[j] = R<T>::finish(out[j], count);
}

}  // namespace hearth::onnx
