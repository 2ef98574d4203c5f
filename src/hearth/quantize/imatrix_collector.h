// Collects an importance matrix by running a model over text: every weight matmul's input
// rows are accumulated (Context's matmul observer) while the text is evaluated in the same
// non-overlapping windows as the perplexity tool, as the ecosystem's imatrix tool does: only
// weights inside the layers ("blk.*"; "output.weight" on request), 2-D weights only for
// batches of at least 16 rows, expert matrices for every routed token.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "hearth/core/status.h"
#include "hearth/eval/perplexity.h"
#include "hearth/model/context.h"
#include "hearth/quantize/imatrix.h"

namespace hearth::quantize {

struct ImatrixParams {
  int64_t n_ctx = 512;
  int64_t max_chunks = 0;       // 0: every window of the text
  int32_t bos = 1;              // replaces the first token of each window (-1: keep)
  bool process_output = false;  // also collect output.weight
  std::string dataset;          // recorded in imatrix.datasets
};

struct ImatrixRun {
  Imatrix imatrix;
  eval::PerplexityResult perplexity;  // of the windows evaluated
};

// Runs `tokens` through ctx (whose observer it sets and clears again).
Result<ImatrixRun> compute_imatrix(model::Context& ctx, std::span<const int32_t> tokens, const ImatrixParams& params,
                                   const eval::PerplexityCallbacks& callbacks = {});

}  // namespace hearth::quantize
