// The avx512bf16 table's F16/BF16 matmuls (vdpbf16ps on packed weights) against the ref table,
// element by element, on shapes that cross its boundaries: rows with and without a partial
// 16-row group and an odd last group (its tiles take two groups at a time), odd column counts
// (the last column pair is padded), and token counts around its 12-token tile.
//
// Error bound per output y = sum_k w_k x_k, with S = sum_k |w_k x_k|:
//  - BF16 weights: both ref and the table round the activations to bf16 the same way and the
//    products are exact in f32, so they differ only in f32 summation order: each sum is within
//    n * 2^-24 * S of the exact sum of the rounded products (n = cols additions), so
//    |y - ref| <= 2 * cols * 2^-24 * S.
//  - F16 weights with HEARTH_F16_BF16=1: the table rounds each weight f16 -> bf16 and each
//    activation to bf16 (8 significant bits: relative error <= 2^-8 each) where ref rounds the
//    activation to f16 (11 bits: <= 2^-11): each product moves by at most
//    ((1 + 2^-8)^2 (1 + 2^-11) - 1) |w x| < 8.4e-3 |w x|, so |y - ref| <= (8.4e-3 + 2 * cols *
//    2^-24) * S.
//  - F16 weights otherwise: the table uses the avx512 path (f16 activations, f32 FMAs), the
//    same summation-order bound as BF16.
// S is computed from the dequantized weights and the raw activations, times 1.01 for their
// own rounding. The test runs where the CPU has AVX512-BF16 and skips elsewhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/cpu_features.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/kernels/quant.h"
#include "hearth/kernels/type_traits.h"

namespace hearth::kernels {
namespace {

bool f16_via_bf16() {
  const char* e = std::getenv("HEARTH_F16_BF16");
  return e != nullptr && e[0] == '1';
}

struct Result {
  std::vector<float> y;       // [n_tok][rows]
  std::vector<double> bound;  // the allowed |y - ref| per output
};

std::vector<float> gaussian(size_t n, std::mt19937& rng, float gain) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& e : v) e = dist(rng) * gain;
  return v;
}

// y = W x on table kt (packed if `packed` and the table packs the shape), W quantized to `type`
// from a seeded gaussian; fills the error bound when `bound` is set.
Result run(const KernelTable& kt, TensorType type, int64_t rows, int64_t cols, int64_t n_tok, bool packed,
           uint32_t seed, double rel_per_product) {
  std::mt19937 rng(seed);
  const size_t rb = *row_bytes(type, static_cast<uint64_t>(cols));
  std::vector<std::byte> w(rb * static_cast<size_t>(rows) + 2);
  const std::vector<float> wf = gaussian(static_cast<size_t>(rows * cols), rng, 0.1f);
  for (int64_t r = 0; r < rows; ++r) quantize_row(type, wf.data() + r * cols, w.data() + r * rb, cols);
  const std::vector<float> x = gaussian(static_cast<size_t>(n_tok * cols), rng, 1.0f);
  Result out;
  out.y.assign(static_cast<size_t>(n_tok * rows), NAN);
  std::vector<std::byte> scratch(matmul_scratch_bytes(kt, type, cols, n_tok) + 64);
  MatmulArgs a{type, w.data(), rb, rows, cols, x.data(), cols, n_tok, out.y.data(), rows, scratch.data()};
  std::vector<std::byte> pk;
  if (packed && kt.pack != nullptr && kt.packed_bytes(type, rows, cols) != 0) {
    pk.resize(kt.packed_bytes(type, rows, cols) + 64);
    std::byte* p = pk.data() + (64 - reinterpret_cast<uintptr_t>(pk.data()) % 64) % 64;
    kt.pack(type, rows, cols, w.data(), rb, p);
    a.packed = p;
  }
  ThreadPool pool(2);
  kt.matmul(a, pool);
  std::vector<float> wd(static_cast<size_t>(cols));
  const double rel = rel_per_product + 2.0 * static_cast<double>(cols) * std::ldexp(1.0, -24);
  for (int64_t r = 0; r < rows; ++r) {
    type_traits(type).to_float(w.data() + r * rb, wd.data(), cols);
    for (int64_t t = 0; t < n_tok; ++t) {
      double s = 0;
      for (int64_t k = 0; k < cols; ++k) s += std::fabs(static_cast<double>(wd[k]) * x[t * cols + k]);
      out.bound.resize(static_cast<size_t>(n_tok * rows));
      out.bound[t * rows + r] = 1.01 * rel * s;
    }
  }
  return out;
}

class Bf16Matmul : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu_features().has_avx512bf16_table()) GTEST_SKIP() << "this CPU lacks AVX512-BF16 (no avx512bf16 table)";
    kt_ = kernels_by_name("avx512bf16");
    ASSERT_NE(kt_, nullptr) << "the CPU has AVX512-BF16 but the avx512bf16 table is not available";
  }
  // Every shape for `type`; returns the worst |y - ref| / bound seen.
  double check(TensorType type, double rel_per_product) {
    double worst = 0;
    uint32_t seed = 100;
    for (int64_t cols : {1, 2, 3, 17, 32, 33, 64, 127, 130}) {
      for (int64_t rows : {16, 17, 31, 32, 33, 48, 50, 71}) {
        for (int64_t n_tok : {1, 2, 5, 11, 12, 13, 24, 25, 37}) {
          ++seed;
          const std::string where = std::string(type_name(type)) + " rows=" + std::to_string(rows) +
                                    " cols=" + std::to_string(cols) + " tokens=" + std::to_string(n_tok);
          const Result want = run(ref_kernels(), type, rows, cols, n_tok, false, seed, 0);
          const Result got = run(*kt_, type, rows, cols, n_tok, true, seed, rel_per_product);
          for (size_t i = 0; i < got.y.size(); ++i) {
            const double err = std::fabs(static_cast<double>(got.y[i]) - want.y[i]);
            EXPECT_TRUE(std::isfinite(got.y[i])) << where << " output " << i;
            // The smallest bound is for an all-zero-product output; allow equality there.
            EXPECT_LE(err, got.bound[i] + 1e-30) << where << " output " << i << " (row " << i % rows << ")";
            if (got.bound[i] > 0) worst = std::max(worst, err / got.bound[i]);
          }
        }
      }
    }
    return worst;
  }
  const KernelTable* kt_ = nullptr;
};

TEST_F(Bf16Matmul, Bf16WeightsMatchRefUpToSummationOrder) {
  const double worst = check(TensorType::BF16, 0);
  std::printf("bf16: worst |y - ref| / bound = %.3g\n", worst);
}

TEST_F(Bf16Matmul, F16WeightsWithinTheirBound) {
  // (1 + 2^-8)^2 (1 + 2^-11) - 1 = 8.3e-3: see the top of the file.
  const double rel = f16_via_bf16() ? 8.4e-3 : 0;
  const double worst = check(TensorType::F16, rel);
  std::printf("f16 (%s): worst |y - ref| / bound = %.3g\n", f16_via_bf16() ? "via bf16" : "f32 fma", worst);
}

TEST_F(Bf16Matmul, SelectableByName) {
  EXPECT_EQ(kt_->name, "avx512bf16");
  EXPECT_EQ(&active_kernels(), available_kernels().back());
}

}  // namespace
}  // namespace hearth::kernels
