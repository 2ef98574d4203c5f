// Finite-difference checks of every backward in hearth/train/ops.h and of a whole tiny model.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <tuple>
#include <vector>

#include "hearth/train/gemm.h"
#include "hearth/train/llama_graph.h"
#include "hearth/train/ops.h"

namespace hearth::train {
namespace {

std::vector<float> randn(size_t n, uint64_t seed, double sd = 1.0) {
  SplitMix64 r{seed};
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(sd * r.normal());
  return v;
}

double weighted_sum(const std::vector<float>& y, const std::vector<float>& r) {
  double s = 0.0;
  for (size_t i = 0; i < y.size(); ++i) s += static_cast<double>(y[i]) * r[i];
  return s;
}

// Compares `analytic` with central differences of f over every element of `x` (or `max_checks`
// evenly spread elements).
void expect_grad(const char* what, std::vector<float>& x, const std::vector<float>& analytic,
                 const std::function<double()>& f, float h = 1e-2f, size_t max_checks = 64) {
  ASSERT_EQ(x.size(), analytic.size());
  const size_t stride = std::max<size_t>(1, x.size() / max_checks);
  for (size_t i = 0; i < x.size(); i += stride) {
    const float keep = x[i];
    x[i] = keep + h;
    const double up = f();
    x[i] = keep - h;
    const double down = f();
    x[i] = keep;
    const double num = (up - down) / (2.0 * h);
    EXPECT_NEAR(analytic[i], num, 2e-3 + 2e-2 * std::fabs(num)) << what << " element " << i;
  }
}

class OpsGrad : public ::testing::Test {
 protected:
  ThreadPool pool{2};
  Ops ops{kernels::active_kernels(), pool};
};

TEST_F(OpsGrad, Linear) {
  // 37 rows: two full column strips of the gemm and a tail; 6 tokens: a 4-row tile and 2 rows.
  const int64_t n = 6, rows = 37, cols = 5;
  auto w = randn(rows * cols, 1), x = randn(n * cols, 2), r = randn(n * rows, 3);
  std::vector<float> y(n * rows), wt(rows * cols);
  auto f = [&] {
    ops.transpose(w.data(), rows, cols, wt.data());
    ops.linear(wt.data(), rows, cols, x.data(), n, y.data());
    return weighted_sum(y, r);
  };
  std::vector<float> dx(n * cols, 0.0f), dw(rows * cols, 0.0f);
  ops.linear_backward(w.data(), rows, cols, x.data(), r.data(), n, dx.data(), dw.data());
  expect_grad("dx", x, dx, f);
  expect_grad("dw", w, dw, f, 1e-2f, 300);
}

TEST(Gemm, MatchesTheScalarLoopOnOddShapes) {
  ThreadPool pool(2);
  for (const auto& [m, n, k] :
       {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {5, 16, 3}, {67, 35, 9}, {4, 48, 130}}) {
    auto x = randn(m * k, 20), b = randn(k * n, 21), y0 = randn(m * n, 22);
    for (bool acc : {false, true}) {
      std::vector<float> ya = y0, yb = y0;
      gemm({m, n, k, x.data(), k, b.data(), n, ya.data(), n, acc}, pool);
      gemm_ref({m, n, k, x.data(), k, b.data(), n, yb.data(), n, acc});
      for (size_t i = 0; i < ya.size(); ++i) ASSERT_NEAR(ya[i], yb[i], 1e-4f * (1 + std::fabs(yb[i]))) << m << "x" << n;
    }
  }
}

TEST_F(OpsGrad, RmsNorm) {
  const int64_t n = 3, d = 6;
  auto x = randn(n * d, 4), w = randn(d, 5), r = randn(n * d, 6);
  std::vector<float> y(n * d);
  auto f = [&] {
    ops.rms_norm(x.data(), w.data(), n, d, 1e-5f, y.data());
    return weighted_sum(y, r);
  };
  std::vector<float> dx(n * d, 0.0f), dw(d, 0.0f);
  ops.rms_norm_backward(x.data(), w.data(), r.data(), n, d, 1e-5f, dx.data(), dw.data());
  expect_grad("dx", x, dx, f);
  expect_grad("dw", w, dw, f);
}

TEST_F(OpsGrad, Rope) {
  const int64_t seq = 4, n = 8;  // two sequences of four positions
  const int heads = 2, hd = 6;
  const auto cs = rope_table(seq, hd, 10000.0f);
  auto x = randn(n * heads * hd, 7), r = randn(n * heads * hd, 8);
  auto f = [&] {
    std::vector<float> y = x;
    ops.rope(y.data(), n, seq, heads, hd, cs);
    return weighted_sum(y, r);
  };
  std::vector<float> dx = r;
  ops.rope_backward(dx.data(), n, seq, heads, hd, cs);
  expect_grad("dx", x, dx, f);
}

TEST_F(OpsGrad, GroupedQueryAttention) {
  const Ops::AttnShape s{2, 3, 4, 2, 4};
  const int64_t n = s.n_seq * s.seq_len, nq = s.n_head * s.head_dim, nkv = s.n_head_kv * s.head_dim;
  auto q = randn(n * nq, 9), k = randn(n * nkv, 10), v = randn(n * nkv, 11), r = randn(n * nq, 12);
  std::vector<float> probs(s.n_seq * s.n_head * s.seq_len * s.seq_len), out(n * nq);
  auto f = [&] {
    ops.attention(s, q.data(), k.data(), v.data(), probs.data(), out.data());
    return weighted_sum(out, r);
  };
  f();
  std::vector<float> dq(n * nq, 0.0f), dk(n * nkv, 0.0f), dv(n * nkv, 0.0f);
  ops.attention_backward(s, q.data(), k.data(), v.data(), probs.data(), r.data(), dq.data(), dk.data(), dv.data());
  expect_grad("dq", q, dq, f);
  expect_grad("dk", k, dk, f);
  expect_grad("dv", v, dv, f);
}

TEST_F(OpsGrad, SwiGlu) {
  const int64_t n = 10;
  auto g = randn(n, 13), u = randn(n, 14), r = randn(n, 15);
  std::vector<float> h(n);
  auto f = [&] {
    ops.swiglu(g.data(), u.data(), n, h.data());
    return weighted_sum(h, r);
  };
  std::vector<float> dg(n, 0.0f), du(n, 0.0f);
  ops.swiglu_backward(g.data(), u.data(), r.data(), n, dg.data(), du.data());
  expect_grad("dg", g, dg, f);
  expect_grad("du", u, du, f);
}

TEST_F(OpsGrad, CrossEntropy) {
  const int64_t n = 3, nv = 7;
  auto z = randn(n * nv, 16);
  const std::vector<int32_t> targets = {0, 6, 3};
  auto f = [&] {
    std::vector<float> c = z;
    return ops.cross_entropy(c.data(), targets.data(), n, nv, 0.0f);
  };
  std::vector<float> dz = z;
  ops.cross_entropy(dz.data(), targets.data(), n, nv, 1.0f);
  expect_grad("dlogits", z, dz, f);
}

TEST_F(OpsGrad, CrossEntropySkipsMaskedTargets) {
  const int64_t nv = 5;
  auto z = randn(2 * nv, 17);
  const std::vector<int32_t> both = {3, 1}, masked = {3, -1};
  std::vector<float> a = z, b = z;
  const double la = ops.cross_entropy(a.data(), both.data(), 2, nv, 1.0f);
  const double lb = ops.cross_entropy(b.data(), masked.data(), 2, nv, 1.0f);
  std::vector<float> c = z;
  const double first = ops.cross_entropy(c.data(), both.data(), 1, nv, 0.0f);
  EXPECT_NEAR(lb, first, 1e-9);
  EXPECT_GT(la, lb);
  for (int64_t i = 0; i < nv; ++i) {
    EXPECT_EQ(b[i], a[i]);       // the trained row's gradient is unchanged
    EXPECT_EQ(b[nv + i], 0.0f);  // the masked row has none
  }
}

TEST_F(OpsGrad, DistillationLoss) {
  const int64_t n = 3, nv = 6;
  auto z = randn(n * nv, 18), teacher = randn(n * nv, 19);
  const std::vector<int32_t> targets = {2, -1, 5};
  auto f = [&] {
    std::vector<float> c = z;
    return ops.distill_loss(c.data(), teacher.data(), targets.data(), n, nv, 2.0f, 0.7f, 0.0f);
  };
  std::vector<float> dz = z;
  ops.distill_loss(dz.data(), teacher.data(), targets.data(), n, nv, 2.0f, 0.7f, 1.0f);
  expect_grad("dlogits", z, dz, f);
  // The student equal to the teacher has no KL: with alpha = 1 the loss is 0.
  std::vector<float> same = teacher;
  EXPECT_NEAR(ops.distill_loss(same.data(), teacher.data(), targets.data(), n, nv, 2.0f, 1.0f, 0.0f), 0.0, 1e-9);
}

// The whole model: every tensor of a tiny Llama (GQA, untied output), checked element-wise.
void check_model(bool tied) {
  LlamaShape s;
  s.n_vocab = 11, s.n_ctx = 5, s.n_embd = 8, s.n_layer = 2, s.n_head = 2, s.n_head_kv = 1, s.n_ff = 12;
  s.tied_output = tied;
  LlamaParams p(s);
  std::vector<float> w;
  init_params(p, w, 42);
  // Larger weights than the training init, so that every path carries a visible gradient.
  SplitMix64 rng{7};
  for (float& x : w) x += static_cast<float>(0.3 * rng.normal());
  ThreadPool pool(1);  // the op tests cover threading; one thread keeps the ~500 passes quick
  Ops ops(kernels::active_kernels(), pool);
  LlamaGraph g(p, ops);
  const std::vector<int32_t> windows = {1, 5, 2, 9, 3, 7, 0, 4, 4, 10, 6, 2};  // 2 x (5 + 1)
  std::vector<float> grad(w.size(), 0.0f);
  g.step(w.data(), windows.data(), 2, 5, grad.data(), 1.0f);
  auto f = [&] { return g.step(w.data(), windows.data(), 2, 5, nullptr, 0.0f); };
  for (const ParamTensor& t : p.tensors()) {
    std::vector<float> slice(w.begin() + t.offset, w.begin() + t.offset + t.size);
    std::vector<float> an(grad.begin() + t.offset, grad.begin() + t.offset + t.size);
    // Perturb the real weights through a view of the slice.
    const size_t stride = std::max<size_t>(1, t.size / 8);
    for (size_t i = 0; i < t.size; i += stride) {
      float& x = w[t.offset + i];
      const float keep = x, h = 2e-3f;
      x = keep + h;
      const double up = f();
      x = keep - h;
      const double down = f();
      x = keep;
      const double num = (up - down) / (2.0 * h);
      EXPECT_NEAR(an[i], num, 3e-3 + 3e-2 * std::fabs(num)) << t.name << " element " << i;
    }
  }
}

TEST(ModelGrad, TinyLlamaUntied) { check_model(false); }
TEST(ModelGrad, TinyLlamaTied) { check_model(true); }

}  // namespace
}  // namespace hearth::train
