// RoPE cos/sin tables: for each position and rotary pair the (cos, sin) that the rope kernel
// applies, with the model's frequency scaling folded in, so the kernels stay unscaled:
//   linear (position interpolation): theta = pos * base^(-2i/n_rot) * freq_scale;
//   Llama 3.1 rope_freqs: each pair's angle divided by its factor;
//   YaRN (Peng et al. 2023, "YaRN: Efficient Context Window Extension of Large Language
//   Models", arXiv:2309.00071, sec. 3.2-3.4): per pair, a ramp between interpolation and
//   extrapolation ("NTK-by-parts") over the pairs whose wavelength is between original
//   context / beta_fast and original context / beta_slow rotations, and cos/sin scaled by the
//   attention magnitude mscale (so q · k scales by mscale^2, the paper's 1/t).
#pragma once

#include <cstdint>
#include <vector>

#include "hearth/model/model_weights.h"

namespace hearth::model {

struct RopeTableParams {
  int64_t n_rot = 0;                     // rotary dims per head (even)
  float base = 10000.0f;                 // rope.freq_base
  float freq_scale = 1.0f;               // 1 / scaling factor (interpolation)
  const float* freq_factors = nullptr;   // [n_rot / 2] angle divisors (rope_freqs), or null
  float ext_factor = 0.0f;               // YaRN: weight of extrapolation in the ramp (0: no ramp)
  float mscale = 1.0f;                   // multiplies cos and sin (YaRN's attention magnitude)
  float beta_fast = 32.0f;               // YaRN: pairs with more rotations than this extrapolate
  float beta_slow = 1.0f;                // YaRN: pairs with fewer rotations than this interpolate
  int64_t n_ctx_orig = 0;                // YaRN: the context the model was trained on
};

// The model's main table's parameters (hp's scaling, the rope_freqs weight when valid).
RopeTableParams rope_table_params(const HParams& hp, const TensorView& rope_freqs);

// YaRN's ramp bounds over pair index i (0 .. n_rot/2): pairs below `low` extrapolate, above
// `high` interpolate. From the number of rotations a pair makes over n_ctx_orig positions.
void yarn_corr_dims(int64_t n_rot, int64_t n_ctx_orig, float base, float beta_fast, float beta_slow, float dims[2]);

// Fills table[pos * n_rot + i], i even, with (cos, sin) of pair i/2 at pos, for pos < n_ctx.
void fill_rope_table(std::vector<float>& table, int64_t n_ctx, const RopeTableParams& p);

}  // namespace hearth::model
