#include "hearth/train/checkpoint.h"

#include <cstring>

#include "hearth/core/atomic_file.h"
#include "hearth/gguf/gguf.h"
#include "hearth/tokenizer/vocab_gguf.h"
#include "hearth/train/gguf_export.h"

namespace hearth::train {
namespace {

constexpr uint32_t kVersion = 1;

std::span<const std::byte> bytes_of(const std::vector<float>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(float)};
}

}  // namespace

Status save_checkpoint(const std::string& path, const TrainOptions& o, const LlamaParams& params, const TrainState& st,
                       const tokenizer::VocabSpec& vocab) {
  gguf::GgufWriter out;
  std::vector<std::vector<std::byte>> storage;
  HEARTH_TRY(add_llama_model(out, params, st.w.data(), vocab, TensorType::F32, "hearth-checkpoint", storage));
  const LlamaShape& s = o.shape;
  out.set_u32("train.checkpoint_version", kVersion);
  out.set_i64("train.n_vocab", s.n_vocab);
  out.set_i64("train.n_ctx", s.n_ctx);
  out.set_i64("train.n_embd", s.n_embd);
  out.set_i64("train.n_layer", s.n_layer);
  out.set_i64("train.n_head", s.n_head);
  out.set_i64("train.n_head_kv", s.n_head_kv);
  out.set_i64("train.n_ff", s.n_ff);
  out.set_f32("train.norm_eps", s.norm_eps);
  out.set_f32("train.rope_freq_base", s.rope_freq_base);
  out.set_bool("train.tied_output", s.tied_output);
  out.set_i64("train.batch", o.batch);
  out.set_i64("train.accum", o.accum);
  out.set_i64("train.seq_len", o.seq_len);
  out.set_i64("train.max_eval_windows", o.max_eval_windows);
  out.set_u64("train.seed", o.seed);
  const AdamWConfig& a = o.adamw;
  out.set_f32("train.lr", a.lr);
  out.set_f32("train.beta1", a.beta1);
  out.set_f32("train.beta2", a.beta2);
  out.set_f32("train.eps", a.eps);
  out.set_f32("train.weight_decay", a.weight_decay);
  out.set_f32("train.clip_norm", a.clip_norm);
  out.set_f32("train.min_lr_frac", a.min_lr_frac);
  out.set_i64("train.warmup_steps", a.warmup_steps);
  out.set_i64("train.total_steps", a.total_steps);
  out.set_i64("train.step", st.adamw.step);
  out.set_i64("train.data_epoch", st.data.epoch);
  out.set_i64("train.data_cursor", st.data.cursor);
  out.set_u64("train.data_epoch_seed", st.data.epoch_seed);
  const uint64_t n = params.n_params();
  if (st.adamw.m.size() != n || st.adamw.v.size() != n) {
    return make_error(ErrorCode::kInternal, "optimizer state does not match the model's {} parameters", n);
  }
  HEARTH_TRY(out.add_tensor("train.adam_m", TensorType::F32, {n}, bytes_of(st.adamw.m)));
  HEARTH_TRY(out.add_tensor("train.adam_v", TensorType::F32, {n}, bytes_of(st.adamw.v)));
  return out.write(path);
}

Result<Checkpoint> load_checkpoint(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  HEARTH_ASSIGN_OR_RETURN(gguf::GgufFile f,
                          gguf::parse_gguf({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, path));
  auto version = f.get_u32("train.checkpoint_version");
  if (!version.ok()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: not a hearth training checkpoint (no train.* keys)", path);
  }
  if (*version != kVersion) {
    return make_error(ErrorCode::kUnimplemented, "{}: checkpoint version {} is not supported (this build reads {})",
                      path, *version, kVersion);
  }
  Checkpoint c;
  Status err = ok_status();
  auto i64 = [&](std::string_view key, int64_t& out) {
    auto v = f.get_int(key);
    if (!v.ok() && err.ok()) err = v.status().with_context(path);
    if (v.ok()) out = *v;
  };
  auto u64 = [&](std::string_view key, uint64_t& out) {
    auto v = f.get_uint(key);
    if (!v.ok() && err.ok()) err = v.status().with_context(path);
    if (v.ok()) out = *v;
  };
  auto f32 = [&](std::string_view key, float& out) {
    auto v = f.get_f32(key);
    if (!v.ok() && err.ok()) err = v.status().with_context(path);
    if (v.ok()) out = *v;
  };
  LlamaShape& s = c.options.shape;
  i64("train.n_vocab", s.n_vocab);
  i64("train.n_ctx", s.n_ctx);
  i64("train.n_embd", s.n_embd);
  i64("train.n_layer", s.n_layer);
  i64("train.n_head", s.n_head);
  i64("train.n_head_kv", s.n_head_kv);
  i64("train.n_ff", s.n_ff);
  f32("train.norm_eps", s.norm_eps);
  f32("train.rope_freq_base", s.rope_freq_base);
  if (auto t = f.get_bool("train.tied_output"); t.ok()) s.tied_output = *t;
  TrainOptions& o = c.options;
  i64("train.batch", o.batch);
  i64("train.accum", o.accum);
  i64("train.seq_len", o.seq_len);
  i64("train.max_eval_windows", o.max_eval_windows);
  u64("train.seed", o.seed);
  AdamWConfig& a = o.adamw;
  f32("train.lr", a.lr);
  f32("train.beta1", a.beta1);
  f32("train.beta2", a.beta2);
  f32("train.eps", a.eps);
  f32("train.weight_decay", a.weight_decay);
  f32("train.clip_norm", a.clip_norm);
  f32("train.min_lr_frac", a.min_lr_frac);
  i64("train.warmup_steps", a.warmup_steps);
  i64("train.total_steps", a.total_steps);
  i64("train.step", c.state.adamw.step);
  i64("train.data_epoch", c.state.data.epoch);
  i64("train.data_cursor", c.state.data.cursor);
  u64("train.data_epoch_seed", c.state.data.epoch_seed);
  HEARTH_TRY(err);
  HEARTH_TRY(s.validate().with_context(path));
  HEARTH_ASSIGN_OR_RETURN(c.vocab, tokenizer::vocab_spec_from_gguf(f));

  const LlamaParams params(s);
  const size_t n = params.n_params();
  auto read = [&](std::string_view name, size_t count, float* dst) -> Status {
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (t == nullptr) return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}' is missing", path, name);
    if (t->type != TensorType::F32 || t->n_elements != count) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}' is not f32 of {} elements", path, name, count);
    }
    std::memcpy(dst, t->data.data(), count * sizeof(float));
    return ok_status();
  };
  c.state.w.resize(n);
  c.state.adamw.m.resize(n);
  c.state.adamw.v.resize(n);
  for (const ParamTensor& t : params.tensors()) HEARTH_TRY(read(t.name, t.size, c.state.w.data() + t.offset));
  HEARTH_TRY(read("train.adam_m", n, c.state.adamw.m.data()));
  HEARTH_TRY(read("train.adam_v", n, c.state.adamw.v.data()));
  return c;
}

}  // namespace hearth::train
