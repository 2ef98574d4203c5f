#include "hearth/train/adamw.h"

#include <algorithm>
#include <cmath>

namespace hearth::train {

float scheduled_lr(const AdamWConfig& c, int64_t step) {
  if (c.warmup_steps > 0 && step < c.warmup_steps) {
    return c.lr * static_cast<float>(step + 1) / static_cast<float>(c.warmup_steps);
  }
  const int64_t decay = std::max<int64_t>(1, c.total_steps - c.warmup_steps);
  const double t = std::clamp(static_cast<double>(step - c.warmup_steps) / static_cast<double>(decay), 0.0, 1.0);
  const double min_lr = static_cast<double>(c.lr) * c.min_lr_frac;
  return static_cast<float>(min_lr + 0.5 * (c.lr - min_lr) * (1.0 + std::cos(3.141592653589793 * t)));
}

double grad_norm(const std::vector<float>& grad) {
  double s = 0.0;
  for (float g : grad) s += static_cast<double>(g) * g;
  return std::sqrt(s);
}

namespace {

struct Update {
  float clip, lr, bc1, bc2;
  double norm;
};

Update begin_update(const AdamWConfig& c, std::vector<float>& w, const std::vector<float>& grad, AdamWState& st) {
  if (st.m.size() != w.size()) st.m.assign(w.size(), 0.0f);
  if (st.v.size() != w.size()) st.v.assign(w.size(), 0.0f);
  Update u;
  u.norm = grad_norm(grad);
  u.clip = (c.clip_norm > 0.0f && u.norm > c.clip_norm) ? static_cast<float>(c.clip_norm / u.norm) : 1.0f;
  u.lr = scheduled_lr(c, st.step);
  ++st.step;
  u.bc1 = 1.0f - static_cast<float>(std::pow(c.beta1, static_cast<double>(st.step)));
  u.bc2 = 1.0f - static_cast<float>(std::pow(c.beta2, static_cast<double>(st.step)));
  return u;
}

void update_range(const AdamWConfig& c, const Update& u, float decay, size_t offset, size_t size, std::vector<float>& w,
                  std::vector<float>& grad, AdamWState& st, ThreadPool& pool) {
  float* wp = w.data() + offset;
  float* gp = grad.data() + offset;
  float* mp = st.m.data() + offset;
  float* vp = st.v.data() + offset;
  pool.parallel_for(static_cast<int64_t>(size), 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float g = gp[i] * u.clip;
      gp[i] = g;
      mp[i] = c.beta1 * mp[i] + (1.0f - c.beta1) * g;
      vp[i] = c.beta2 * vp[i] + (1.0f - c.beta2) * g * g;
      const float mh = mp[i] / u.bc1, vh = vp[i] / u.bc2;
      wp[i] = wp[i] * decay - u.lr * mh / (std::sqrt(vh) + c.eps);
    }
  });
}

}  // namespace

double adamw_update(const AdamWConfig& c, const LlamaParams& p, std::vector<float>& w, std::vector<float>& grad,
                    AdamWState& st, ThreadPool& pool) {
  const Update u = begin_update(c, w, grad, st);
  for (const ParamTensor& t : p.tensors()) {
    const float decay = t.is_matrix ? 1.0f - u.lr * c.weight_decay : 1.0f;
    update_range(c, u, decay, t.offset, t.size, w, grad, st, pool);
  }
  return u.norm;
}

double adamw_update_flat(const AdamWConfig& c, std::vector<float>& w, std::vector<float>& grad, AdamWState& st,
                         ThreadPool& pool) {
  const Update u = begin_update(c, w, grad, st);
  update_range(c, u, 1.0f - u.lr * c.weight_decay, 0, w.size(), w, grad, st, pool);
  return u.norm;
}

}  // namespace hearth::train
