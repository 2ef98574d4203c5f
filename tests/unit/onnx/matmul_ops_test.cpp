// MatMul and Gemm (ops/matmul.cpp): the f32 GEMM's variants (one per kernel table this CPU
// runs) against its scalar reference on random shapes that cross the tile, strip and k-block
// edges; then the ops themselves against a double-precision numpy-style reference written here
// (1-D promotion, batch broadcasting, transposes, alpha/beta, every broadcast of C), and the
// errors of shapes that do not fit.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/onnx/op_registry.h"
#include "hearth/onnx/ops/matmul.h"

namespace hearth::onnx {
namespace {

std::vector<float> random_floats(std::mt19937& rng, size_t n) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(GemmF32, EveryVariantMatchesTheReferenceOnRandomShapes) {
  ThreadPool pool(2);
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> small(1, 40);
  struct Dims {
    int64_t m, n, k;
  };
  std::vector<Dims> dims = {{1, 1, 1},     {1, 33, 7},    {7, 1, 300},  {8, 32, 256},  {9, 33, 257},
                            {6, 16, 512},  {65, 70, 600}, {3, 100, 5},  {130, 17, 64}, {1, 1000, 300},
                            {3, 2500, 70}, {1, 2049, 40}, {4, 1030, 33}};
  for (int i = 0; i < 20; ++i) dims.push_back({small(rng), small(rng), small(rng)});
  for (const kernels::KernelTable* kt : kernels::available_kernels()) {
    for (const auto& d : dims) {
      for (int variant = 0; variant < 3; ++variant) {
        // 0: row-major A; 1: transposed A (column stride); 2: padded strides of A, B and Y.
        const int64_t pad = variant == 2 ? 3 : 0;
        const int64_t a_ld = (variant == 1 ? d.m : d.k) + pad;
        auto a = random_floats(rng, static_cast<size_t>((variant == 1 ? d.k : d.m) * a_ld));
        const int64_t ldb = d.n + pad, ldy = d.n + pad;
        auto b = random_floats(rng, static_cast<size_t>(d.k * ldb));
        std::vector<float> y(static_cast<size_t>(d.m * ldy), 7.0f), ref(y.size(), 7.0f), ys(y.size(), 7.0f);
        GemmF32 g;
        g.m = d.m, g.n = d.n, g.k = d.k;
        g.a = a.data();
        g.a_row = variant == 1 ? 1 : a_ld;
        g.a_col = variant == 1 ? a_ld : 1;
        g.b = b.data(), g.ldb = ldb;
        g.ldy = ldy;
        g.y = ref.data();
        gemm_f32_ref(g);
        g.y = y.data();
        gemm_f32(g, pool, *kt);
        g.y = ys.data();
        gemm_f32_serial(g, *kt);
        // Error relative to sum_p |a||b| of each output (the rounding scale of any summation order).
        for (int64_t i = 0; i < d.m; ++i) {
          for (int64_t j = 0; j < ldy; ++j) {
            const size_t at = static_cast<size_t>(i * ldy + j);
            if (j >= d.n) {  // the padding is not written
              ASSERT_EQ(y[at], 7.0f);
              ASSERT_EQ(ys[at], 7.0f);
              continue;
            }
            double scale = 1e-30;
            for (int64_t p = 0; p < d.k; ++p) {
              scale += std::fabs(g.a[i * g.a_row + p * g.a_col] * b[static_cast<size_t>(p * ldb + j)]);
            }
            ASSERT_LE(std::fabs(y[at] - ref[at]) / scale, 1e-5)
                << kt->name << " m=" << d.m << " n=" << d.n << " k=" << d.k << " variant " << variant << " at " << i
                << "," << j;
            ASSERT_EQ(y[at], ys[at]) << kt->name << ": threaded and serial differ";
          }
        }
      }
    }
  }
}

// ---- The ops, through the registry ----

struct OpRun {
  ThreadPool pool{2};
  BufferPool buffers;
  int64_t opset = 13;

