// KL divergence of a model's next-token distributions from a base model's, over the scored
// positions of the perplexity windows, computed as the ecosystem's perplexity tool does
// (KL(base || model) per position from the base's stored log-probabilities; see
// logits_file.h), plus the statistics it reports: mean and percentiles of the KL values,
// how often both models rank the same token first, and the perplexity of each.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace hearth::eval {

struct KlSummary {
  int64_t n = 0;                                  // positions
  double ppl = 0, ppl_base = 0;                   // exp(mean nll) of the model and of the base
  double delta_ppl = 0;                           // ppl - ppl_base
  double ln_ppl_ratio = 0, ln_ppl_ratio_err = 0;  // mean(nll - nll_base) and its standard error
  double kld_mean = 0, kld_err = 0;
  double kld_max = 0, kld_p999 = 0, kld_p99 = 0, kld_p90 = 0, kld_median = 0, kld_p10 = 0, kld_min = 0;
  double same_top = 0, same_top_err = 0;  // fraction in [0, 1]
  double rms_dp = 0;                      // root mean square of p(target) - p_base(target)
};

class KlAccumulator {
 public:
  // One position: the model's logits, the base's record for it, the true next token.
  void add(std::span<const float> logits, const uint16_t* base_record, int32_t target);
  KlSummary summary() const;
  int64_t count() const { return static_cast<int64_t>(kld_.size()); }

 private:
  std::vector<float> kld_;
  double sum_nll_ = 0, sum_nll_base_ = 0;
  double sum_d_ = 0, sum_d2_ = 0;  // d = nll - nll_base
  double sum_kld_ = 0, sum_kld2_ = 0;
  double sum_dp2_ = 0;
  int64_t same_top_ = 0;
};

// Linear interpolation between the nearest ranks of sorted values (fraction in [0, 1]).
double percentile(const std::vector<float>& sorted, double fraction);

}  // namespace hearth::eval
