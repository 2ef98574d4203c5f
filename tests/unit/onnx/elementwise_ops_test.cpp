// ONNX elementwise ops through the registry: the spec's examples (values derived by hand or
// from the formulas in double), broadcasting, the broadcast fast paths against a scalar
// reference on random shapes, and bad inputs.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "hearth/kernels/fp16.h"
#include "hearth/onnx/ops/vec_math.h"
#include "op_test_helpers.h"

namespace hearth::onnx::test {
namespace {

// Reference broadcasting, by definition: the input element of output element `flat`.
int64_t ref_offset(const Shape& out, const Shape& in, int64_t flat) {
  std::vector<int64_t> idx(out.size());
  for (size_t d = out.size(); d-- > 0;) {
    idx[d] = flat % out[d];
    flat /= out[d];
  }
  int64_t off = 0;
  const size_t lead = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d) off = off * in[d] + (in[d] == 1 ? 0 : idx[lead + d]);
  return off;
}

void expect_near_all(const std::vector<float>& got, const std::vector<double>& want, double tol = 1e-5) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

TEST(ElementwiseOps, AddSubMulDivSameShape) {
  OpRunner r;
  Tensor a = ftensor({2, 2}, {1, 2, 3, 4}), b = ftensor({2, 2}, {5, 6, 7, 8});
  EXPECT_EQ(vals<float>(r.run1(make_node("Add", 2), 13, {a, b})), (std::vector<float>{6, 8, 10, 12}));
  EXPECT_EQ(vals<float>(r.run1(make_node("Sub", 2), 13, {a, b})), (std::vector<float>{-4, -4, -4, -4}));
  EXPECT_EQ(vals<float>(r.run1(make_node("Mul", 2), 13, {a, b})), (std::vector<float>{5, 12, 21, 32}));
  EXPECT_EQ(vals<float>(r.run1(make_node("Div", 2), 13, {b, a})), (std::vector<float>{5, 3, 7.0f / 3, 2}));
}

TEST(ElementwiseOps, Broadcasting) {
  OpRunner r;
  // [2,3] + [3]: the row repeats.
  Tensor o = r.run1(make_node("Add", 2), 14, {ftensor({2, 3}, {0, 1, 2, 3, 4, 5}), ftensor({3}, {10, 20, 30})});
  EXPECT_EQ(o.shape(), (Shape{2, 3}));
  EXPECT_EQ(vals<float>(o), (std::vector<float>{10, 21, 32, 13, 24, 35}));
  // [2,1] * [1,3] -> [2,3] (both sides broadcast).
  o = r.run1(make_node("Mul", 2), 14, {ftensor({2, 1}, {2, 3}), ftensor({1, 3}, {1, 10, 100})});
  EXPECT_EQ(o.shape(), (Shape{2, 3}));
  EXPECT_EQ(vals<float>(o), (std::vector<float>{2, 20, 200, 3, 30, 300}));
  // a scalar on either side.
  o = r.run1(make_node("Sub", 2), 14, {ftensor({}, {1}), ftensor({3}, {1, 2, 3})});
  EXPECT_EQ(vals<float>(o), (std::vector<float>{0, -1, -2}));
  o = r.run1(make_node("Div", 2), 14, {ftensor({3}, {2, 4, 6}), ftensor({1}, {2})});
  EXPECT_EQ(vals<float>(o), (std::vector<float>{1, 2, 3}));
  // a zero-size dim broadcasts with 1.
  o = r.run1(make_node("Add", 2), 14, {ftensor({0, 3}, {}), ftensor({1, 3}, {1, 2, 3})});
  EXPECT_EQ(o.shape(), (Shape{0, 3}));
}

TEST(ElementwiseOps, RandomShapesAgainstScalarReference) {
  OpRunner r;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> rank_d(0, 5), dim_d(1, 5), coin(0, 2);
  for (int iter = 0; iter < 300; ++iter) {
    const int rank = rank_d(rng);
    Shape out(rank);
    for (auto& d : out) d = dim_d(rng);
    // Each input: a suffix of the output's dims, some set to 1.
    auto derive = [&] {
      Shape s(out.begin() + std::uniform_int_distribution<int>(0, rank)(rng), out.end());
      for (auto& d : s) if (coin(rng) == 0) d = 1;
      return s;
    };
    Shape sa = derive(), sb = derive(), sc = derive();
    // The output is the broadcast of the inputs: the longest rank, each dim the max (the
    // inputs were derived so that every dim is 1 or the same size).
    auto bshape = [](std::initializer_list<const Shape*> shapes) {
      size_t n = 0;
      for (const Shape* s : shapes) n = std::max(n, s->size());
      Shape w(n, 1);
      for (const Shape* s : shapes) {
        for (size_t d = 0; d < s->size(); ++d) w[n - s->size() + d] = std::max(w[n - s->size() + d], (*s)[d]);
      }
      return w;
    };
    const Shape want = bshape({&sa, &sb});
    Tensor a = random_tensor(rng, sa), b = random_tensor(rng, sb, 0.5f, 2.0f);
    const char* ops[] = {"Add", "Sub", "Mul", "Div", "Max", "Pow"};
    const char* op = ops[iter % 6];
    Tensor ap = a;
    if (std::string(op) == "Pow") ap = random_tensor(rng, sa, 0.1f, 2.0f);
    Tensor o = r.run1(make_node(op, 2), 14, {ap, b});
    ASSERT_EQ(o.shape(), want) << op << " " << shape_string(sa) << " " << shape_string(sb);
    for (int64_t i = 0; i < o.numel(); ++i) {
      const double x = ap.data<float>()[ref_offset(want, sa, i)], y = b.data<float>()[ref_offset(want, sb, i)];
      double e = 0;
      switch (iter % 6) {
        case 0: e = x + y; break;
        case 1: e = x - y; break;
        case 2: e = x * y; break;
        case 3: e = x / y; break;
        case 4: e = std::max(x, y); break;
        case 5: e = std::pow(x, y); break;
      }
      ASSERT_NEAR(o.data<float>()[i], e, 1e-5 * std::max(1.0, std::abs(e))) << op << " at " << i;
    }
    // Where with three broadcast inputs.
    Tensor c = Tensor::make(DType::kBool, sc).value();
    for (auto& v : c.mutable_values<uint8_t>()) v = static_cast<uint8_t>(coin(rng) == 0);
    const Shape w3 = bshape({&sa, &sb, &sc});
    Tensor w = r.run1(make_node("Where", 3), 16, {c, a, b});
    ASSERT_EQ(w.shape(), w3);
    for (int64_t i = 0; i < w.numel(); ++i) {
      const float e = c.data<uint8_t>()[ref_offset(w3, sc, i)] ? a.data<float>()[ref_offset(w3, sa, i)]
                                                               : b.data<float>()[ref_offset(w3, sb, i)];
      ASSERT_EQ(w.data<float>()[i], e) << "Where at " << i;
    }
  }
}

TEST(ElementwiseOps, IntegerArithmetic) {
  OpRunner r;
  // Division truncates toward zero (C, not numpy's floor).
  Tensor a = tensor<int32_t>({4}, {7, -7, 7, std::numeric_limits<int32_t>::min()});
  Tensor b = tensor<int32_t>({4}, {2, 2, -2, -1});
  EXPECT_EQ(vals<int32_t>(r.run1(make_node("Div", 2), 14, {a, b})),
            (std::vector<int32_t>{3, -3, -3, std::numeric_limits<int32_t>::min()}));
  // int64 addition wraps.
  Tensor big = itensor({1}, {std::numeric_limits<int64_t>::max()});
  EXPECT_EQ(vals<int64_t>(r.run1(make_node("Add", 2), 14, {big, itensor({1}, {1})})),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::min()}));
  EXPECT_EQ(vals<int64_t>(r.run1(make_node("Mul", 2), 14, {itensor({2, 1}, {3, 4}), itensor({2}, {-1, 5})})),
            (std::vector<int64_t>{-3, 15, -4, 20}));
  expect_error(r.run(make_node("Div", 2), 14, {a, tensor<int32_t>({1}, {0})}), "division by zero");
  // Mod (spec examples): fmod=0 takes the divisor's sign; fmod=1 is C's fmod.
  Tensor x = tensor<int32_t>({6}, {-4, 7, 5, 4, -7, 8}), y = tensor<int32_t>({6}, {2, -3, 8, -2, 3, 5});
  EXPECT_EQ(vals<int32_t>(r.run1(make_node("Mod", 2), 13, {x, y})), (std::vector<int32_t>{0, -2, 5, 0, 2, 3}));
  Node fm = make_node("Mod", 2);
  set_attr<int64_t>(fm, "fmod", 1);
  EXPECT_EQ(vals<int32_t>(r.run1(fm, 13, {x, y})), (std::vector<int32_t>{0, 1, 5, 0, -1, 3}));
  expect_near_all(vals<float>(r.run1(fm, 13, {ftensor({3}, {-4.3f, 7.2f, 5.0f}), ftensor({3}, {2.1f, -3.4f, 8.0f})})),
                  {std::fmod(-4.3f, 2.1f), std::fmod(7.2f, -3.4f), 5.0});
}

