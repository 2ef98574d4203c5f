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

double adamw_update(const AdamWConfig& c, const LlamaParams& p, std::vector<float>& w, std::vector<float>& grad,
                    AdamWState& st, ThreadPool& pool) {
  if (st.m.size() != w.size()) st.m.assign(w.size(), 0.0f);
  if (st.v.size() != w.size()) st.v.assign(w.size(), 0.0f);
  const double norm = grad_norm(grad);
  const float clip = (c.clip_norm > 0.0f && norm > c.clip_norm) ? static_cast<float>(c.clip_norm / norm) : 1.0f;
  const float lr = scheduled_lr(c, st.step);
  ++st.step;
  const float bc1 = 1.0f - static_cast<float>(std::pow(c.beta1, static_cast<double>(st.step)));
  const float bc2 = 1.0f - static_cast<float>(std::pow(c.beta2, static_cast<double>(st.step)));
  for (const ParamTensor& t : p.tensors()) {
    const float decay = t.is_matrix ? 1.0f - lr * c.weight_decay : 1.0f;
    float* wp = w.data() + t.offset;
    float* gp = grad.data() + t.offset;
    float* mp = st.m.data() + t.offset;
    float* vp = st.v.data() + t.offset;
    pool.parallel_for(static_cast<int64_t>(t.size), 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float g = gp[i] * clip;
        gp[i] = g;
        mp[i] = c.beta1 * mp[i] + (1.0f - c.beta1) * g;
        vp[i] = c.beta2 * vp[i] + (1.0f - c.beta2) * g * g;
        const float mh = mp[i] / bc1, vh = vp[i] / bc2;
        wp[i] = wp[i] * decay - lr * mh / (std::sqrt(vh) + c.eps);
      }
    });
  }
  return norm;
}

}  // namespace hearth::train
