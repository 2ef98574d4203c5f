#include "hearth/model/rope_table.h"

#include <algorithm>
#include <cmath>

namespace hearth::model {

RopeTableParams rope_table_params(const HParams& hp, const TensorView& rope_freqs) {
  RopeTableParams p;
  p.n_rot = hp.n_rot;
  p.base = hp.rope_freq_base;
  p.freq_scale = hp.rope_freq_scale;
  p.freq_factors = rope_freqs.valid() ? rope_freqs.f32() : nullptr;
  p.ext_factor = hp.rope_yarn_ext_factor;
  p.mscale = hp.rope_attn_factor;
  p.beta_fast = hp.rope_yarn_beta_fast;
  p.beta_slow = hp.rope_yarn_beta_slow;
  p.n_ctx_orig = hp.rope_n_ctx_orig > 0 ? hp.rope_n_ctx_orig : hp.n_ctx_train;
  return p;
}

void yarn_corr_dims(int64_t n_rot, int64_t n_ctx_orig, float base, float beta_fast, float beta_slow, float dims[2]) {
  // Pair i has wavelength 2π base^(2i/n_rot); it turns n_ctx_orig / wavelength times over the
  // original context. The pair that turns r times: i = n_rot ln(n_ctx_orig / (2π r)) / (2 ln base).
  auto pair_for = [&](float rotations) {
    return static_cast<float>(n_rot) *
           std::log(static_cast<float>(n_ctx_orig) / (rotations * 2.0f * static_cast<float>(M_PI))) /
           (2.0f * std::log(base));
  };
  dims[0] = std::max(0.0f, std::floor(pair_for(beta_fast)));
  dims[1] = std::min(static_cast<float>(n_rot - 1), std::ceil(pair_for(beta_slow)));
}

void fill_rope_table(std::vector<float>& table, int64_t n_ctx, const RopeTableParams& p) {
  const int64_t n_rot = p.n_rot;
  table.assign(static_cast<size_t>(n_ctx * std::max<int64_t>(n_rot, 1)), 0.0f);
  // theta_i = pos * base^(-2i/n_rot) by repeated multiplication in f32, as ggml computes it.
  const float theta_scale = std::pow(p.base, -2.0f / static_cast<float>(std::max<int64_t>(n_rot, 1)));
  float corr[2] = {0.0f, 0.0f};
  if (p.ext_factor != 0.0f) yarn_corr_dims(n_rot, p.n_ctx_orig, p.base, p.beta_fast, p.beta_slow, corr);
  for (int64_t pos = 0; pos < n_ctx; ++pos) {
    float theta = static_cast<float>(pos);
    float* cs = table.data() + pos * n_rot;
    for (int64_t i = 0; i < n_rot; i += 2) {
      const float f = p.freq_factors ? p.freq_factors[i / 2] : 1.0f;
      float th = p.freq_scale * (theta / f);
      if (p.ext_factor != 0.0f) {
        // 1 for the fast pairs (below corr[0]: keep the trained angle), 0 above corr[1].
        const float y = (static_cast<float>(i / 2) - corr[0]) / std::max(0.001f, corr[1] - corr[0]);
        const float mix = (1.0f - std::clamp(y, 0.0f, 1.0f)) * p.ext_factor;
        th = th * (1.0f - mix) + (theta / f) * mix;
      }
      cs[i] = std::cos(th) * p.mscale;
      cs[i + 1] = std::sin(th) * p.mscale;
      theta *= theta_scale;
    }
  }
}

}  // namespace hearth::model
