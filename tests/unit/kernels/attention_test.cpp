// The SIMD tables' attention and element-wise ops against the scalar reference table, on shapes
// that cross the kernels' tile and vector boundaries: head_dim 8..128 (not only multiples of the
// vector width), GQA ratios 1..8, cache lengths 1..1000, decode, partial and full prefill,
// out-of-order positions, f16 and f32 caches. Errors are normalized: max|y - ref| / max|ref|.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/fp16.h"
#include "hearth/kernels/kernel_table.h"

namespace hearth::kernels {
namespace {

std::vector<const KernelTable*> simd_tables() {
  std::vector<const KernelTable*> out;
  for (const KernelTable* t : available_kernels())
    if (t->name != "ref") out.push_back(t);
  return out;
}

// max|a - ref| / max|ref|; any non-finite value in a where ref is finite counts as a failure.
double max_err(const float* a, const float* ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::isfinite(ref[i]) && !std::isfinite(a[i])) return INFINITY;
    if (!std::isfinite(ref[i])) {
      if (std::isnan(ref[i]) != std::isnan(a[i]) || (!std::isnan(ref[i]) && ref[i] != a[i])) return INFINITY;
      continue;
    }
    num = std::max(num, std::fabs(static_cast<double>(a[i]) - ref[i]));
    den = std::max(den, std::fabs(static_cast<double>(ref[i])));
  }
  return num / std::max(den, 1e-30);
}

double max_err(const std::vector<float>& a, const std::vector<float>& ref) {
  return max_err(a.data(), ref.data(), ref.size());
}

struct AttnCase {
  int head_dim, n_head_kv, ratio;
  int64_t n_ctx;
  std::vector<int32_t> pos;
  float q_gain;  // larger: peakier softmax, exercises the running-max rescale
};

std::string describe(const KernelTable& kt, const AttnCase& c, KvType kv) {
  return std::string(kt.name) + " hd " + std::to_string(c.head_dim) + " kv_heads " + std::to_string(c.n_head_kv) +
         " ratio " + std::to_string(c.ratio) + " n_ctx " + std::to_string(c.n_ctx) + " n_tok " +
         std::to_string(c.pos.size()) + " first_pos " + std::to_string(c.pos.front()) + " gain " +
         std::to_string(c.q_gain) + (kv == KvType::kF16 ? " f16" : " f32");
}

// Runs one case on ref and on kt; returns the normalized error and checks the padding of the
// strided output is left alone.
void check_attention(const KernelTable& kt, const AttnCase& c, KvType kv, ThreadPool& pool, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int n_head = c.n_head_kv * c.ratio;
  const int64_t n_tok = static_cast<int64_t>(c.pos.size());
  const int64_t kv_stride = static_cast<int64_t>(c.n_head_kv) * c.head_dim;
  const int64_t q_stride = static_cast<int64_t>(n_head) * c.head_dim + 8;  // strided rows
  std::vector<float> kf(static_cast<size_t>(c.n_ctx * kv_stride)), vf(kf.size());
  for (auto& e : kf) e = dist(rng);
  for (auto& e : vf) e = dist(rng);
  std::vector<uint16_t> kh(kf.size()), vh(kf.size());
  for (size_t i = 0; i < kf.size(); ++i) {
    kh[i] = fp32_to_fp16(kf[i]);
    vh[i] = fp32_to_fp16(vf[i]);
  }
  std::vector<float> q(static_cast<size_t>(n_tok * q_stride));
  for (auto& e : q) e = dist(rng) * c.q_gain;
  const float sentinel = 12345.0f;
  std::vector<float> o_ref(q.size(), sentinel), o(q.size(), sentinel);
  std::vector<float> scratch(attention_scratch_floats(c.n_ctx, pool.size()));
  AttentionArgs a{};
  a.q = q.data();
  a.q_stride = q_stride;
  a.k = kv == KvType::kF32 ? static_cast<const void*>(kf.data()) : kh.data();
  a.v = kv == KvType::kF32 ? static_cast<const void*>(vf.data()) : vh.data();
  a.kv_stride = kv_stride;
  a.kv_type = kv;
  a.pos = c.pos.data();
  a.n_tokens = n_tok;
  a.n_head = n_head;
  a.n_head_kv = c.n_head_kv;
  a.head_dim = c.head_dim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  a.out = o_ref.data();
  a.out_stride = q_stride;
  a.scratch = scratch.data();
  ref_kernels().attention(a, pool);
  a.out = o.data();
  kt.attention(a, pool);
  EXPECT_LT(max_err(o, o_ref), 2e-5) << describe(kt, c, kv);
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t i = static_cast<int64_t>(n_head) * c.head_dim; i < q_stride; ++i)
      ASSERT_EQ(o[static_cast<size_t>(t * q_stride + i)], sentinel) << "wrote past a row: " << describe(kt, c, kv);
}

