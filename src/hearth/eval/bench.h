// Benchmarks: prompt processing (one batched pass of n_prompt tokens) and generation (n_gen
// single-token steps) on a loaded model, repeated; plus the machine's memory read bandwidth,
// to show how close decode is to the bandwidth bound.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/model/model.h"

namespace hearth::eval {

struct BenchParams {
  int64_t n_prompt = 512;
  int64_t n_gen = 128;
  // Context already filled when decode starts (<= n_prompt): 0 measures decode from an empty
  // context as llama-bench's tg does; n_prompt continues after the prompt.
  int64_t depth = 0;
  int reps = 3;
  int n_threads = 0;
  kernels::KvTypes kv_type = kernels::KvType::kF16;  // K and V cache types
  // Speculative decoding, measured after the plain decode of each rep: the same number of
  // tokens generated after the prompt with guesses from `draft` (a model with the same
  // vocabulary) or from prompt lookup (`draft_ngram`), at most `draft_max` per pass.
  const model::Model* draft = nullptr;
  bool draft_ngram = false;
  int draft_max = 8;
};

struct BenchResult {
  std::vector<double> prefill_tok_s, decode_tok_s;
  double prefill_mean = 0, prefill_sd = 0, decode_mean = 0, decode_sd = 0;
  uint64_t decode_bytes_per_token = 0;  // weight bytes streamed per generated token
  double decode_gb_s = 0;
  std::string isa;
  int threads = 0;
  uint64_t logits_checksum = 0;  // FNV-1a over the greedy token ids of the first rep
  // With a drafter: decode speed with drafts, and the guesses checked and kept (all reps).
  std::vector<double> spec_decode_tok_s;
  double spec_decode_mean = 0, spec_decode_sd = 0;
  int64_t draft_proposed = 0, draft_accepted = 0;
};

Result<BenchResult> run_bench(const model::Model& model, const BenchParams& params);

// Read bandwidth of this machine in GB/s with n_threads readers over a buffer of `bytes`.
double measure_read_bandwidth(int n_threads, uint64_t bytes = uint64_t{1} << 30);

}  // namespace hearth::eval
