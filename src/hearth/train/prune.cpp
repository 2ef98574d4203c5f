#include "hearth/train/prune.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

#include "hearth/train/llama_graph.h"

namespace hearth::train {
namespace {

// Windows [start, start + len + 1) over the first max_windows windows of `tokens`.
int64_t n_windows(const std::vector<int32_t>& tokens, int64_t len, int64_t max_windows) {
  return std::min<int64_t>(max_windows, (static_cast<int64_t>(tokens.size()) - 1) / len);
}

double perplexity(const LlamaParams& p, const std::vector<float>& w, const std::vector<int32_t>& tokens, int64_t len,
                  int64_t max_windows, Ops& ops) {
  LlamaGraph g(p, ops);
  const int64_t n = n_windows(tokens, len, max_windows);
  double loss = 0.0;
  for (int64_t i = 0; i < n; ++i) loss += g.step(w.data(), tokens.data() + i * len, 1, len, nullptr, 0.0f);
  return std::exp(loss / static_cast<double>(n * len));
}

}  // namespace

Result<PruneResult> prune_llama(const BaseModel& base, const std::vector<int32_t>& calib,
                                const std::vector<int32_t>& eval, const PruneOptions& o, int n_threads) {
  const LlamaShape& s = base.shape;
  const int64_t len = std::min(o.seq_len, s.n_ctx);
  if (!(o.ffn_frac >= 0.0 && o.ffn_frac < 1.0)) {
    return make_error(ErrorCode::kInvalidArgument, "--ffn must be in [0, 1)");
  }
  if (o.drop_layers < 0 || o.drop_layers >= s.n_layer) {
    return make_error(ErrorCode::kInvalidArgument, "--layers {} must leave at least one of the model's {} layers",
                      o.drop_layers, s.n_layer);
  }
  const bool given = !o.ffn_activation.empty();
  if (given && o.ffn_activation.size() != static_cast<size_t>(s.n_layer * s.n_ff)) {
    return make_error(ErrorCode::kInvalidArgument, "{} FFN activation statistics for {} layers of {} neurons",
                      o.ffn_activation.size(), s.n_layer, s.n_ff);
  }
  const bool measure = !given || o.drop_layers > 0;  // the layer changes need the calibration pass
  if ((measure && n_windows(calib, len, o.max_windows) < 1) || n_windows(eval, len, o.max_windows) < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the calibration text is too short: it needs at least two windows of {} tokens", len + 1);
  }
  for (const auto* v : {&calib, &eval}) {
    for (int32_t t : *v) {
      if (t < 0 || t >= s.n_vocab) return make_error(ErrorCode::kInvalidArgument, "token outside the vocabulary");
    }
  }
  ThreadPool pool(std::max(1, n_threads));
  Ops ops(kernels::active_kernels(), pool);
  const LlamaParams p(s);
  const int64_t ne = s.n_embd, ff = s.n_ff;

  // Statistics over the calibration windows (the neurons' unless given).
  std::vector<double> act(static_cast<size_t>(s.n_layer * ff), 0.0), change(static_cast<size_t>(s.n_layer), 0.0);
  if (given) act = o.ffn_activation;
  if (measure) {
    LlamaGraph g(p, ops);
    const int64_t n = n_windows(calib, len, o.max_windows);
    for (int64_t i = 0; i < n; ++i) {
      g.forward(base.w.data(), calib.data() + i * len, 1, len);
      for (int64_t il = 0; il < s.n_layer; ++il) {
        const std::vector<float>& h = g.ffn_activation(il);
        for (int64_t t = 0; !given && t < len; ++t) {
          for (int64_t j = 0; j < ff; ++j) act[static_cast<size_t>(il * ff + j)] += std::fabs(h[t * ff + j]);
        }
        const std::vector<float>& x0 = g.layer_input(il);
        const std::vector<float>& x1 = g.layer_input(il + 1);
        for (int64_t t = 0; t < len; ++t) {
          double d = 0.0, base_norm = 0.0;
          for (int64_t k = 0; k < ne; ++k) {
            const double a = x0[t * ne + k], b = x1[t * ne + k];
            d += (b - a) * (b - a);
            base_norm += a * a;
          }
          change[static_cast<size_t>(il)] += std::sqrt(d / std::max(base_norm, 1e-30));
        }
      }
    }
  }

  PruneResult r;
  // Layers to drop: the smallest relative change (ties: the later layer).
  std::vector<int64_t> order(static_cast<size_t>(s.n_layer));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return change[a] < change[b]; });
  r.dropped_layers.assign(order.begin(), order.begin() + o.drop_layers);
  std::sort(r.dropped_layers.begin(), r.dropped_layers.end());

  LlamaShape ns = s;
  ns.n_layer = s.n_layer - o.drop_layers;
  ns.n_ff = std::max<int64_t>(1, ff - std::llround(o.ffn_frac * static_cast<double>(ff)));
  const LlamaParams np(ns);
  r.model.shape = ns;
  r.model.w.assign(np.n_params(), 0.0f);
  auto copy = [&](size_t from, size_t to, size_t count) {
    std::memcpy(r.model.w.data() + to, base.w.data() + from, count * sizeof(float));
  };
  copy(p.token_embd(), np.token_embd(), static_cast<size_t>(ne * s.n_vocab));
  copy(p.output_norm(), np.output_norm(), static_cast<size_t>(ne));
  if (!s.tied_output) copy(p.output(), np.output(), static_cast<size_t>(ne * s.n_vocab));
  int64_t out_il = 0;
  for (int64_t il = 0; il < s.n_layer; ++il) {
    if (std::binary_search(r.dropped_layers.begin(), r.dropped_layers.end(), il)) continue;
    const LayerSlots& a = p.layer(il);
    const LayerSlots& b = np.layer(out_il++);
    const int64_t nkv = s.n_embd_kv();
    copy(a.attn_norm, b.attn_norm, ne);
    copy(a.ffn_norm, b.ffn_norm, ne);
    copy(a.wq, b.wq, ne * ne);
    copy(a.wk, b.wk, nkv * ne);
    copy(a.wv, b.wv, nkv * ne);
    copy(a.wo, b.wo, ne * ne);
    // Neuron j's importance: mean |h_j| (or the given magnitude) times the norm of ffn_down's
    // column j.
    std::vector<std::pair<double, int64_t>> score(static_cast<size_t>(ff));
    for (int64_t j = 0; j < ff; ++j) {
      double col = 0.0;
      for (int64_t k = 0; k < ne; ++k) {
        const double v = base.w[a.ffn_down + k * ff + j];
        col += v * v;
      }
      score[static_cast<size_t>(j)] = {act[static_cast<size_t>(il * ff + j)] * std::sqrt(col), j};
    }
    std::stable_sort(score.begin(), score.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    std::vector<int64_t> keep;
    for (int64_t j = 0; j < ns.n_ff; ++j) keep.push_back(score[static_cast<size_t>(j)].second);
    std::sort(keep.begin(), keep.end());
    for (size_t j = 0; j < keep.size(); ++j) {
      copy(a.ffn_gate + keep[j] * ne, b.ffn_gate + j * ne, ne);
      copy(a.ffn_up + keep[j] * ne, b.ffn_up + j * ne, ne);
      for (int64_t k = 0; k < ne; ++k) {
        r.model.w[b.ffn_down + k * ns.n_ff + j] = base.w[a.ffn_down + k * ff + keep[j]];
      }
    }
  }
  r.ppl_before = perplexity(p, base.w, eval, len, o.max_windows, ops);
  r.ppl_after = perplexity(np, r.model.w, eval, len, o.max_windows, ops);
  return r;
}

}  // namespace hearth::train
