// `hearth bench MODEL.onnx`: latency per inference and throughput on hearth's ONNX executor,
// at 1 thread and at N, on inputs from .npy files or drawn (seeded) from the declared shapes.
#pragma once

#include <string>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::cli {

struct OnnxBenchOptions {
  std::string model;
  std::vector<std::string> inputs;  // NAME=FILE.npy
  std::vector<std::string> shapes;  // NAME=1x3x640x640 (for dynamic dims of drawn inputs)
  int threads = 0;                  // N (0: every core); 1 is always measured too
  int reps = 20;
  int warmup = 3;
  bool json = false;
  // After the timed runs, the same runs again with per-node timing (SessionOptions::profile):
  // time per op type and the slowest nodes, per thread count.
  bool profile = false;
};

Status run_onnx_bench(const OnnxBenchOptions& o);

}  // namespace hearth::cli
