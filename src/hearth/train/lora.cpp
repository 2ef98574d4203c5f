#include "hearth/train/lora.h"

#include <cmath>
#include <cstring>

#include "hearth/gguf/gguf_writer.h"
#include "hearth/train/gemm.h"

namespace hearth::train {

LoraTrainer::LoraTrainer(BaseModel base, const LoraOptions& opts, int n_threads)
    : opts_(opts),
      params_(base.shape),
      w_(std::move(base.w)),
      pool_(n_threads),
      ops_(kernels::active_kernels(), pool_),
      graph_(params_, ops_),
      data_rng_{opts.seed ^ 0x10BAull} {}

Result<std::unique_ptr<LoraTrainer>> LoraTrainer::create(BaseModel base, const LoraOptions& o,
                                                         std::vector<int32_t> train_tokens,
                                                         std::vector<int32_t> eval_tokens, int n_threads,
                                                         std::vector<uint8_t> train_mask,
                                                         std::vector<uint8_t> eval_mask) {
  if ((!train_mask.empty() && train_mask.size() != train_tokens.size()) ||
      (!eval_mask.empty() && eval_mask.size() != eval_tokens.size())) {
    return make_error(ErrorCode::kInvalidArgument, "a token mask must have one entry per token");
  }
  if (o.rank < 1 || o.rank > 4096 || !(o.alpha > 0.0f)) {
    return make_error(ErrorCode::kInvalidArgument, "--rank must be in [1, 4096] and --alpha positive");
  }
  if (o.batch < 1 || o.seq_len < 2 || o.seq_len > base.shape.n_ctx) {
    return make_error(ErrorCode::kInvalidArgument, "the window ({}) must be in [2, the context {}]", o.seq_len,
                      base.shape.n_ctx);
  }
  if (static_cast<int64_t>(train_tokens.size()) < o.seq_len + 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the training data is too small: {} tokens, fewer than one window of {}", train_tokens.size(),
                      o.seq_len + 1);
  }
  for (const auto* v : {&train_tokens, &eval_tokens}) {
    for (int32_t t : *v) {
      if (t < 0 || t >= base.shape.n_vocab) {
        return make_error(ErrorCode::kInvalidArgument, "token id {} is outside the vocabulary", t);
      }
    }
  }
  auto t = std::unique_ptr<LoraTrainer>(new LoraTrainer(std::move(base), o, std::max(1, n_threads)));
  t->scale_ = o.alpha / static_cast<float>(o.rank);
  t->train_ = std::move(train_tokens);
  t->eval_ = std::move(eval_tokens);
  t->train_mask_ = std::move(train_mask);
  t->eval_mask_ = std::move(eval_mask);
  const LlamaShape& s = t->params_.shape();
  size_t n = 0;
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const LayerSlots& l = t->params_.layer(il);
    for (const std::string& target : o.targets) {
      const std::pair<const char*, size_t> map[] = {{"q", l.wq},         {"k", l.wk},          {"v", l.wv},
                                                    {"o", l.wo},         {"gate", l.ffn_gate}, {"up", l.ffn_up},
                                                    {"down", l.ffn_down}};
      const auto* m = std::find_if(std::begin(map), std::end(map), [&](const auto& e) { return target == e.first; });
      if (m == std::end(map)) {
        return make_error(ErrorCode::kInvalidArgument, "unknown LoRA target '{}' (q, k, v, o, gate, up, down)", target);
      }
      const auto it = std::find_if(t->params_.tensors().begin(), t->params_.tensors().end(),
                                   [&](const ParamTensor& p) { return p.offset == m->second; });
      const int64_t rows = it->ne[1], cols = it->ne[0];
      t->slots_.push_back({it->name, m->second, rows, cols, n, n + static_cast<size_t>(o.rank * cols)});
      n += static_cast<size_t>(o.rank * (cols + rows));
    }
  }
  for (size_t i = 0; i < t->slots_.size(); ++i) t->slot_at_[t->slots_[i].w] = i;
  // A ~ N(0, 1/cols) (the product starts small but nonzero), B = 0: the adapter starts as a
  // no-op, so W' starts as the base itself.
  t->lora_.assign(n, 0.0f);
  SplitMix64 rng{o.seed};
  for (const Slot& sl : t->slots_) {
    const double sd = 1.0 / std::sqrt(static_cast<double>(sl.cols));
    for (int64_t i = 0; i < o.rank * sl.cols; ++i) t->lora_[sl.a + i] = static_cast<float>(sd * rng.normal());
  }
  return t;
}