  Result<std::vector<Tensor>> run(const Node& node, const std::vector<const Tensor*>& in,
                                  const kernels::KernelTable& kt = kernels::active_kernels()) {
    OpFn fn = op_registry().find(node.op_type, opset);
    if (!fn) return make_error(ErrorCode::kNotFound, "no op {}", node.op_type);
    OpContext ctx{pool, buffers, kt, opset};
    std::vector<Tensor> out(node.outputs.size());
    HEARTH_TRY(fn(ctx, node, in, out));
    return out;
  }
};

Node make_node(std::string op) {
  Node n;
  n.op_type = std::move(op);
  n.name = "test";
  n.inputs = {"a", "b"};
  n.outputs = {"y"};
  return n;
}

Tensor random_tensor(std::mt19937& rng, Shape shape) {
  const int64_t n = checked_numel(shape).value();
  auto v = random_floats(rng, static_cast<size_t>(n));
  return Tensor::from_values<float>(std::move(shape), v).value();
}

// numpy.matmul in double, by its definition: promote 1-D, broadcast the batch, drop promoted dims.
std::vector<double> numpy_matmul(const Tensor& A, const Tensor& B, Shape& out_shape) {
  Shape as = A.shape(), bs = B.shape();
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const size_t r = std::max(as.size(), bs.size());
  while (as.size() < r) as.insert(as.begin(), 1);
  while (bs.size() < r) bs.insert(bs.begin(), 1);
  Shape full(r);
  for (size_t i = 0; i + 2 < r; ++i) full[i] = std::max(as[i], bs[i]);
  const int64_t m = as[r - 2], k = as[r - 1], n = bs[r - 1];
  full[r - 2] = m, full[r - 1] = n;
  auto offset = [&](const Shape& s, const Shape& idx, int64_t row, int64_t col) {
    int64_t o = 0;
    for (size_t i = 0; i + 2 < r; ++i) o = o * s[i] + (s[i] == 1 ? 0 : idx[i]);
    return (o * s[r - 2] + row) * s[r - 1] + col;
  };
  int64_t nb = 1;
  for (size_t i = 0; i + 2 < r; ++i) nb *= full[i];
  std::vector<double> y;
  Shape idx(r, 0);
  for (int64_t b = 0; b < nb; ++b) {
    int64_t rem = b;
    for (size_t i = r - 2; i-- > 0;) idx[i] = rem % full[i], rem /= full[i];
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p)
          s += double{A.data<float>()[offset(as, idx, i, p)]} * B.data<float>()[offset(bs, idx, p, j)];
        y.push_back(s);
      }
    }
  }
  out_shape.clear();
  for (size_t i = 0; i + 2 < r; ++i) out_shape.push_back(full[i]);
  if (A.rank() != 1) out_shape.push_back(m);
  if (B.rank() != 1) out_shape.push_back(n);
  if (A.rank() == 1 && B.rank() == 1) out_shape.clear();  // a dot product is a scalar
  return y;
}