std::vector<int32_t> positions(int64_t first, int64_t n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = static_cast<int32_t>(first + i);
  return p;
}

TEST(SimdAttention, MatchesRefAcrossShapes) {
  auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "this CPU runs only the ref table";
  std::mt19937 rng(2024);
  ThreadPool pool(2);
  int checked = 0;
  for (const KernelTable* kt : tables) {
    for (int head_dim : {8, 32, 40, 64, 80, 128}) {
      for (int ratio : {1, 2, 4, 8}) {
        const int n_head_kv = ratio == 8 ? 1 + static_cast<int>(rng() % 4) : 2;
        for (int64_t n_ctx : {1, 2, 63, 64, 65, 129, 255, 257, 1000}) {
          std::vector<AttnCase> cases;
          // Decode: one query at the end of the cache.
          cases.push_back({head_dim, n_head_kv, ratio, n_ctx, positions(n_ctx - 1, 1), 1.0f});
          // A chunk of queries continuing a cached prefix.
          const int64_t chunk = std::min<int64_t>(n_ctx, 13);
          cases.push_back({head_dim, n_head_kv, ratio, n_ctx, positions(n_ctx - chunk, chunk), 4.0f});
          // A whole prompt from position 0 (bounded: ref is slow).
          if (n_ctx <= 257) cases.push_back({head_dim, n_head_kv, ratio, n_ctx, positions(0, n_ctx), 1.0f});
          for (KvType kv : {KvType::kF32, KvType::kF16}) {
            for (const AttnCase& c : cases) {
              check_attention(*kt, c, kv, pool, rng);
              ++checked;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(SimdAttention, OutOfOrderPositionsPeakyScoresAndOtherPoolSizes) {
  auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "this CPU runs only the ref table";
  std::mt19937 rng(7);
  for (int n_threads : {1, 3}) {
    ThreadPool pool(n_threads);
    for (const KernelTable* kt : simd_tables()) {
      for (KvType kv : {KvType::kF32, KvType::kF16}) {
        check_attention(*kt, {64, 4, 8, 600, {599, 3, 200, 128, 0, 450, 127}, 1.0f}, kv, pool, rng);
        check_attention(*kt, {128, 2, 4, 300, {10, 299, 150}, 12.0f}, kv, pool, rng);
        check_attention(*kt, {96, 1, 2, 40, positions(0, 40), 20.0f}, kv, pool, rng);
        check_attention(*kt, {64, 4, 8, 2048, positions(2047, 1), 3.0f}, kv, pool, rng);
      }
    }
  }
}

TEST(SimdOps, ElementwiseMatchRefForOddSizes) {
  auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "this CPU runs only the ref table";
  std::mt19937 rng(31);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const KernelTable& r = ref_kernels();
  for (const KernelTable* kt : tables) {
    for (int64_t n : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 255, 1001, 4099}) {
      for (float gain : {1.0f, 30.0f}) {
        const std::string what = std::string(kt->name) + " n=" + std::to_string(n) + " gain " + std::to_string(gain);
        std::vector<float> x(static_cast<size_t>(n)), w(x.size()), b(x.size());
        for (auto& e : x) e = dist(rng) * gain + 0.5f;
        for (auto* v : {&w, &b}) for (auto& e : *v) e = dist(rng);
        std::vector<float> y1(x.size(), 0.0f), y2(x.size(), 0.0f);
        for (const float* wp : {static_cast<const float*>(w.data()), static_cast<const float*>(nullptr)}) {
          r.rms_norm(y1.data(), x.data(), wp, n, 1e-5f);
          kt->rms_norm(y2.data(), x.data(), wp, n, 1e-5f);
          EXPECT_LT(max_err(y2, y1), 1e-6) << "rms_norm " << what;
          for (const float* bp : {static_cast<const float*>(b.data()), static_cast<const float*>(nullptr)}) {
            r.layer_norm(y1.data(), x.data(), wp, bp, n, 1e-5f);
            kt->layer_norm(y2.data(), x.data(), wp, bp, n, 1e-5f);
            EXPECT_LT(max_err(y2, y1), 2e-6) << "layer_norm " << what;
          }
        }
        y1 = x;
        y2 = x;
        r.softmax(y1.data(), n);
        kt->softmax(y2.data(), n);
        EXPECT_LT(max_err(y2, y1), 2e-6) << "softmax " << what;
        y1 = x;
        y2 = x;
        r.swiglu(y1.data(), w.data(), n);
        kt->swiglu(y2.data(), w.data(), n);
        EXPECT_LT(max_err(y2, y1), 2e-6) << "swiglu " << what;
        y1 = x;
        y2 = x;
        r.add(y1.data(), w.data(), n);
        kt->add(y2.data(), w.data(), n);
        EXPECT_EQ(max_err(y2, y1), 0.0) << "add " << what;
      }
    }
  }
}

// Softmax and swiglu on the edges of exp: -inf and very negative inputs give exact zeros,
// huge gates saturate like ref.
TEST(SimdOps, ExpEdgeCases) {
  auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "this CPU runs only the ref table";
  const KernelTable& r = ref_kernels();
  for (const KernelTable* kt : tables) {
    std::vector<float> x = {0.0f, -INFINITY, -1000.0f, -87.0f, -88.5f, -100.0f, -3.0f, -INFINITY, -104.0f,
                            -0.5f, -20.0f, -1e30f, -60.0f, -86.0f, -89.0f, -1.0f, -2.0f, -INFINITY, -150.0f};
    std::vector<float> y1 = x, y2 = x;
    r.softmax(y1.data(), static_cast<int64_t>(x.size()));
    kt->softmax(y2.data(), static_cast<int64_t>(x.size()));
    EXPECT_LT(max_err(y2, y1), 2e-6) << kt->name << " softmax";
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i] < -100.0f) EXPECT_EQ(y2[i], 0.0f) << kt->name << " softmax at " << x[i];
      EXPECT_TRUE(std::isfinite(y2[i])) << kt->name << " softmax at " << x[i];
    }
    std::vector<float> g = {-200.0f, -100.0f, -88.5f, -87.0f, -20.0f, -1.0f, 0.0f, 1.0f, 20.0f, 87.0f, 88.5f,
                            100.0f, 200.0f, -1e30f, 1e30f, 0.25f, -0.25f};
    std::vector<float> u(g.size(), 1.5f);
    y1 = g;
    y2 = g;
    r.swiglu(y1.data(), u.data(), static_cast<int64_t>(g.size()));
    kt->swiglu(y2.data(), u.data(), static_cast<int64_t>(g.size()));
    for (size_t i = 0; i < g.size(); ++i)
      EXPECT_NEAR(y2[i], y1[i], 2e-6 * std::max(1.0f, std::fabs(y1[i]))) << kt->name << " swiglu at " << g[i];
  }
}

TEST(SimdOps, RopeMatchesRefBothModes) {
  auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "this CPU runs only the ref table";
  std::mt19937 rng(77);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::uniform_real_distribution<float> ang(-3.14159f, 3.14159f);
  const KernelTable& r = ref_kernels();
  struct Shape {
    int head_dim, n_rot;
  };
  for (const KernelTable* kt : tables) {
    for (Shape s : {Shape{64, 64}, Shape{128, 128}, Shape{80, 80}, Shape{80, 40}, Shape{64, 32}, Shape{64, 24},
                    Shape{128, 34}, Shape{6, 6}, Shape{34, 34}, Shape{96, 2}, Shape{256, 72}, Shape{66, 64}}) {
      for (RopeMode mode : {RopeMode::kNorm, RopeMode::kNeox}) {
        const int n_head = 3;
        std::vector<float> cs(static_cast<size_t>(s.n_rot));
        for (int i = 0; i + 1 < s.n_rot; i += 2) {
          const float t = ang(rng);
          cs[static_cast<size_t>(i)] = std::cos(t);
          cs[static_cast<size_t>(i) + 1] = std::sin(t);
        }
        std::vector<float> x(static_cast<size_t>(n_head * s.head_dim));
        for (auto& e : x) e = dist(rng);
        std::vector<float> y1 = x, y2 = x;
        r.rope(y1.data(), n_head, s.head_dim, s.n_rot, cs.data(), mode);
        kt->rope(y2.data(), n_head, s.head_dim, s.n_rot, cs.data(), mode);
        EXPECT_LT(max_err(y2, y1), 1e-6) << kt->name << " rope hd " << s.head_dim << " n_rot " << s.n_rot
                                         << (mode == RopeMode::kNorm ? " norm" : " neox");
        // Dims past n_rot are untouched.
        for (int h = 0; h < n_head; ++h)
          for (int d = s.n_rot; d < s.head_dim; ++d) {
            const size_t i = static_cast<size_t>(h * s.head_dim + d);
            ASSERT_EQ(y2[i], x[i]) << kt->name << " rope touched dim " << d;
          }
      }
    }
  }
}

}  // namespace
}  // namespace hearth::kernels