void LoraTrainer::update_merged(const std::vector<float>& prev) {
  const int64_t r = opts_.rank;
  for (const Slot& sl : slots_) {
    // W' += (s B) A, then W' += (-s B_prev) A_prev. With B = B_prev = 0 both add exact zeros.
    tmp_.resize(static_cast<size_t>(sl.rows * r));
    for (size_t i = 0; i < tmp_.size(); ++i) tmp_[i] = scale_ * lora_[sl.b + i];
    gemm({sl.rows, sl.cols, r, tmp_.data(), r, lora_.data() + sl.a, sl.cols, w_.data() + sl.w, sl.cols, true}, pool_);
    for (size_t i = 0; i < tmp_.size(); ++i) tmp_[i] = -scale_ * prev[sl.b + i];
    gemm({sl.rows, sl.cols, r, tmp_.data(), r, prev.data() + sl.a, sl.cols, w_.data() + sl.w, sl.cols, true}, pool_);
  }
}

void LoraTrainer::linear(size_t offset, const float* x, const float* dy, int64_t n, int64_t rows, int64_t cols) {
  const auto it = slot_at_.find(offset);
  if (it == slot_at_.end()) return;
  const Slot& sl = slots_[it->second];
  const int64_t r = opts_.rank;
  const size_t nr = static_cast<size_t>(n * r);
  // u [n][r] = x [n][cols] · A^T [cols][r]
  at_.resize(static_cast<size_t>(cols * r));
  ops_.transpose(lora_.data() + sl.a, r, cols, at_.data());
  u_.resize(nr);
  gemm({n, r, cols, x, cols, at_.data(), r, u_.data(), r, false}, pool_);
  // dB [rows][r] += dy^T [rows][n] · u [n][r]
  dyt_.resize(static_cast<size_t>(rows * n));
  ops_.transpose(dy, n, rows, dyt_.data());
  gemm({rows, r, n, dyt_.data(), n, u_.data(), r, grad_lora_.data() + sl.b, r, true}, pool_);
  // du [n][r] = dy [n][rows] · B [rows][r];  dA [r][cols] += du^T [r][n] · x [n][cols]
  du_.resize(nr);
  gemm({n, r, rows, dy, rows, lora_.data() + sl.b, r, du_.data(), r, false}, pool_);
  dut_.resize(nr);
  ops_.transpose(du_.data(), n, r, dut_.data());
  gemm({r, cols, n, dut_.data(), n, x, cols, grad_lora_.data() + sl.a, cols, true}, pool_);
}

double LoraTrainer::gradients(int64_t counted, bool exact) {
  const float grad_scale = 1.0f / static_cast<float>(counted);
  grad_lora_.assign(lora_.size(), 0.0f);
  graph_.forward(w_.data(), inputs_.data(), static_cast<int64_t>(inputs_.size()) / opts_.seq_len, opts_.seq_len);
  double loss = 0.0;
  if (!exact) {
    loss = graph_.backward(w_.data(), targets_.data(), nullptr, grad_scale, this);
  } else {
    std::vector<float> grad_w(w_.size(), 0.0f);
    loss = graph_.backward(w_.data(), targets_.data(), grad_w.data(), grad_scale);
    const int64_t r = opts_.rank;
    for (const Slot& sl : slots_) {
      const float* g = grad_w.data() + sl.w;
      // dB [rows][r] = G [rows][cols] · A^T [cols][r]
      tmp_.resize(static_cast<size_t>(sl.cols * r));
      ops_.transpose(lora_.data() + sl.a, r, sl.cols, tmp_.data());
      gemm({sl.rows, r, sl.cols, g, sl.cols, tmp_.data(), r, grad_lora_.data() + sl.b, r, false}, pool_);
      // dA [r][cols] = B^T [r][rows] · G [rows][cols]
      tmp_.resize(static_cast<size_t>(r * sl.rows));
      ops_.transpose(lora_.data() + sl.b, sl.rows, r, tmp_.data());
      gemm({r, sl.cols, sl.rows, tmp_.data(), sl.rows, g, sl.cols, grad_lora_.data() + sl.a, sl.cols, false}, pool_);
    }
  }
  for (float& x : grad_lora_) x *= scale_;
  return loss;
}

