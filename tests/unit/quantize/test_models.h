// Helpers for the quantize tests: run a model over text windows and collect its scored logits.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "hearth/core/atomic_file.h"
#include "hearth/eval/perplexity.h"
#include "hearth/model/context.h"
#include "hearth/model/model.h"
#include "hearth/tokenizer/tokenizer.h"

namespace hearth::quantize::testing {

struct Scored {
  std::vector<float> logits;  // [positions][n_vocab]
  std::vector<int32_t> targets;
  eval::PerplexityResult ppl;
  int64_t n_vocab = 0;
};

inline std::vector<int32_t> tokenize_file(const model::Model& m, const std::filesystem::path& text) {
  auto tok = tokenizer::Tokenizer::from_gguf(m.gguf());
  auto s = read_file(text.string());
  if (!tok.ok() || !s.ok()) return {};
  return (*tok)->encode(*s, true, false);
}

// Evaluates `chunks` windows of n_ctx tokens, as the perplexity tool does.
inline Scored score(const std::filesystem::path& model_path, const std::vector<int32_t>& tokens, int64_t n_ctx,
                    int64_t chunks, int threads = 2) {
  Scored out;
  auto m = model::Model::load(model_path.string());
  if (!m.ok()) {
    ADD_FAILURE() << m.status().to_string();
    return out;
  }
  model::ContextParams cp;
  cp.n_ctx = n_ctx;
  cp.n_batch = n_ctx;
  cp.n_threads = threads;
  auto ctx = model::Context::create(**m, cp);
  if (!ctx.ok()) {
    ADD_FAILURE() << ctx.status().to_string();
    return out;
  }
  out.n_vocab = (*m)->hparams().n_vocab;
  eval::PerplexityParams pp;
  pp.n_ctx = n_ctx;
  pp.max_chunks = chunks;
  pp.bos = 1;
  eval::PerplexityCallbacks cb;
  cb.window_logits = [&](std::span<const float> l, std::span<const int32_t> t) {
    out.logits.insert(out.logits.end(), l.begin(), l.end());
    out.targets.insert(out.targets.end(), t.begin(), t.end());
    return ok_status();
  };
  auto r = eval::compute_perplexity(**ctx, tokens, pp, cb);
  if (!r.ok()) {
    ADD_FAILURE() << r.status().to_string();
    return out;
  }
  out.ppl = *r;
  return out;
}

}  // namespace hearth::quantize::testing
