// Structured pruning of a llama model by activation statistics: the FFN neurons that matter
// least (mean |silu(gate) * up| on calibration text times the norm of their ffn_down column) are
// removed from every layer, and optionally the whole layers that change the residual stream
// least (mean ||x_out - x_in|| / ||x_in||). The result is a smaller standard llama model.
// The activation statistic may instead come from outside (`hearth prune --imatrix`: the
// root mean square of ffn_down's input, from an importance matrix), with no calibration pass
// unless layers are dropped.
// References: Molchanov et al. 2017 (importance by activation x weight), Gromov et al. 2024
// (dropping the layers whose output is closest to their input).
#pragma once

#include <cstdint>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/train/base_model.h"

namespace hearth::train {

struct PruneOptions {
  double ffn_frac = 0.3;    // share of FFN neurons removed per layer
  int64_t drop_layers = 0;  // whole layers removed
  int64_t seq_len = 128;
  int64_t max_windows = 32;  // calibration and evaluation windows
  // [n_layer][n_ff]: each FFN neuron's activation magnitude, used instead of the measured
  // mean |silu(gate) * up| when not empty (e.g. sqrt(in_sum2 / count) of an imatrix).
  std::vector<double> ffn_activation;
};

struct PruneResult {
  BaseModel model;
  std::vector<int64_t> dropped_layers;
  double ppl_before = 0.0, ppl_after = 0.0;  // on eval_tokens
};

Result<PruneResult> prune_llama(const BaseModel& base, const std::vector<int32_t>& calib_tokens,
                                const std::vector<int32_t>& eval_tokens, const PruneOptions& opts, int n_threads);

}  // namespace hearth::train
