// Importance-matrix collection over the forward pass (see imatrix_collector.h).
#include "hearth/quantize/imatrix_collector.h"

#include <algorithm>
#include <string_view>
#include <vector>

namespace hearth::quantize {
namespace {

// Finds the weight tensor that a matmul's weight view points into (by address: the model's
// views point into the mapped file, one expert's matrix at a time for 3-D weights).
class WeightIndex {
 public:
  struct Weight {
    const std::byte* begin;
    const std::byte* end;
    std::string_view name;
    uint64_t matrix_bytes;  // bytes of one ne[0] x ne[1] matrix
    int64_t n_mat;
  };

  explicit WeightIndex(const gguf::GgufFile& f) {
    for (const gguf::TensorInfo& t : f.tensors()) {
      if (t.n_dims < 2 || t.data.empty()) continue;
      const uint64_t n_mat = t.ne[2] * t.ne[3];
      weights_.push_back(
          {t.data.data(), t.data.data() + t.data.size(), t.name, t.n_bytes / n_mat, static_cast<int64_t>(n_mat)});
    }
    std::sort(weights_.begin(), weights_.end(), [](const Weight& a, const Weight& b) { return a.begin < b.begin; });
  }

  const Weight* find(const std::byte* p) const {
    auto it = std::upper_bound(weights_.begin(), weights_.end(), p,
                               [](const std::byte* q, const Weight& w) { return q < w.begin; });
    if (it == weights_.begin()) return nullptr;
    --it;
    return p < it->end ? &*it : nullptr;
  }

 private:
  std::vector<Weight> weights_;
};

}  // namespace

Result<ImatrixRun> compute_imatrix(model::Context& ctx, std::span<const int32_t> tokens, const ImatrixParams& p,
                                   const eval::PerplexityCallbacks& cb) {
  ImatrixRun run;
  const WeightIndex index(ctx.model().gguf());
  Status first_error;
  ctx.set_matmul_observer([&](const model::TensorView& w, const float* x, int64_t x_stride, int64_t n_tok) {
    if (!first_error.ok()) return;
    const WeightIndex::Weight* wt = index.find(w.data);
    if (wt == nullptr) return;
    const bool in_layers = wt->name.substr(0, 4) == "blk.";
    if (!in_layers && !(p.process_output && wt->name == "output.weight")) return;
    if (wt->n_mat == 1 && n_tok < 16) return;  // as the ecosystem: small batches say little
    const int64_t mat = static_cast<int64_t>(static_cast<uint64_t>(w.data - wt->begin) / wt->matrix_bytes);
    Status s = run.imatrix.accumulate(wt->name, mat, wt->n_mat, w.ne[0], x, x_stride, n_tok);
    if (!s.ok()) first_error = std::move(s);
  });
  eval::PerplexityParams pp;
  pp.n_ctx = p.n_ctx;
  pp.max_chunks = p.max_chunks;
  pp.bos = p.bos;
  auto r = eval::compute_perplexity(ctx, tokens, pp, cb);
  ctx.set_matmul_observer(nullptr);
  if (!r.ok()) return std::move(r).status();
  HEARTH_TRY(first_error);
  run.perplexity = std::move(r).value();
  run.imatrix.chunk_count = static_cast<uint32_t>(run.perplexity.n_chunks);
  run.imatrix.chunk_size = static_cast<uint32_t>(p.n_ctx);
  if (!p.dataset.empty()) run.imatrix.datasets.push_back(p.dataset);
  return run;
}

}  // namespace hearth::quantize
