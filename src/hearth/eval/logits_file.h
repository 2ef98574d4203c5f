// The logits file that `hearth perplexity --save-logits` writes and `--kl-base` reads: the
// format of the ecosystem's `llama-perplexity --kl-divergence-base`, so files interchange.
// Layout (little-endian):
//   char[8] "_logits_"; int32 n_ctx; int32 n_vocab; int32 n_chunk;
//   int32 tokens[n_chunk * n_ctx]            (the text's tokens, before BOS replacement)
//   then per window, for each scored position (n_ctx/2 .. n_ctx-2, i.e. n_ctx-1-n_ctx/2 rows)
//   one record of nv = 2*((n_vocab+1)/2) + 4 uint16 values:
//     float scale; float min_log_prob;        (the first 4 uint16)
//     uint16 q[n_vocab] (+1 padding if odd)   log p_i = scale * q_i + min_log_prob
//   Log-probabilities below max - 16 are stored as q = 0 (treated as negligible).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hearth/core/atomic_file.h"
#include "hearth/core/mapped_file.h"
#include "hearth/core/status.h"

namespace hearth::eval {

inline constexpr char kLogitsMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};

// uint16 values per record.
inline int64_t logits_record_values(int64_t n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }
// Scored rows per window.
inline int64_t scored_rows(int64_t n_ctx) { return n_ctx - 1 - n_ctx / 2; }

// Encodes one row of logits into a record (record.size() == logits_record_values(n_vocab)).
void encode_log_probs(std::span<const float> logits, std::span<uint16_t> record);

class LogitsFileWriter {
 public:
  // Starts the file: header and the first n_chunk * n_ctx tokens.
  static Result<std::unique_ptr<LogitsFileWriter>> create(const std::string& path, int32_t n_ctx, int32_t n_vocab,
                                                          int32_t n_chunk, std::span<const int32_t> tokens);
  // One window's scored rows (scored_rows(n_ctx) x n_vocab floats).
  Status add_window(std::span<const float> logits);
  // Checks that every window was written, then makes the file visible (atomic rename).
  Status commit();

 private:
  AtomicFileWriter out_;
  int32_t n_ctx_ = 0, n_vocab_ = 0, n_chunk_ = 0, written_ = 0;
  std::vector<uint16_t> records_;
};

// A mapped, validated logits file.
class LogitsFile {
 public:
  static Result<std::unique_ptr<LogitsFile>> open(const std::string& path);
  int32_t n_ctx() const { return n_ctx_; }
  int32_t n_vocab() const { return n_vocab_; }
  int32_t n_chunk() const { return n_chunk_; }
  std::span<const int32_t> tokens() const { return tokens_; }
  // Record `row` (0 .. scored_rows-1) of window `chunk`: logits_record_values(n_vocab) values.
  const uint16_t* record(int32_t chunk, int64_t row) const;

 private:
  MappedFile map_;
  int32_t n_ctx_ = 0, n_vocab_ = 0, n_chunk_ = 0;
  std::vector<int32_t> tokens_;
  const uint16_t* records_ = nullptr;  // into the mapping (the header keeps them 4-byte aligned)
};

}  // namespace hearth::eval
