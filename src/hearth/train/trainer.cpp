#include "hearth/train/trainer.h"

#include <cmath>
#include <numeric>
#include <string>

namespace hearth::train {

Trainer::Trainer(const TrainOptions& opts, int n_threads, const kernels::KernelTable& kt)
    : opts_(opts), params_(opts.shape), pool_(n_threads), ops_(kt, pool_), graph_(params_, ops_) {}

Result<std::unique_ptr<Trainer>> Trainer::create(const TrainOptions& opts, std::vector<int32_t> train_tokens,
                                                 std::vector<int32_t> eval_tokens, int n_threads,
                                                 const kernels::KernelTable* kt) {
  HEARTH_TRY(opts.shape.validate());
  if (opts.batch < 1 || opts.accum < 1 || opts.seq_len < 2 || opts.seq_len > opts.shape.n_ctx) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "batch, accumulation and window length must be positive, and the window ({}) at most the context ({})",
        opts.seq_len, opts.shape.n_ctx);
  }
  for (const auto* v : {&train_tokens, &eval_tokens}) {
    for (int32_t t : *v) {
      if (t < 0 || t >= opts.shape.n_vocab) {
        return make_error(ErrorCode::kInvalidArgument, "token id {} is outside the vocabulary", t);
      }
    }
  }
  const int64_t n_windows = (static_cast<int64_t>(train_tokens.size()) - 1) / opts.seq_len;
  if (n_windows < opts.batch) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the corpus is too small: {} training tokens make {} windows of {} tokens, fewer than one batch "
                      "of {}; add text or lower --batch / --ctx",
                      train_tokens.size(), std::max<int64_t>(0, n_windows), opts.seq_len, opts.batch);
  }
  auto t = std::unique_ptr<Trainer>(new Trainer(opts, std::max(1, n_threads), kt ? *kt : kernels::active_kernels()));
  t->train_ = std::move(train_tokens);
  t->eval_ = std::move(eval_tokens);
  t->n_windows_ = n_windows;
  t->init_state();
  return t;
}

void Trainer::init_state() {
  init_params(params_, state_.w, opts_.seed);
  state_.adamw = AdamWState{};
  state_.adamw.m.assign(state_.w.size(), 0.0f);
  state_.adamw.v.assign(state_.w.size(), 0.0f);
  state_.data = DataPosition{0, 0, SplitMix64{opts_.seed ^ 0xDA7A5EEDull}.next()};
  build_order();
}

Status Trainer::set_state(TrainState s) {
  const size_t n = params_.n_params();
  if (s.w.size() != n || s.adamw.m.size() != n || s.adamw.v.size() != n) {
    return make_error(ErrorCode::kInvalidArgument, "saved state holds {} parameters; this model has {}", s.w.size(), n);
  }
  if (s.data.cursor < 0 || s.data.cursor > n_windows_ || s.adamw.step < 0) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "saved data position {} is outside the corpus's {} windows (was the checkpoint made on another corpus?)",
        s.data.cursor, n_windows_);
  }
  state_ = std::move(s);
  build_order();
  return ok_status();
}

void Trainer::build_order() {
  // Fisher-Yates with the epoch's own seed.
  order_.resize(static_cast<size_t>(n_windows_));
  std::iota(order_.begin(), order_.end(), int64_t{0});
  SplitMix64 rng{state_.data.epoch_seed};
  for (int64_t i = n_windows_ - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng.next() % static_cast<uint64_t>(i + 1));
    std::swap(order_[static_cast<size_t>(i)], order_[static_cast<size_t>(j)]);
  }
}

void Trainer::next_windows(std::vector<int32_t>& out) {
  const int64_t len = opts_.seq_len + 1;
  out.resize(static_cast<size_t>(opts_.batch * len));
  for (int64_t b = 0; b < opts_.batch; ++b) {
    if (state_.data.cursor >= n_windows_) {
      ++state_.data.epoch;
      state_.data.cursor = 0;
      state_.data.epoch_seed = SplitMix64{state_.data.epoch_seed}.next();
      build_order();
    }
    const int64_t start = order_[static_cast<size_t>(state_.data.cursor++)] * opts_.seq_len;
    std::copy(train_.begin() + start, train_.begin() + start + len, out.begin() + b * len);
  }
}

double Trainer::train_step() {
  grad_.assign(state_.w.size(), 0.0f);
  const float scale = 1.0f / static_cast<float>(tokens_per_step());
  double loss = 0.0;
  for (int64_t a = 0; a < opts_.accum; ++a) {
    next_windows(batch_);
    if (!teacher_) {
      loss += graph_.step(state_.w.data(), batch_.data(), opts_.batch, opts_.seq_len, grad_.data(), scale);
      continue;
    }
    teacher_status_ = teacher_(batch_.data(), opts_.batch, opts_.seq_len, teacher_logits_);
    if (!teacher_status_.ok()) return std::nan("");
    const int64_t len = opts_.seq_len;
    inputs_.resize(static_cast<size_t>(opts_.batch * len));
    targets_.resize(inputs_.size());
    for (int64_t b = 0; b < opts_.batch; ++b) {
      const int32_t* win = batch_.data() + b * (len + 1);
      std::copy(win, win + len, inputs_.begin() + b * len);
      std::copy(win + 1, win + len + 1, targets_.begin() + b * len);
    }
    graph_.forward(state_.w.data(), inputs_.data(), opts_.batch, len);
    loss += graph_.backward_distill(state_.w.data(), targets_.data(), teacher_logits_.data(), temperature_, alpha_,
                                    grad_.data(), scale);
  }
  last_grad_norm_ = adamw_update(opts_.adamw, params_, state_.w, grad_, state_.adamw, pool_);
  return loss / static_cast<double>(tokens_per_step());
}

void Trainer::set_teacher(TeacherFn teacher, float temperature, float alpha) {
  teacher_ = std::move(teacher);
  temperature_ = temperature;
  alpha_ = alpha;
}

double Trainer::eval_loss(int64_t max_windows, int64_t* n_scored) {
  const int64_t len = opts_.seq_len;
  const int64_t cap = max_windows > 0 ? max_windows : opts_.max_eval_windows;
  const int64_t n = std::min<int64_t>(cap, (static_cast<int64_t>(eval_.size()) - 1) / len);
  if (n_scored != nullptr) *n_scored = std::max<int64_t>(0, n * len);
  if (n <= 0) return std::nan("");
  double loss = 0.0;
  std::vector<int32_t> win;
  for (int64_t b0 = 0; b0 < n; b0 += opts_.batch) {
    const int64_t nb = std::min(opts_.batch, n - b0);
    win.resize(static_cast<size_t>(nb * (len + 1)));
    for (int64_t b = 0; b < nb; ++b) {
      std::copy(eval_.begin() + (b0 + b) * len, eval_.begin() + (b0 + b) * len + len + 1, win.begin() + b * (len + 1));
    }
    loss += graph_.step(state_.w.data(), win.data(), nb, len, nullptr, 0.0f);
  }
  return loss / static_cast<double>(n * len);
}

}  // namespace hearth::train