TEST(ElementwiseOps, PowTypes) {
  OpRunner r;
  // Spec: pow([1,2,3], [4,5,6]) = [1,32,729]; a broadcast exponent 2; int64 base, float exponent.
  EXPECT_EQ(vals<float>(r.run1(make_node("Pow", 2), 15, {ftensor({3}, {1, 2, 3}), ftensor({3}, {4, 5, 6})})),
            (std::vector<float>{1, 32, 729}));
  EXPECT_EQ(vals<float>(r.run1(make_node("Pow", 2), 15, {ftensor({3}, {1, -2, 3}), ftensor({}, {2})})),
            (std::vector<float>{1, 4, 9}));
  EXPECT_EQ(vals<float>(r.run1(make_node("Pow", 2), 15, {ftensor({2}, {4, 9}), itensor({1}, {2})})),
            (std::vector<float>{16, 81}));
  Tensor o = r.run1(make_node("Pow", 2), 15, {itensor({3}, {1, 2, 3}), ftensor({3}, {4, 5, 6})});
  EXPECT_EQ(o.dtype(), DType::kInt64);
  EXPECT_EQ(vals<int64_t>(o), (std::vector<int64_t>{1, 32, 729}));
}

TEST(ElementwiseOps, ComparisonsAndLogic) {
  OpRunner r;
  Tensor a = ftensor({4}, {1, 2, 3, NAN}), b = ftensor({4}, {2, 2, 2, 2});
  EXPECT_EQ(vals<uint8_t>(r.run1(make_node("Equal", 2), 13, {a, b})), (std::vector<uint8_t>{0, 1, 0, 0}));
  EXPECT_EQ(vals<uint8_t>(r.run1(make_node("Less", 2), 13, {a, b})), (std::vector<uint8_t>{1, 0, 0, 0}));
  EXPECT_EQ(vals<uint8_t>(r.run1(make_node("Greater", 2), 13, {a, b})), (std::vector<uint8_t>{0, 0, 1, 0}));
  EXPECT_EQ(vals<uint8_t>(r.run1(make_node("LessOrEqual", 2), 16, {a, b})), (std::vector<uint8_t>{1, 1, 0, 0}));
  EXPECT_EQ(vals<uint8_t>(r.run1(make_node("GreaterOrEqual", 2), 16, {a, b})), (std::vector<uint8_t>{0, 1, 1, 0}));
  EXPECT_EQ(r.run1(make_node("Equal", 2), 13, {itensor({2}, {5, 6}), itensor({}, {6})}).dtype(), DType::kBool);
  Tensor p = btensor({4}, {0, 0, 1, 1}), q = btensor({4}, {0, 1, 0, 1});
  EXPECT_EQ(vals<uint8_t>(r.run1(make_node("And", 2), 7, {p, q})), (std::vector<uint8_t>{0, 0, 0, 1}));
  EXPECT_EQ(vals<uint8_t>(r.run1(make_node("Or", 2), 7, {p, q})), (std::vector<uint8_t>{0, 1, 1, 1}));
  EXPECT_EQ(vals<uint8_t>(r.run1(make_node("Xor", 2), 7, {p, q})), (std::vector<uint8_t>{0, 1, 1, 0}));
  EXPECT_EQ(vals<uint8_t>(r.run1(make_node("Not", 1), 7, {p})), (std::vector<uint8_t>{1, 1, 0, 0}));
  EXPECT_EQ(vals<uint8_t>(r.run1(make_node("Equal", 2), 13, {p, q})), (std::vector<uint8_t>{1, 0, 0, 1}));
  // Where (spec example).
  Tensor w = r.run1(make_node("Where", 3), 16,
                    {btensor({2, 2}, {1, 0, 1, 1}), ftensor({2, 2}, {1, 2, 3, 4}), ftensor({2, 2}, {9, 8, 7, 6})});
  EXPECT_EQ(vals<float>(w), (std::vector<float>{1, 8, 3, 4}));
  expect_error(r.run(make_node("And", 2), 7, {a, b}), "bool");
}