std::vector<float> LoraTrainer::lora_gradient(const std::vector<size_t>& starts, bool exact) {
  const int64_t counted = std::max<int64_t>(1, build_batch(train_, train_mask_, starts));
  gradients(counted, exact);
  return grad_lora_;
}

const std::vector<float>& LoraTrainer::merged() { return w_; }

int64_t LoraTrainer::build_batch(const std::vector<int32_t>& tokens, const std::vector<uint8_t>& mask,
                                 const std::vector<size_t>& starts) {
  const int64_t len = opts_.seq_len;
  inputs_.resize(starts.size() * static_cast<size_t>(len));
  targets_.resize(inputs_.size());
  int64_t counted = 0;
  for (size_t b = 0; b < starts.size(); ++b) {
    for (int64_t i = 0; i < len; ++i) {
      const size_t at = starts[b] + static_cast<size_t>(i);
      const bool train = mask.empty() || mask[at + 1] != 0;
      inputs_[b * static_cast<size_t>(len) + static_cast<size_t>(i)] = tokens[at];
      targets_[b * static_cast<size_t>(len) + static_cast<size_t>(i)] = train ? tokens[at + 1] : -1;
      counted += train ? 1 : 0;
    }
  }
  return counted;
}

double LoraTrainer::train_step() {
  const int64_t len = opts_.seq_len + 1;
  const uint64_t n_starts = train_.size() - static_cast<size_t>(len) + 1;
  std::vector<size_t> starts(static_cast<size_t>(opts_.batch));
  for (size_t& st : starts) st = static_cast<size_t>(data_rng_.next() % n_starts);
  const int64_t counted = std::max<int64_t>(1, build_batch(train_, train_mask_, starts));
  const double loss = gradients(counted, /*exact=*/false);
  prev_lora_ = lora_;
  adamw_update_flat(opts_.adamw, lora_, grad_lora_, adamw_, pool_);
  update_merged(prev_lora_);
  return loss / static_cast<double>(counted);
}

double LoraTrainer::eval_loss(int64_t max_windows, int64_t* n_scored) {
  const int64_t len = opts_.seq_len;
  const int64_t cap = max_windows > 0 ? max_windows : opts_.max_eval_windows;
  const int64_t n = std::min<int64_t>(cap, (static_cast<int64_t>(eval_.size()) - 1) / len);
  if (n <= 0) {
    if (n_scored != nullptr) *n_scored = 0;
    return std::nan("");
  }
  double loss = 0.0;
  int64_t counted = 0;
  for (int64_t b0 = 0; b0 < n; b0 += opts_.batch) {
    const int64_t nb = std::min(opts_.batch, n - b0);
    std::vector<size_t> starts(static_cast<size_t>(nb));
    for (int64_t b = 0; b < nb; ++b) starts[static_cast<size_t>(b)] = static_cast<size_t>((b0 + b) * len);
    counted += build_batch(eval_, eval_mask_, starts);
    graph_.forward(w_.data(), inputs_.data(), nb, len);
    loss += graph_.backward(w_.data(), targets_.data(), nullptr, 0.0f);
  }
  if (n_scored != nullptr) *n_scored = counted;
  return counted > 0 ? loss / static_cast<double>(counted) : std::nan("");
}

Status LoraTrainer::write_adapter(const std::string& path, const std::string& base_name) const {
  gguf::GgufWriter out;
  out.set_string("general.architecture", "llama");
  out.set_string("general.type", "adapter");
  out.set_string("general.name", base_name + "-lora");
  out.set_string("adapter.type", "lora");
  out.set_f32("adapter.lora.alpha", opts_.alpha);
  const uint64_t r = static_cast<uint64_t>(opts_.rank);
  for (const Slot& sl : slots_) {
    const auto bytes = [&](size_t off, size_t count) {
      return std::span<const std::byte>(reinterpret_cast<const std::byte*>(lora_.data() + off), count * sizeof(float));
    };
    HEARTH_TRY(out.add_tensor(sl.name + ".lora_a", TensorType::F32, {static_cast<uint64_t>(sl.cols), r},
                              bytes(sl.a, static_cast<size_t>(sl.cols) * r)));
    HEARTH_TRY(out.add_tensor(sl.name + ".lora_b", TensorType::F32, {r, static_cast<uint64_t>(sl.rows)},
                              bytes(sl.b, static_cast<size_t>(sl.rows) * r)));
  }
  return out.write(path);
}

}  // namespace hearth::train
