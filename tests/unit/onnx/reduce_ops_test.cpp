// ONNX reductions, ArgMax/ArgMin, the softmax family and TopK through the registry: the spec's
// examples, the opset differences (axes attribute vs input, Softmax's 2-D coercion before 13),
// every reduction's fast layouts and the reference fallback on random shapes and axis sets
// against a double-precision definition computed here, and bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "op_test_helpers.h"

namespace hearth::onnx::test {
namespace {

Tensor spec_data() {  // the Reduce* examples' [3,2,2] input
  return ftensor({3, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
}

Node reduce_node(const std::string& op, int64_t opset, std::vector<int64_t> axes, int64_t keepdims, Tensor& axes_in,
                 size_t& n_in) {
  const bool input_axes = op == "ReduceSum" ? opset >= 13 : opset >= 18;
  n_in = input_axes && !axes.empty() ? 2 : 1;
  Node n = make_node(op, n_in);
  set_attr(n, "keepdims", keepdims);
  if (!axes.empty()) {
    if (input_axes) axes_in = itensor({static_cast<int64_t>(axes.size())}, axes);
    else set_attr(n, "axes", axes);
  }
  return n;
}

Result<std::vector<Tensor>> run_reduce(OpRunner& r, const std::string& op, int64_t opset, const Tensor& x,
                                       std::vector<int64_t> axes, int64_t keepdims = 1) {
  Tensor axes_in;
  size_t n_in = 0;
  Node n = reduce_node(op, opset, std::move(axes), keepdims, axes_in, n_in);
  if (n_in == 2) return r.run(n, opset, std::vector<Tensor>{x, axes_in});
  return r.run(n, opset, std::vector<Tensor>{x});
}

Tensor reduce1(OpRunner& r, const std::string& op, int64_t opset, const Tensor& x, std::vector<int64_t> axes,
               int64_t keepdims = 1) {
  auto res = run_reduce(r, op, opset, x, std::move(axes), keepdims);
  EXPECT_TRUE(res.ok()) << res.status().to_string();
  return res.ok() ? res.value()[0] : Tensor();
}

TEST(ReduceOps, SpecExamples) {
  OpRunner r;
  Tensor x = spec_data();
  for (int64_t opset : {11, 13, 18}) {
    Tensor s = reduce1(r, "ReduceSum", opset, x, {1});
    EXPECT_EQ(s.shape(), (Shape{3, 1, 2}));
    EXPECT_EQ(vals<float>(s), (std::vector<float>{4, 6, 12, 14, 20, 22}));
    Tensor m = reduce1(r, "ReduceMean", opset, x, {1}, 0);
    EXPECT_EQ(m.shape(), (Shape{3, 2}));
    EXPECT_EQ(vals<float>(m), (std::vector<float>{2, 3, 6, 7, 10, 11}));
    EXPECT_EQ(vals<float>(reduce1(r, "ReduceMax", opset, x, {-1})), (std::vector<float>{2, 4, 6, 8, 10, 12}));
    EXPECT_EQ(vals<float>(reduce1(r, "ReduceMin", opset, x, {0, 2})), (std::vector<float>{1, 3}));
    EXPECT_EQ(vals<float>(reduce1(r, "ReduceProd", opset, x, {1})), (std::vector<float>{3, 8, 35, 48, 99, 120}));
    EXPECT_EQ(vals<float>(reduce1(r, "ReduceSumSquare", opset, x, {2})), (std::vector<float>{5, 25, 61, 113, 181, 265}));
  }
  // No axes: everything, kept as [1,1,1] or a scalar.
  EXPECT_EQ(reduce1(r, "ReduceSum", 13, x, {}).shape(), (Shape{1, 1, 1}));
  Tensor all = reduce1(r, "ReduceMean", 18, x, {}, 0);
  EXPECT_EQ(all.shape(), Shape{});
  EXPECT_EQ(vals<float>(all), (std::vector<float>{6.5f}));
  // noop_with_empty_axes (ReduceSum 13, the others 18): the input itself.
  Node noop = make_node("ReduceMean", 1);
  set_attr<int64_t>(noop, "noop_with_empty_axes", 1);
  EXPECT_EQ(r.run1(noop, 18, {x}).raw(), x.raw());
  // int64 (shape arithmetic).
  Tensor i = itensor({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(vals<int64_t>(reduce1(r, "ReduceSum", 13, i, {1}, 0)), (std::vector<int64_t>{6, 15}));
  EXPECT_EQ(vals<int64_t>(reduce1(r, "ReduceProd", 13, i, {0}, 0)), (std::vector<int64_t>{4, 10, 18}));
  EXPECT_EQ(vals<int64_t>(reduce1(r, "ReduceMean", 13, i, {0}, 0)), (std::vector<int64_t>{2, 3, 4}));  // truncated
}

TEST(ReduceOps, RandomShapesAndAxesAgainstDefinition) {
  OpRunner r;
  std::mt19937 rng(5);
  const char* ops[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                       "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"};
  std::uniform_int_distribution<int> rank_d(1, 5), dim_d(1, 6);
  for (int iter = 0; iter < 400; ++iter) {
    Shape shape(rank_d(rng));
    for (auto& d : shape) d = dim_d(rng);
    if (iter % 50 == 0) shape = {3, 257};  // a row longer than the 8-lane blocks, with a tail
    const std::string op = ops[iter % 10];
    const bool positive = op == "ReduceLogSum" || op == "ReduceProd";
    Tensor x = random_tensor(rng, shape, positive ? 0.5f : -2.0f, positive ? 1.5f : 2.0f);
    std::vector<int64_t> axes;
    std::vector<bool> red(shape.size(), false);
    for (size_t d = 0; d < shape.size(); ++d) {
      if (std::uniform_int_distribution<int>(0, 1)(rng)) {
        red[d] = true;
        axes.push_back(std::uniform_int_distribution<int>(0, 1)(rng) ? static_cast<int64_t>(d)
                                                                        : static_cast<int64_t>(d) - static_cast<int64_t>(shape.size()));
      }
    }
    if (axes.empty()) red.assign(shape.size(), true);
    const int64_t keepdims = iter % 3 == 0 ? 0 : 1;
    const int64_t opset = iter % 2 ? 18 : 13;
    Tensor o = reduce1(r, op, opset, x, axes, keepdims);
    Shape want;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (!red[d]) want.push_back(shape[d]);
      else if (keepdims) want.push_back(1);
    }
    ASSERT_EQ(o.shape(), want) << op;
    // The definition, in double: group the input elements by their kept coordinates.
    const int64_t numel = x.numel();
    std::vector<std::vector<double>> groups(static_cast<size_t>(o.numel()));
    for (int64_t i = 0; i < numel; ++i) {
      int64_t rem = i, key = 0, stride = 1;
      for (size_t d = shape.size(); d-- > 0;) {
        const int64_t c = rem % shape[d];
        rem /= shape[d];
        if (!red[d]) {
          key += c * stride;
          stride *= shape[d];
        }
      }
      groups[static_cast<size_t>(key)].push_back(x.data<float>()[i]);
    }
    for (size_t g = 0; g < groups.size(); ++g) {
      const auto& v = groups[g];
      double e = 0;
      if (op == "ReduceSum") e = std::accumulate(v.begin(), v.end(), 0.0);
      else if (op == "ReduceMean") e = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
      else if (op == "ReduceMax") e = *std::max_element(v.begin(), v.end());
      else if (op == "ReduceMin") e = *std::min_element(v.begin(), v.end());
      else if (op == "ReduceProd") e = std::accumulate(v.begin(), v.end(), 1.0, std::multiplies<>());
      else if (op == "ReduceL1") for (double t : v) e += std::abs(t);
      else if (op == "ReduceL2") { for (double t : v) e += t * t; e = std::sqrt(e); }
      else if (op == "ReduceSumSquare") for (double t : v) e += t * t;
      else if (op == "ReduceLogSum") e = std::log(std::accumulate(v.begin(), v.end(), 0.0));
      else { for (double t : v) e += std::exp(t); e = std::log(e); }
      ASSERT_NEAR(o.data<float>()[g], e, 2e-5 * std::max(1.0, std::abs(e))) << op << " " << shape_string(shape) << " group " << g;
    }
  }
}

TEST(ReduceOps, BadAxes) {
  OpRunner r;
  Tensor x = spec_data();
  expect_error(run_reduce(r, "ReduceSum", 13, x, {1, -2}), "twice");
  expect_error(run_reduce(r, "ReduceMean", 18, x, {3}), "out of range");
  expect_error(run_reduce(r, "ReduceMax", 11, x, {-4}), "out of range");
  expect_error(r.run(make_node("ReduceSum", 2), 13, {x, ftensor({1}, {0})}), "axes");
}

TEST(ReduceOps, ArgMaxArgMin) {
  OpRunner r;
  Tensor x = ftensor({2, 2}, {2, 1, 3, 10});
  Node n = make_node("ArgMax", 1);
  Tensor o = r.run1(n, 13, {x});
  EXPECT_EQ(o.shape(), (Shape{1, 2}));
  EXPECT_EQ(vals<int64_t>(o), (std::vector<int64_t>{1, 1}));
  set_attr<int64_t>(n, "axis", -1);
  set_attr<int64_t>(n, "keepdims", 0);
  o = r.run1(n, 13, {x});
  EXPECT_EQ(o.shape(), (Shape{2}));
  EXPECT_EQ(vals<int64_t>(o), (std::vector<int64_t>{0, 1}));
  // select_last_index picks the last of equal maxima.
  Tensor ties = ftensor({2, 2}, {2, 2, 3, 10});
  EXPECT_EQ(vals<int64_t>(r.run1(n, 13, {ties})), (std::vector<int64_t>{0, 1}));
  set_attr<int64_t>(n, "select_last_index", 1);
  EXPECT_EQ(vals<int64_t>(r.run1(n, 13, {ties})), (std::vector<int64_t>{1, 1}));
  Node m = make_node("ArgMin", 1);
  set_attr<int64_t>(m, "axis", 1);
  EXPECT_EQ(vals<int64_t>(r.run1(m, 13, {ftensor({2, 3}, {5, 1, 1, 0, 7, -1})})), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(vals<int64_t>(r.run1(make_node("ArgMin", 1), 13, {itensor({3}, {4, -2, 9})})), (std::vector<int64_t>{1}));
  expect_error(r.run(m, 13, {ftensor({2}, {1, 2})}), "out of range");
}

std::vector<double> softmax_ref(const std::vector<double>& v, bool log) {
  const double mx = *std::max_element(v.begin(), v.end());
  double sum = 0;
  for (double t : v) sum += std::exp(t - mx);
  std::vector<double> o;
  for (double t : v) o.push_back(log ? t - mx - std::log(sum) : std::exp(t - mx) / sum);
  return o;
}

TEST(ReduceOps, SoftmaxAlongAxisAndCoerced) {
  OpRunner r;
  std::mt19937 rng(9);
  // Opset 13: along one axis, for every axis of a [2,3,4,5] tensor (B == 1 and B > 1 layouts).
  Shape shape{2, 3, 4, 5};
  Tensor x = random_tensor(rng, shape, -4, 4);
  const std::vector<int64_t> st{60, 20, 5, 1};
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    for (int64_t axis = -4; axis < 4; ++axis) {
      Node n = make_node(op, 1);
      set_attr(n, "axis", axis);
      Tensor o = r.run1(n, 13, {x});
      const size_t ax = static_cast<size_t>(axis < 0 ? axis + 4 : axis);
      for (int64_t i = 0; i < x.numel(); ++i) {
        const int64_t c = (i / st[ax]) % shape[ax];
        if (c != 0) continue;  // i starts a line along the axis
        std::vector<double> line;
        for (int64_t j = 0; j < shape[ax]; ++j) line.push_back(x.data<float>()[i + j * st[ax]]);
        const auto want = softmax_ref(line, std::string(op) == "LogSoftmax");
        for (int64_t j = 0; j < shape[ax]; ++j) {
          ASSERT_NEAR(o.data<float>()[i + j * st[ax]], want[static_cast<size_t>(j)], 1e-5) << op << " axis " << axis;
        }
      }
    }
  }
  // Before opset 13: coerced to 2-D at axis (default 1), each row of 3*4*5 normalized together.
  Tensor o = r.run1(make_node("Softmax", 1), 11, {x});
  for (int64_t row = 0; row < 2; ++row) {
    std::vector<double> line(x.data<float>() + row * 60, x.data<float>() + row * 60 + 60);
    const auto want = softmax_ref(line, false);
    for (int64_t j = 0; j < 60; ++j) ASSERT_NEAR(o.data<float>()[row * 60 + j], want[static_cast<size_t>(j)], 1e-6);
  }
  Node n11 = make_node("LogSoftmax", 1);
  set_attr<int64_t>(n11, "axis", 2);
  o = r.run1(n11, 11, {x});
  std::vector<double> line(x.data<float>() + 20, x.data<float>() + 40);  // row 1 of [6, 20]
  const auto want = softmax_ref(line, true);
  for (int64_t j = 0; j < 20; ++j) ASSERT_NEAR(o.data<float>()[20 + j], want[static_cast<size_t>(j)], 1e-5);
  // Spec example and Hardmax.
  auto s = vals<float>(r.run1(make_node("Softmax", 1), 13, {ftensor({1, 3}, {-1, 0, 1})}));
  const double z = std::exp(-1.0) + 1 + std::exp(1.0);
  EXPECT_NEAR(s[0], std::exp(-1.0) / z, 1e-6);
  EXPECT_NEAR(s[2], std::exp(1.0) / z, 1e-6);
  EXPECT_EQ(vals<float>(r.run1(make_node("Hardmax", 1), 13, {ftensor({2, 3}, {3, 0, 3, 1, 2, 0})})),
            (std::vector<float>{1, 0, 0, 0, 1, 0}));
  Node bad = make_node("Softmax", 1);
  set_attr<int64_t>(bad, "axis", 4);
  expect_error(r.run(bad, 13, {x}), "out of range");
}

TEST(ReduceOps, TopK) {
  OpRunner r;
  std::vector<float> v(12);
  std::iota(v.begin(), v.end(), 0.0f);
  Tensor x = ftensor({3, 4}, v);
  auto o = r.run(make_node("TopK", 2, 2), 11, {x, itensor({1}, {3})});
  ASSERT_TRUE(o.ok()) << o.status().to_string();
  EXPECT_EQ(o.value()[0].shape(), (Shape{3, 3}));
  EXPECT_EQ(vals<float>(o.value()[0]), (std::vector<float>{3, 2, 1, 7, 6, 5, 11, 10, 9}));
  EXPECT_EQ(vals<int64_t>(o.value()[1]), (std::vector<int64_t>{3, 2, 1, 3, 2, 1, 3, 2, 1}));
  // Smallest along axis 0; ties keep the lower index first.
  Node n = make_node("TopK", 2, 2);
  set_attr<int64_t>(n, "largest", 0);
  set_attr<int64_t>(n, "axis", 0);
  o = r.run(n, 11, {ftensor({3, 2}, {5, 1, 2, 1, 2, 0}), itensor({1}, {2})});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(vals<float>(o.value()[0]), (std::vector<float>{2, 0, 2, 1}));
  EXPECT_EQ(vals<int64_t>(o.value()[1]), (std::vector<int64_t>{1, 2, 2, 0}));
  Node old = make_node("TopK", 1, 2);
  set_attr<int64_t>(old, "k", 1);
  o = r.run(old, 9, {x});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(vals<float>(o.value()[0]), (std::vector<float>{3, 7, 11}));
  expect_error(r.run(make_node("TopK", 2, 2), 11, {x, itensor({1}, {5})}), "outside");
}

TEST(ReduceOps, CumSum) {
  OpRunner r;
  Tensor x = ftensor({5}, {1, 2, 3, 4, 5});
  auto run = [&](int64_t exclusive, int64_t reverse, const Tensor& t, int64_t axis) {
    Node n = make_node("CumSum", 2);
    set_attr(n, "exclusive", exclusive);
    set_attr(n, "reverse", reverse);
    return vals<float>(r.run1(n, 14, {t, itensor({}, {axis})}));
  };
  // The spec's examples.
  EXPECT_EQ(run(0, 0, x, 0), (std::vector<float>{1, 3, 6, 10, 15}));
  EXPECT_EQ(run(1, 0, x, 0), (std::vector<float>{0, 1, 3, 6, 10}));
  EXPECT_EQ(run(0, 1, x, 0), (std::vector<float>{15, 14, 12, 9, 5}));
  EXPECT_EQ(run(1, 1, x, 0), (std::vector<float>{14, 12, 9, 5, 0}));
  Tensor m = ftensor({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(run(0, 0, m, 0), (std::vector<float>{1, 2, 3, 5, 7, 9}));
  EXPECT_EQ(run(0, 0, m, -1), (std::vector<float>{1, 3, 6, 4, 9, 15}));
  expect_error(r.run(make_node("CumSum", 2), 14, {x, itensor({}, {1})}), "out of range");
}

}  // namespace
}  // namespace hearth::onnx::test