TEST(ElementwiseOps, Variadic) {
  OpRunner r;
  // Spec examples.
  Tensor d0 = ftensor({3}, {3, 2, 1}), d1 = ftensor({3}, {1, 4, 4}), d2 = ftensor({3}, {2, 5, 3});
  EXPECT_EQ(vals<float>(r.run1(make_node("Max", 3), 13, {d0, d1, d2})), (std::vector<float>{3, 5, 4}));
  EXPECT_EQ(vals<float>(r.run1(make_node("Min", 3), 13, {d0, d1, d2})), (std::vector<float>{1, 2, 1}));
  EXPECT_EQ(vals<float>(r.run1(make_node("Sum", 3), 13, {d0, d1, d2})), (std::vector<float>{6, 11, 8}));
  expect_near_all(vals<float>(r.run1(make_node("Mean", 3), 13, {d0, d1, d2})), {2, 11.0 / 3, 8.0 / 3});
  EXPECT_EQ(vals<float>(r.run1(make_node("Sum", 1), 13, {d0})), (std::vector<float>{3, 2, 1}));
  // Broadcast across the inputs: [3] with [2,1].
  Tensor o = r.run1(make_node("Max", 2), 13, {d0, ftensor({2, 1}, {2, 0})});
  EXPECT_EQ(o.shape(), (Shape{2, 3}));
  EXPECT_EQ(vals<float>(o), (std::vector<float>{3, 2, 2, 3, 2, 1}));
  EXPECT_EQ(vals<int32_t>(r.run1(make_node("Min", 2), 13, {tensor<int32_t>({2}, {1, -5}), tensor<int32_t>({1}, {0})})),
            (std::vector<int32_t>{0, -5}));
  // NaN propagates (numpy.maximum).
  EXPECT_TRUE(std::isnan(vals<float>(r.run1(make_node("Max", 2), 13, {ftensor({1}, {1}), ftensor({1}, {NAN})}))[0]));
}

