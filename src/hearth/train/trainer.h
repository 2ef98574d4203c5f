// The training loop's state machine: packed windows from a token stream, gradient
// accumulation, AdamW steps and held-out evaluation. Deterministic for a given seed and thread
// count; everything it needs to continue a run bit for bit is in TrainState (see checkpoint.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/train/adamw.h"
#include "hearth/train/llama_graph.h"
#include "hearth/train/llama_params.h"

namespace hearth::train {

struct TrainOptions {
  LlamaShape shape;
  AdamWConfig adamw;
  int64_t batch = 8;      // sequences per micro-batch
  int64_t accum = 1;      // micro-batches per optimizer step
  int64_t seq_len = 128;  // tokens per training window (<= shape.n_ctx)
  uint64_t seed = 1;
  int64_t max_eval_windows = 32;
};

// Where the data stream stands: windows are visited in a fresh random order each epoch; the
// order is rebuilt from epoch_seed, so that (epoch_seed, cursor) is the whole position.
struct DataPosition {
  int64_t epoch = 0;
  int64_t cursor = 0;       // next window of this epoch's order
  uint64_t epoch_seed = 0;  // seeds this epoch's order
};

struct TrainState {
  std::vector<float> w;  // the f32 master weights
  AdamWState adamw;
  DataPosition data;
};

class Trainer {
 public:
  // Fails when the training tokens do not fill one micro-batch of windows.
  static Result<std::unique_ptr<Trainer>> create(const TrainOptions& opts, std::vector<int32_t> train_tokens,
                                                 std::vector<int32_t> eval_tokens, int n_threads,
                                                 const kernels::KernelTable* kt = nullptr);
  // Fresh weights (seeded) and data order.
  void init_state();
  // Continues from a saved state (checked against the model's size).
  Status set_state(TrainState state);
  const TrainState& state() const { return state_; }
  const TrainOptions& options() const { return opts_; }
  const LlamaParams& params() const { return params_; }
  int64_t step() const { return state_.adamw.step; }
  // Changes the schedule's total (for --time, once the step time is known).
  void set_total_steps(int64_t n) { opts_.adamw.total_steps = n; }

  // Distillation: `teacher` writes its logits [n_seq * seq_len][n_vocab] for the inputs of
  // windows [n_seq][seq_len + 1]; each step then trains on (1 - alpha) * data loss +
  // alpha * T^2 * KL(teacher || student) at temperature T. A teacher error stops train_step
  // (it returns NaN) and is kept in teacher_status().
  using TeacherFn =
      std::function<Status(const int32_t* windows, int64_t n_seq, int64_t seq_len, std::vector<float>& logits)>;
  void set_teacher(TeacherFn teacher, float temperature, float alpha);
  const Status& teacher_status() const { return teacher_status_; }

  // One optimizer step over `accum` micro-batches; returns the mean training loss per token.
  double train_step();
  // Mean loss per token over the first held-out windows (at most max_windows; 0: the
  // options' max_eval_windows). NaN without eval tokens. n_scored, if given, receives the
  // number of tokens scored (eval tokens 1..n_scored).
  double eval_loss(int64_t max_windows = 0, int64_t* n_scored = nullptr);
  // Tokens one train_step() consumes.
  int64_t tokens_per_step() const { return opts_.batch * opts_.accum * opts_.seq_len; }
  int64_t n_train_windows() const { return n_windows_; }
  double last_grad_norm() const { return last_grad_norm_; }

 private:
  Trainer(const TrainOptions& opts, int n_threads, const kernels::KernelTable& kt);
  void build_order();
  void next_windows(std::vector<int32_t>& out);

  TrainOptions opts_;
  LlamaParams params_;
  ThreadPool pool_;
  Ops ops_;
  LlamaGraph graph_;
  std::vector<int32_t> train_, eval_;
  int64_t n_windows_ = 0;
  std::vector<int64_t> order_;
  TrainState state_;
  std::vector<float> grad_;
  std::vector<int32_t> batch_;
  double last_grad_norm_ = 0.0;
  TeacherFn teacher_;
  float temperature_ = 2.0f, alpha_ = 0.5f;
  std::vector<float> teacher_logits_;
  std::vector<int32_t> inputs_, targets_;
  Status teacher_status_;
};

}  // namespace hearth::train
