// The ecosystem's KL-divergence base file (see logits_file.h).
#include "hearth/eval/logits_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "hearth/core/checked_math.h"

namespace hearth::eval {

void encode_log_probs(std::span<const float> logits, std::span<uint16_t> record) {
  const size_t n = logits.size();
  float max_logit = logits[0], min_logit = logits[0];
  for (size_t i = 1; i < n; ++i) {
    max_logit = std::max(max_logit, logits[i]);
    min_logit = std::min(min_logit, logits[i]);
  }
  // Log-probabilities more than 16 below the top are negligible (e^-16 ~ 1e-7).
  min_logit = std::max(min_logit, max_logit - 16);
  double sum_exp = 0.0;
  for (size_t i = 0; i < n; ++i) sum_exp += std::exp(logits[i] - max_logit);
  const float log_sum_exp = static_cast<float>(std::log(sum_exp));
  const float min_log_prob = min_logit - max_logit - log_sum_exp;
  const float scale = (max_logit - min_logit) / 65535.f;
  std::memcpy(record.data(), &scale, sizeof scale);
  std::memcpy(record.data() + 2, &min_log_prob, sizeof min_log_prob);
  uint16_t* q = record.data() + 4;
  std::fill(q, record.data() + record.size(), uint16_t{0});
  if (scale > 0) {
    const float inv_scale = 1 / scale;
    for (size_t i = 0; i < n; ++i) {
      // Round to nearest, ties to even (the default rounding mode), as the ecosystem does.
      q[i] = logits[i] > min_logit ? static_cast<uint16_t>(std::nearbyint(inv_scale * (logits[i] - min_logit))) : 0;
    }
  }
}

Result<std::unique_ptr<LogitsFileWriter>> LogitsFileWriter::create(const std::string& path, int32_t n_ctx,
                                                                   int32_t n_vocab, int32_t n_chunk,
                                                                   std::span<const int32_t> tokens) {
  if (n_ctx < 4 || n_vocab < 1 || n_chunk < 1 ||
      static_cast<uint64_t>(tokens.size()) < static_cast<uint64_t>(n_chunk) * static_cast<uint64_t>(n_ctx)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: bad logits file shape (n_ctx {}, n_vocab {}, {} windows, {} tokens)", path, n_ctx, n_vocab,
                      n_chunk, tokens.size());
  }
  auto w = std::unique_ptr<LogitsFileWriter>(new LogitsFileWriter());
  HEARTH_ASSIGN_OR_RETURN(w->out_, AtomicFileWriter::create(path));
  w->n_ctx_ = n_ctx;
  w->n_vocab_ = n_vocab;
  w->n_chunk_ = n_chunk;
  const int32_t header[3] = {n_ctx, n_vocab, n_chunk};
  HEARTH_TRY(w->out_.write(std::as_bytes(std::span<const char>(kLogitsMagic, 8))));
  HEARTH_TRY(w->out_.write(std::as_bytes(std::span<const int32_t>(header, 3))));
  HEARTH_TRY(w->out_.write(std::as_bytes(tokens.first(static_cast<size_t>(n_chunk) * static_cast<size_t>(n_ctx)))));
  return w;
}

Status LogitsFileWriter::add_window(std::span<const float> logits) {
  const int64_t rows = scored_rows(n_ctx_);
  if (written_ >= n_chunk_ || static_cast<int64_t>(logits.size()) != rows * n_vocab_) {
    return make_error(ErrorCode::kInvalidArgument, "{}: unexpected window {} with {} logits", out_.target(), written_,
                      logits.size());
  }
  const int64_t nv = logits_record_values(n_vocab_);
  records_.resize(static_cast<size_t>(rows * nv));
  for (int64_t r = 0; r < rows; ++r) {
    encode_log_probs(logits.subspan(static_cast<size_t>(r * n_vocab_), static_cast<size_t>(n_vocab_)),
                     std::span<uint16_t>(records_).subspan(static_cast<size_t>(r * nv), static_cast<size_t>(nv)));
  }
  HEARTH_TRY(out_.write(std::as_bytes(std::span<const uint16_t>(records_))));
  ++written_;
  return ok_status();
}

Status LogitsFileWriter::commit() {
  if (written_ != n_chunk_) {
    return make_error(ErrorCode::kFailedPrecondition, "{}: only {} of {} windows were written", out_.target(), written_,
                      n_chunk_);
  }
  return out_.commit();
}

Result<std::unique_ptr<LogitsFile>> LogitsFile::open(const std::string& path) {
  auto f = std::unique_ptr<LogitsFile>(new LogitsFile());
  HEARTH_ASSIGN_OR_RETURN(f->map_, MappedFile::open(path));
  const std::span<const std::byte> b = f->map_.bytes();
  if (b.size() < 20 || std::memcmp(b.data(), kLogitsMagic, 8) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: not a logits file (expected the \"_logits_\" header of `hearth perplexity --save-logits` or "
                      "`llama-perplexity --kl-divergence-base`)",
                      path);
  }
  int32_t h[3];
  std::memcpy(h, b.data() + 8, sizeof h);
  f->n_ctx_ = h[0];
  f->n_vocab_ = h[1];
  f->n_chunk_ = h[2];
  if (f->n_ctx_ < 4 || f->n_vocab_ < 1 || f->n_chunk_ < 1) {
    return make_error(ErrorCode::kInvalidArgument, "{}: bad header (n_ctx {}, n_vocab {}, n_chunk {})", path, h[0],
                      h[1], h[2]);
  }
  // Every size below is checked for overflow; the file must hold exactly what it declares.
  auto n_tok = checked_mul<uint64_t>(static_cast<uint64_t>(f->n_chunk_), static_cast<uint64_t>(f->n_ctx_));
  auto tok_bytes = n_tok ? checked_mul<uint64_t>(*n_tok, 4) : std::nullopt;
  auto n_rec = checked_mul<uint64_t>(static_cast<uint64_t>(f->n_chunk_), static_cast<uint64_t>(scored_rows(f->n_ctx_)));
  auto rec_bytes = n_rec ? checked_mul<uint64_t>(*n_rec, static_cast<uint64_t>(logits_record_values(f->n_vocab_)) * 2)
                         : std::nullopt;
  auto total = tok_bytes && rec_bytes ? checked_add<uint64_t>(20 + *tok_bytes, *rec_bytes) : std::nullopt;
  if (!total || *total != b.size()) {
    return make_error(ErrorCode::kDataLoss,
                      "{}: the file has {} bytes, but its header ({} windows of {} tokens, vocabulary {}) needs {}",
                      path, b.size(), f->n_chunk_, f->n_ctx_, f->n_vocab_,
                      total ? fmt::to_string(*total) : std::string("more than 2^64"));
  }
  f->tokens_.resize(static_cast<size_t>(*n_tok));
  std::memcpy(f->tokens_.data(), b.data() + 20, static_cast<size_t>(*tok_bytes));
  f->records_ = reinterpret_cast<const uint16_t*>(b.data() + 20 + *tok_bytes);
  return f;
}

const uint16_t* LogitsFile::record(int32_t chunk, int64_t row) const {
  const int64_t idx = static_cast<int64_t>(chunk) * scored_rows(n_ctx_) + row;
  return records_ + idx * logits_record_values(n_vocab_);
}

}  // namespace hearth::eval