TEST(ElementwiseOps, UnaryMath) {
  OpRunner r;
  Tensor x = ftensor({3}, {-1, 0, 1});
  auto run = [&](Node n, int64_t opset = 13) { return vals<float>(r.run1(n, opset, {x})); };
  expect_near_all(run(make_node("Relu", 1)), {0, 0, 1});
  expect_near_all(run(make_node("Neg", 1)), {1, 0, -1});
  expect_near_all(run(make_node("Abs", 1)), {1, 0, 1});
  expect_near_all(run(make_node("Exp", 1)), {std::exp(-1.0), 1, std::exp(1.0)});
  expect_near_all(run(make_node("Sigmoid", 1)), {1 / (1 + std::exp(1.0)), 0.5, 1 / (1 + std::exp(-1.0))});
  expect_near_all(run(make_node("Tanh", 1)), {std::tanh(-1.0), 0, std::tanh(1.0)});
  expect_near_all(run(make_node("Erf", 1)), {std::erf(-1.0), 0, std::erf(1.0)});
  expect_near_all(run(make_node("Softplus", 1)), {std::log(1 + std::exp(-1.0)), std::log(2.0), std::log(1 + std::exp(1.0))});
  expect_near_all(run(make_node("HardSwish", 1), 14), {-1 * (1 / 6.0 * -1 + 0.5), 0, 1 * (1 / 6.0 + 0.5)});
  Node n = make_node("LeakyRelu", 1);
  set_attr(n, "alpha", 0.1f);
  expect_near_all(run(n), {-0.1, 0, 1});
  n = make_node("HardSigmoid", 1);
  set_attr(n, "alpha", 0.5f);
  set_attr(n, "beta", 0.6f);
  expect_near_all(run(n), {0.1, 0.6, 1});
  n = make_node("Elu", 1);
  set_attr(n, "alpha", 2.0f);
  expect_near_all(run(n), {2 * (std::exp(-1.0) - 1), 0, 1});
  n = make_node("Selu", 1);
  set_attr(n, "alpha", 2.0f);
  set_attr(n, "gamma", 3.0f);
  expect_near_all(run(n), {3 * (2 * std::exp(-1.0) - 2), 0, 3});
  n = make_node("Gelu", 1);
  expect_near_all(run(n, 20), {-0.5 * (1 + std::erf(-1 / std::sqrt(2.0))), 0, 0.5 * (1 + std::erf(1 / std::sqrt(2.0)))});
  set_attr<std::string>(n, "approximate", "tanh");
  const double k = std::sqrt(2 / M_PI);
  expect_near_all(run(n, 20), {-0.5 * (1 + std::tanh(k * (-1 - 0.044715))), 0, 0.5 * (1 + std::tanh(k * (1 + 0.044715)))});
  expect_near_all(vals<float>(r.run1(make_node("Sqrt", 1), 13, {ftensor({2}, {4, 2})})), {2, std::sqrt(2.0)});
  expect_near_all(vals<float>(r.run1(make_node("Log", 1), 13, {ftensor({2}, {1, 10})})), {0, std::log(10.0)});
  expect_near_all(vals<float>(r.run1(make_node("Reciprocal", 1), 13, {ftensor({2}, {-4, 2})})), {-0.25, 0.5});
  expect_near_all(vals<float>(r.run1(make_node("Floor", 1), 13, {ftensor({3}, {-1.5f, 1.2f, 2})})), {-2, 1, 2});
  expect_near_all(vals<float>(r.run1(make_node("Ceil", 1), 13, {ftensor({3}, {-1.5f, 1.2f, 2})})), {-1, 2, 2});
  // Integer Abs / Neg / Relu.
  EXPECT_EQ(vals<int32_t>(r.run1(make_node("Abs", 1), 13, {tensor<int32_t>({2}, {-3, 4})})), (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(vals<int64_t>(r.run1(make_node("Neg", 1), 13, {itensor({2}, {-3, 4})})), (std::vector<int64_t>{3, -4}));
  EXPECT_EQ(vals<int32_t>(r.run1(make_node("Relu", 1), 14, {tensor<int32_t>({2}, {-3, 4})})), (std::vector<int32_t>{0, 4}));
  // PRelu: slope [2,1] broadcast over X [2,2]; a slope bigger than X is refused.
  Tensor p = r.run1(make_node("PRelu", 2), 16, {ftensor({2, 2}, {-1, 2, -3, 4}), ftensor({2, 1}, {0.5f, 0.25f})});
  expect_near_all(vals<float>(p), {-0.5, 2, -0.75, 4});
  expect_error(r.run(make_node("PRelu", 2), 16, {ftensor({2}, {1, 2}), ftensor({2, 2}, {1, 2, 3, 4})}), "does not broadcast");
}

TEST(ElementwiseOps, Clip) {
  OpRunner r;
  Tensor x = ftensor({5}, {-2, -1, 0, 1, NAN});
  Node old = make_node("Clip", 1);
  set_attr(old, "min", -1.0f);
  set_attr(old, "max", 0.5f);
  auto o = vals<float>(r.run1(old, 6, {x}));
  EXPECT_EQ(std::vector<float>(o.begin(), o.begin() + 4), (std::vector<float>{-1, -1, 0, 0.5f}));
  EXPECT_TRUE(std::isnan(o[4]));
  // Opset 11+: optional inputs (max only here, min omitted).
  o = vals<float>(r.run1(make_node("Clip", 3), 13, {x, Tensor(), ftensor({}, {0.5f})}));
  EXPECT_EQ(std::vector<float>(o.begin(), o.begin() + 4), (std::vector<float>{-2, -1, 0, 0.5f}));
  // min > max: everything becomes max.
  o = vals<float>(r.run1(make_node("Clip", 3), 13, {x, ftensor({}, {2}), ftensor({}, {1})}));
  EXPECT_EQ(std::vector<float>(o.begin(), o.begin() + 4), (std::vector<float>{1, 1, 1, 1}));
  EXPECT_EQ(vals<int32_t>(r.run1(make_node("Clip", 3), 13,
                                 {tensor<int32_t>({3}, {-5, 3, 9}), tensor<int32_t>({}, {0}), tensor<int32_t>({}, {6})})),
            (std::vector<int32_t>{0, 3, 6}));
  expect_error(r.run(make_node("Clip", 3), 13, {x, ftensor({2}, {0, 1}), Tensor()}), "scalar");
}

TEST(ElementwiseOps, Cast) {
  OpRunner r;
  auto cast = [&](const Tensor& t, DType to) {
    Node n = make_node("Cast", 1);
    set_attr<int64_t>(n, "to", static_cast<int64_t>(to));
    return r.run1(n, 13, {t});
  };
  // float -> int truncates toward zero; out of range saturates, NaN is 0 (undefined in the spec).
  Tensor f = ftensor({5}, {1.9f, -1.9f, 3e10f, -3e10f, NAN});
  EXPECT_EQ(vals<int32_t>(cast(f, DType::kInt32)),
            (std::vector<int32_t>{1, -1, std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min(), 0}));
  EXPECT_EQ(vals<int64_t>(cast(ftensor({2}, {-0.5f, 7.99f}), DType::kInt64)), (std::vector<int64_t>{0, 7}));
  EXPECT_EQ(vals<uint8_t>(cast(ftensor({3}, {0, -0.0f, 0.1f}), DType::kBool)), (std::vector<uint8_t>{0, 0, 1}));
  EXPECT_EQ(vals<float>(cast(btensor({2}, {1, 0}), DType::kFloat)), (std::vector<float>{1, 0}));
  EXPECT_EQ(vals<double>(cast(itensor({2}, {-3, 1 << 30}), DType::kDouble)), (std::vector<double>{-3, 1 << 30}));
  EXPECT_EQ(vals<int8_t>(cast(tensor<uint8_t>({2}, {200, 5}), DType::kInt8)), (std::vector<int8_t>{-56, 5}));
  // float16: 1 + 2^-11 is halfway between two halves and rounds to even (1.0); 65504 is the max.
  Tensor h = cast(ftensor({4}, {1.0f + 0x1p-11f, 65504.0f, 1e6f, -2.5f}), DType::kFloat16);
  EXPECT_EQ(vals<uint16_t>(h), (std::vector<uint16_t>{0x3c00, 0x7bff, 0x7c00, 0xc100}));
  EXPECT_EQ(vals<float>(cast(h, DType::kFloat)), (std::vector<float>{1.0f, 65504.0f, INFINITY, -2.5f}));
  EXPECT_EQ(vals<int32_t>(cast(h, DType::kInt32))[3], -2);
  Tensor bf = cast(ftensor({1}, {1.5f}), DType::kBFloat16);
  EXPECT_EQ(vals<uint16_t>(bf), (std::vector<uint16_t>{0x3fc0}));
  // Same type: the same bytes (a view).
  Tensor same = cast(f, DType::kFloat);
  EXPECT_EQ(same.raw(), f.raw());
  Node bad = make_node("Cast", 1);
  set_attr<int64_t>(bad, "to", 8);
  expect_error(r.run(bad, 13, {f}), "not supported");
  Node like = make_node("CastLike", 2);
  EXPECT_EQ(r.run1(like, 15, {f, itensor({}, {0})}).dtype(), DType::kInt64);
}

TEST(ElementwiseOps, IdentityAndDropoutAreViews) {
  OpRunner r;
  Tensor x = ftensor({2}, {1, 2});
  EXPECT_EQ(r.run1(make_node("Identity", 1), 13, {x}).raw(), x.raw());
  auto d = r.run(make_node("Dropout", 1, 2), 13, {x});
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d.value()[0].raw(), x.raw());
  EXPECT_EQ(d.value()[1].dtype(), DType::kBool);
  EXPECT_EQ(vals<uint8_t>(d.value()[1]), (std::vector<uint8_t>{1, 1}));
  Tensor ratio = ftensor({}, {0.5f});
  Tensor training = btensor({}, {1});
  expect_error(r.run(make_node("Dropout", 3), 13, {x, ratio, training}), "training");
}

TEST(ElementwiseOps, Float16ComputedThroughFloat) {
  OpRunner r;
  auto half = [](std::vector<float> v) {
    Tensor t = Tensor::make(DType::kFloat16, {static_cast<int64_t>(v.size())}).value();
    for (size_t i = 0; i < v.size(); ++i) t.data<uint16_t>()[i] = kernels::fp32_to_fp16(v[i]);
    return t;
  };
  Tensor o = r.run1(make_node("Add", 2), 14, {half({1.5f, -2.0f}), half({2.25f, 0.5f})});
  ASSERT_EQ(o.dtype(), DType::kFloat16);
  EXPECT_EQ(vals<uint16_t>(o), (std::vector<uint16_t>{kernels::fp32_to_fp16(3.75f), kernels::fp32_to_fp16(-1.5f)}));
  o = r.run1(make_node("Max", 3), 13, {half({1, 5}), half({3, 2}), half({2, 4})});
  EXPECT_EQ(vals<uint16_t>(o), (std::vector<uint16_t>{kernels::fp32_to_fp16(3), kernels::fp32_to_fp16(5)}));
  Tensor b = r.run1(make_node("Less", 2), 13, {half({1, 5}), half({3, 2})});
  EXPECT_EQ(b.dtype(), DType::kBool);
  EXPECT_EQ(vals<uint8_t>(b), (std::vector<uint8_t>{1, 0}));
  // Pow: a float base with an unsigned exponent keeps the base's type.
  EXPECT_EQ(vals<float>(r.run1(make_node("Pow", 2), 15, {ftensor({2}, {2, 3}), tensor<uint32_t>({2}, {3, 2})})),
            (std::vector<float>{8, 9}));
}

TEST(ElementwiseOps, BadInputs) {
  OpRunner r;
  expect_error(r.run(make_node("Add", 2), 13, {ftensor({2, 3}, {1, 2, 3, 4, 5, 6}), ftensor({4}, {1, 2, 3, 4})}),
               "cannot be broadcast");
  expect_error(r.run(make_node("Add", 2), 13, {ftensor({2}, {1, 2}), itensor({2}, {1, 2})}), "int64");
  // [2^20,1] + [1,2^20] would be 2^40 elements.
  Tensor tall = Tensor::make(DType::kFloat, {1 << 20, 1}).value();
  Tensor wide = Tensor::make(DType::kFloat, {1, 1 << 20}).value();
  expect_error(r.run(make_node("Mul", 2), 13, {tall, wide}), "elements");
  expect_error(r.run(make_node("Sqrt", 1), 13, {itensor({1}, {4})}), "int64");
  expect_error(r.run(make_node("Add", 2), 13, std::vector<const Tensor*>{&tall}), "inputs");
}

TEST(ElementwiseOps, BitShiftAndShrink) {
  OpRunner r;
  Node l = make_node("BitShift", 2);
  set_attr<std::string>(l, "direction", "LEFT");
  EXPECT_EQ(vals<uint8_t>(r.run1(l, 11, {tensor<uint8_t>({3}, {16, 4, 1}), tensor<uint8_t>({3}, {1, 2, 8})})),
            (std::vector<uint8_t>{32, 16, 0}));
  Node rt = make_node("BitShift", 2);
  set_attr<std::string>(rt, "direction", "RIGHT");
  EXPECT_EQ(vals<uint32_t>(r.run1(rt, 11, {tensor<uint32_t>({3}, {16, 4, 1}), tensor<uint32_t>({1}, {2})})),
            (std::vector<uint32_t>{4, 1, 0}));
  expect_error(r.run(l, 11, {tensor<int32_t>({1}, {1}), tensor<int32_t>({1}, {1})}), "int32");
  // Shrink (spec): lambd 1.5 with and without bias.
  Node s = make_node("Shrink", 1);
  set_attr(s, "lambd", 1.5f);
  Tensor x = ftensor({5}, {-2, -1, 0, 1, 2});
  EXPECT_EQ(vals<float>(r.run1(s, 11, {x})), (std::vector<float>{-2, 0, 0, 0, 2}));
  set_attr(s, "bias", 1.5f);
  EXPECT_EQ(vals<float>(r.run1(s, 11, {x})), (std::vector<float>{-0.5f, 0, 0, 0, 0.5f}));
}

// Distance in units in the last place between two floats of the same sign (or zero).
int64_t ulps(float a, float b) {
  auto key = [](float f) {
    const int32_t i = std::bit_cast<int32_t>(f);
    return i < 0 ? int64_t{INT32_MIN} - i : int64_t{i};
  };
  return std::abs(key(a) - key(b));
}

TEST(ElementwiseOps, VectorMathAgainstDoublePrecision) {
  // A dense sweep over exp's whole range (and past both ends), every result against the
  // correctly rounded double value.
  int64_t worst_exp = 0, worst_sig = 0, worst_tanh = 0;
  for (float x = -110.0f; x < 95.0f; x += 0.001953125f * 3.1f) {
    const float e = static_cast<float>(std::exp(static_cast<double>(x)));
    const float got = exp_approx(x);
    if (e >= std::numeric_limits<float>::min()) {
      worst_exp = std::max(worst_exp, ulps(got, e));
    } else {
      ASSERT_LE(std::abs(got - e), 2 * std::numeric_limits<float>::denorm_min()) << x;  // subnormal: absolute
    }
    const float s = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(x))));
    if (s >= std::numeric_limits<float>::min()) worst_sig = std::max(worst_sig, ulps(sigmoid_approx(x), s));
    if (std::abs(x) < 20) {
      const float t = static_cast<float>(std::tanh(static_cast<double>(x)));
      worst_tanh = std::max(worst_tanh, ulps(tanh_approx(x), t));
    }
  }
  EXPECT_LE(worst_exp, 3);
  EXPECT_LE(worst_sig, 4);
  EXPECT_LE(worst_tanh, 4);
  // Small arguments of tanh keep their relative accuracy; the special values.
  for (float x : {1e-30f, 1e-8f, -3e-4f, 0.1f, 0.6249f, 0.6251f}) {
    EXPECT_LE(ulps(tanh_approx(x), static_cast<float>(std::tanh(static_cast<double>(x)))), 4) << x;
  }
  // The 4-lane array versions compute exactly the scalar formulas (lanes and tails alike).
  std::vector<float> xs;
  for (float x = -120.0f; x < 100.0f; x += 0.37f) xs.push_back(x);
  xs.insert(xs.end(), {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-30f, 88.7f, 88.73f, -103.9f});
  std::vector<float> ye(xs.size()), ys(xs.size()), yt(xs.size());
  exp_array(xs.data(), ye.data(), static_cast<int64_t>(xs.size()));
  sigmoid_array(xs.data(), ys.data(), static_cast<int64_t>(xs.size()));
  tanh_array(xs.data(), yt.data(), static_cast<int64_t>(xs.size()));
  for (size_t i = 0; i < xs.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint32_t>(ye[i]), std::bit_cast<uint32_t>(exp_approx(xs[i]))) << xs[i];
    EXPECT_EQ(std::bit_cast<uint32_t>(ys[i]), std::bit_cast<uint32_t>(sigmoid_approx(xs[i]))) << xs[i];
    EXPECT_EQ(std::bit_cast<uint32_t>(yt[i]), std::bit_cast<uint32_t>(tanh_approx(xs[i]))) << xs[i];
  }
  EXPECT_EQ(exp_approx(0.0f), 1.0f);
  EXPECT_EQ(exp_approx(-INFINITY), 0.0f);
  EXPECT_EQ(exp_approx(INFINITY), INFINITY);
  EXPECT_EQ(exp_approx(89.0f), INFINITY);
  EXPECT_TRUE(std::isnan(exp_approx(NAN)));
  EXPECT_EQ(sigmoid_approx(-INFINITY), 0.0f);
  EXPECT_EQ(sigmoid_approx(INFINITY), 1.0f);
  EXPECT_EQ(tanh_approx(INFINITY), 1.0f);
  EXPECT_EQ(tanh_approx(-INFINITY), -1.0f);
  EXPECT_TRUE(std::isnan(tanh_approx(NAN)));
  EXPECT_TRUE(std::isnan(sigmoid_approx(NAN)));
}

}  // namespace
}  // namespace hearth::onnx::test
