// KL-divergence statistics (see kl_divergence.h).
#include "hearth/eval/kl_divergence.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hearth::eval {

void KlAccumulator::add(std::span<const float> logits, const uint16_t* rec, int32_t target) {
  const size_t n = logits.size();
  float max_logit = logits[0];
  size_t imax = 0;
  for (size_t i = 1; i < n; ++i) {
    if (logits[i] > max_logit) {
      max_logit = logits[i];
      imax = i;
    }
  }
  double sum_exp = 0.0;
  for (size_t i = 0; i < n; ++i) sum_exp += std::exp(logits[i] - max_logit);
  const double log_norm = max_logit + std::log(sum_exp);  // log sum exp(logits)
  float scale, min_log_prob;
  std::memcpy(&scale, rec, sizeof scale);
  std::memcpy(&min_log_prob, rec + 2, sizeof min_log_prob);
  const uint16_t* q = rec + 4;

  const double nll = log_norm - logits[static_cast<size_t>(target)];
  const double nll_base = -(static_cast<double>(scale) * q[target] + min_log_prob);
  // KL(base || model) = sum_i p_base_i (log p_base_i - log p_i), over the base's
  // non-negligible tokens (the stored range: within 16 of the top).
  double kld = 0.0;
  size_t imax_base = 0;
  float best_base = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    const float lp_base = scale * q[i] + min_log_prob;
    if (i == 0 || lp_base > best_base) {
      best_base = lp_base;
      imax_base = i;
    }
    if (lp_base > -16.f) kld += std::exp(static_cast<double>(lp_base)) * (lp_base - (logits[i] - log_norm));
  }
  kld_.push_back(static_cast<float>(kld));
  sum_nll_ += nll;
  sum_nll_base_ += nll_base;
  const double d = nll - nll_base;
  sum_d_ += d;
  sum_d2_ += d * d;
  sum_kld_ += kld;
  sum_kld2_ += kld * kld;
  const double dp = std::exp(-nll) - std::exp(-nll_base);
  sum_dp2_ += dp * dp;
  same_top_ += imax == imax_base ? 1 : 0;
}

double percentile(const std::vector<float>& v, double fraction) {
  if (v.empty()) return 0.0;
  if (fraction <= 0) return v.front();
  if (fraction >= 1) return v.back();
  double p = fraction * static_cast<double>(v.size() - 1);
  const size_t ip = static_cast<size_t>(p);
  p -= static_cast<double>(ip);
  return (1 - p) * v[ip] + p * v[std::min(ip + 1, v.size() - 1)];
}

KlSummary KlAccumulator::summary() const {
  KlSummary s;
  s.n = count();
  if (s.n == 0) return s;
  const double n = static_cast<double>(s.n);
  s.ppl = std::exp(sum_nll_ / n);
  s.ppl_base = std::exp(sum_nll_base_ / n);
  s.delta_ppl = s.ppl - s.ppl_base;
  s.ln_ppl_ratio = sum_d_ / n;
  s.kld_mean = sum_kld_ / n;
  s.same_top = static_cast<double>(same_top_) / n;
  s.rms_dp = std::sqrt(sum_dp2_ / n);
  if (s.n > 1) {
    s.ln_ppl_ratio_err = std::sqrt(std::max(0.0, sum_d2_ / n - s.ln_ppl_ratio * s.ln_ppl_ratio) / (n - 1));
    s.kld_err = std::sqrt(std::max(0.0, sum_kld2_ / n - s.kld_mean * s.kld_mean) / (n - 1));
    s.same_top_err = std::sqrt(s.same_top * (1 - s.same_top) / (n - 1));
  }
  std::vector<float> sorted = kld_;
  std::sort(sorted.begin(), sorted.end());
  s.kld_min = sorted.front();
  s.kld_max = sorted.back();
  s.kld_p999 = percentile(sorted, 0.999);
  s.kld_p99 = percentile(sorted, 0.99);
  s.kld_p90 = percentile(sorted, 0.90);
  s.kld_median = percentile(sorted, 0.5);
  s.kld_p10 = percentile(sorted, 0.10);
  return s;
}

}  // namespace hearth::eval