void expect_close(const Tensor& y, const Shape& shape, const std::vector<double>& ref, const std::string& what) {
  ASSERT_EQ(y.shape(), shape) << what;
  ASSERT_EQ(static_cast<size_t>(y.numel()), ref.size()) << what;
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_NEAR(y.data<float>()[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << what << " at " << i;
  }
}

TEST(MatMulOp, NumpySemanticsOnRandomShapes) {
  std::mt19937 rng(99);
  OpRun r;
  const std::vector<std::pair<Shape, Shape>> cases = {{{5}, {5}},
                                                      {{5}, {5, 3}},
                                                      {{4, 5}, {5}},
                                                      {{3, 4}, {4, 6}},
                                                      {{2, 3, 4}, {4, 5}},
                                                      {{4, 5}, {2, 5, 3}},
                                                      {{2, 1, 3, 4}, {3, 4, 2}},
                                                      {{1, 3, 4}, {2, 1, 4, 7}},
                                                      {{2, 3, 4}, {2, 4, 5}},
                                                      {{8, 17, 40}, {8, 40, 33}},
                                                      {{3, 0, 4}, {4, 5}},
                                                      {{3, 4}, {4, 0}},
                                                      {{2, 3, 0}, {0, 5}},
                                                      {{70, 300}, {300, 50}},
                                                      {{2, 5}, {3, 5, 1}},
                                                      {{7}, {2, 7, 3}}};
  for (const kernels::KernelTable* kt : kernels::available_kernels()) {
    for (const auto& [sa, sb] : cases) {
      Tensor a = random_tensor(rng, sa), b = random_tensor(rng, sb);
      auto out = r.run(make_node("MatMul"), {&a, &b}, *kt);
      const std::string what = std::string(kt->name) + " " + shape_string(sa) + " x " + shape_string(sb);
      ASSERT_TRUE(out.ok()) << what << ": " << out.status().to_string();
      Shape shape;
      auto ref = numpy_matmul(a, b, shape);
      expect_close((*out)[0], shape, ref, what);
    }
  }
}

TEST(MatMulOp, IntegerTypesAreExact) {
  OpRun r;
  const std::vector<int64_t> av = {1, -2, 3, 4, 5, -6}, bv = {7, 8, -9, 10, 11, 12};
  Tensor a = Tensor::from_values<int64_t>({2, 3}, av).value(), b = Tensor::from_values<int64_t>({3, 2}, bv).value();
  auto out = r.run(make_node("MatMul"), {&a, &b});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const std::vector<int64_t> want = {1 * 7 - 2 * -9 + 3 * 11, 1 * 8 - 2 * 10 + 3 * 12, 4 * 7 + 5 * -9 - 6 * 11,
                                     4 * 8 + 5 * 10 - 6 * 12};
  ASSERT_EQ((*out)[0].shape(), (Shape{2, 2}));
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ((*out)[0].data<int64_t>()[i], want[i]);
}

TEST(MatMulOp, ShapesThatDoNotFitAreErrors) {
  std::mt19937 rng(5);
  OpRun r;
  const std::vector<std::pair<Shape, Shape>> bad = {{{3, 4}, {5, 6}}, {{2, 3, 4}, {3, 4, 5}}, {{4}, {3}}};
  for (const auto& [sa, sb] : bad) {
    Tensor a = random_tensor(rng, sa), b = random_tensor(rng, sb);
    auto out = r.run(make_node("MatMul"), {&a, &b});
    ASSERT_FALSE(out.ok()) << shape_string(sa) << " x " << shape_string(sb);
    EXPECT_EQ(out.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(out.status().message().find("node 'test' (MatMul)"), std::string::npos) << out.status().message();
  }
  Tensor s = Tensor::scalar<float>(1.0f), v = random_tensor(rng, {3});
  EXPECT_FALSE(r.run(make_node("MatMul"), {&s, &v}).ok());
  Tensor i = Tensor::from_values<int64_t>({3}, std::vector<int64_t>{1, 2, 3}).value();
  EXPECT_FALSE(r.run(make_node("MatMul"), {&v, &i}).ok());
}

TEST(GemmOp, TransposesAlphaBetaAndEveryBroadcastOfC) {
  std::mt19937 rng(7);
  OpRun r;
  const int64_t n = 37, k = 21;
  // m <= 4 with transB = 1 and transA = 0 takes the kernel table's matmul; the rest the GEMM.
  for (const int64_t m : {int64_t{1}, int64_t{3}, int64_t{13}}) {
    const std::vector<Shape> c_shapes = {{}, {1}, {n}, {1, n}, {m, 1}, {m, n}, {1, 1}};
    for (const kernels::KernelTable* kt : kernels::available_kernels()) {
      for (int ta = 0; ta < 2; ++ta) {
        for (int tb = 0; tb < 2; ++tb) {
          for (size_t ci = 0; ci <= c_shapes.size(); ++ci) {
            const bool has_c = ci < c_shapes.size();
            Tensor a = random_tensor(rng, ta ? Shape{k, m} : Shape{m, k});
            Tensor b = random_tensor(rng, tb ? Shape{n, k} : Shape{k, n});
            Tensor c = has_c ? random_tensor(rng, c_shapes[ci]) : Tensor();
            Node node = make_node("Gemm");
            node.attrs["transA"].value = int64_t{ta};
            node.attrs["transB"].value = int64_t{tb};
            node.attrs["alpha"].value = 0.5f;
            node.attrs["beta"].value = -2.0f;
            std::vector<const Tensor*> in = {&a, &b};
            if (has_c) in.push_back(&c);
            auto out = r.run(node, in, *kt);
            const std::string what = fmt::format("{} m={} transA={} transB={} C={}", kt->name, m, ta, tb,
                                                 has_c ? shape_string(c_shapes[ci]) : "none");
            ASSERT_TRUE(out.ok()) << what << ": " << out.status().to_string();
            std::vector<double> ref;
            for (int64_t i = 0; i < m; ++i) {
              for (int64_t j = 0; j < n; ++j) {
                double s = 0;
                for (int64_t p = 0; p < k; ++p) {
                  const float av = ta ? a.data<float>()[p * m + i] : a.data<float>()[i * k + p];
                  const float bv = tb ? b.data<float>()[j * k + p] : b.data<float>()[p * n + j];
                  s += double{av} * bv;
                }
                double cv = 0;
                if (has_c) {
                  const Shape& cs = c_shapes[ci];
                  const int64_t cm = cs.size() == 2 ? cs[0] : 1, cn = cs.empty() ? 1 : cs.back();
                  cv = c.data<float>()[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
                }
                ref.push_back(0.5 * s - 2.0 * cv);
              }
            }
            expect_close((*out)[0], {m, n}, ref, what);
          }
        }
      }
    }
  }
}

TEST(GemmOp, BadShapesAreErrors) {
  std::mt19937 rng(8);
  OpRun r;
  Tensor a = random_tensor(rng, {3, 4}), b = random_tensor(rng, {4, 5}), b_bad = random_tensor(rng, {3, 5});
  Tensor c_bad = random_tensor(rng, {3, 4}), c3 = random_tensor(rng, {1, 3, 5}), a3 = random_tensor(rng, {1, 3, 4});
  EXPECT_FALSE(r.run(make_node("Gemm"), {&a, &b_bad}).ok());
  EXPECT_FALSE(r.run(make_node("Gemm"), {&a, &b, &c_bad}).ok());
  EXPECT_FALSE(r.run(make_node("Gemm"), {&a, &b, &c3}).ok());
  EXPECT_FALSE(r.run(make_node("Gemm"), {&a3, &b}).ok());
  r.opset = 9;  // C is required before opset 11
  EXPECT_FALSE(r.run(make_node("Gemm"), {&a, &b}).ok());
}

}  // namespace
}  // namespace hearth::onnx
