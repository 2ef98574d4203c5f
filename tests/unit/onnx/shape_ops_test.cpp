// ONNX shape ops through the registry: the spec's examples, the opset differences (attributes
// vs inputs), Slice and Transpose on random shapes against by-definition references (the
// spec's slice rules; index permutation), views sharing the input's bytes, and bad inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "hearth/onnx/ops/strided_copy.h"
#include "op_test_helpers.h"

namespace hearth::onnx::test {
namespace {

std::vector<float> iota_f(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

TEST(ShapeOps, ShapeAndSize) {
  OpRunner r;
  Tensor x = Tensor::make(DType::kFloat, {2, 3, 4}).value();
  EXPECT_EQ(vals<int64_t>(r.run1(make_node("Shape", 1), 13, {x})), (std::vector<int64_t>{2, 3, 4}));
  Node n = make_node("Shape", 1);
  set_attr<int64_t>(n, "start", 1);
  EXPECT_EQ(vals<int64_t>(r.run1(n, 15, {x})), (std::vector<int64_t>{3, 4}));
  set_attr<int64_t>(n, "end", -1);
  EXPECT_EQ(vals<int64_t>(r.run1(n, 15, {x})), (std::vector<int64_t>{3}));
  set_attr<int64_t>(n, "start", -10);  // clamped to 0
  EXPECT_EQ(vals<int64_t>(r.run1(n, 15, {x})), (std::vector<int64_t>{2, 3}));
  set_attr<int64_t>(n, "start", 3);  // start past end: empty
  EXPECT_EQ(r.run1(n, 15, {x}).shape(), (Shape{0}));
  Tensor s = r.run1(make_node("Size", 1), 13, {x});
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(vals<int64_t>(s), (std::vector<int64_t>{24}));
}

TEST(ShapeOps, ReshapeIsAView) {
  OpRunner r;
  Tensor x = ftensor({2, 3, 4}, iota_f(24));
  Tensor o = r.run1(make_node("Reshape", 2), 14, {x, itensor({3}, {4, 0, -1})});
  EXPECT_EQ(o.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(o.raw(), x.raw());
  o = r.run1(make_node("Reshape", 2), 14, {x, itensor({1}, {-1})});
  EXPECT_EQ(o.shape(), (Shape{24}));
  // allowzero: a 0 is a zero dim (of an empty input), not a copy.
  Node az = make_node("Reshape", 2);
  set_attr<int64_t>(az, "allowzero", 1);
  Tensor empty = Tensor::make(DType::kFloat, {0, 4}).value();
  EXPECT_EQ(r.run1(az, 14, {empty, itensor({3}, {4, 0, 2})}).shape(), (Shape{4, 0, 2}));
  expect_error(r.run(az, 14, {empty, itensor({2}, {0, -1})}), "-1 and 0");
  expect_error(r.run(make_node("Reshape", 2), 14, {x, itensor({2}, {-1, -1})}), "more than one -1");
  expect_error(r.run(make_node("Reshape", 2), 14, {x, itensor({2}, {5, -1})}), "cannot reshape");
  expect_error(r.run(make_node("Reshape", 2), 14, {x, itensor({2}, {4, 7})}), "elements");
  expect_error(r.run(make_node("Reshape", 2), 14, {x, itensor({4}, {1, 1, 1, 0})}), "copies dim 3");
  expect_error(r.run(make_node("Reshape", 2), 14, {x, itensor({2}, {1 << 30, 1 << 30})}), "too large");
}

TEST(ShapeOps, FlattenSqueezeUnsqueeze) {
  OpRunner r;
  Tensor x = ftensor({2, 3, 4}, iota_f(24));
  auto flat = [&](int64_t axis) {
    Node n = make_node("Flatten", 1);
    set_attr(n, "axis", axis);
    return r.run1(n, 13, {x});
  };
  EXPECT_EQ(flat(0).shape(), (Shape{1, 24}));
  EXPECT_EQ(flat(1).shape(), (Shape{2, 12}));
  EXPECT_EQ(flat(-1).shape(), (Shape{6, 4}));
  EXPECT_EQ(flat(3).shape(), (Shape{24, 1}));
  EXPECT_EQ(flat(2).raw(), x.raw());
  Node bad = make_node("Flatten", 1);
  set_attr<int64_t>(bad, "axis", 4);
  expect_error(r.run(bad, 13, {x}), "out of range");

  Tensor y = ftensor({1, 3, 1, 2}, iota_f(6));
  EXPECT_EQ(r.run1(make_node("Squeeze", 1), 13, {y}).shape(), (Shape{3, 2}));
  EXPECT_EQ(r.run1(make_node("Squeeze", 2), 13, {y, itensor({1}, {-2})}).shape(), (Shape{1, 3, 2}));
  Node sq11 = make_node("Squeeze", 1);
  set_attr(sq11, "axes", std::vector<int64_t>{0});
  EXPECT_EQ(r.run1(sq11, 11, {y}).shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(r.run1(sq11, 11, {y}).raw(), y.raw());
  expect_error(r.run(make_node("Squeeze", 2), 13, {y, itensor({1}, {1})}), "not 1");
  expect_error(r.run(make_node("Squeeze", 2), 13, {y, itensor({1}, {4})}), "out of range");

  Tensor z = ftensor({3, 4, 5}, iota_f(60));
  Node us11 = make_node("Unsqueeze", 1);
  set_attr(us11, "axes", std::vector<int64_t>{0, 4});
  EXPECT_EQ(r.run1(us11, 11, {z}).shape(), (Shape{1, 3, 4, 5, 1}));
  EXPECT_EQ(r.run1(make_node("Unsqueeze", 2), 13, {z, itensor({2}, {-1, 1})}).shape(), (Shape{3, 1, 4, 5, 1}));
  EXPECT_EQ(r.run1(make_node("Unsqueeze", 2), 13, {ftensor({}, {1}), itensor({1}, {0})}).shape(), (Shape{1}));
  expect_error(r.run(make_node("Unsqueeze", 2), 13, {z, itensor({2}, {1, 1})}), "twice");
  expect_error(r.run(make_node("Unsqueeze", 2), 13, {z, itensor({1}, {5})}), "out of range");
}

TEST(ShapeOps, Concat) {
  OpRunner r;
  Node n = make_node("Concat", 2);
  set_attr<int64_t>(n, "axis", 1);
  Tensor o = r.run1(n, 13, {ftensor({2, 2}, {1, 2, 3, 4}), ftensor({2, 3}, {5, 6, 7, 8, 9, 10})});
  EXPECT_EQ(o.shape(), (Shape{2, 5}));
  EXPECT_EQ(vals<float>(o), (std::vector<float>{1, 2, 5, 6, 7, 3, 4, 8, 9, 10}));
  set_attr<int64_t>(n, "axis", -2);
  o = r.run1(n, 13, {itensor({1, 2}, {1, 2}), itensor({2, 2}, {3, 4, 5, 6})});
  EXPECT_EQ(vals<int64_t>(o), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  // shape arithmetic: an empty 1-D tensor joins in.
  set_attr<int64_t>(n, "axis", 0);
  EXPECT_EQ(vals<int64_t>(r.run1(n, 13, {itensor({0}, {}), itensor({2}, {7, 8})})), (std::vector<int64_t>{7, 8}));
  expect_error(r.run(n, 13, {ftensor({2, 2}, {1, 2, 3, 4}), ftensor({2, 3}, {5, 6, 7, 8, 9, 10})}), "does not match");
  expect_error(r.run(n, 13, {ftensor({2}, {1, 2}), itensor({2}, {1, 2})}), "int64");
}

// The index list of one sliced axis by the spec's text (Slice-13): negative start/end plus
// dim, then start clamped to [0, dim] (step > 0) or [0, dim-1] (step < 0) and end to [0, dim]
// or [-1, dim-1]. (This differs from Python's slice rules in one corner: a start below -dim
// with a negative step selects element 0 here, nothing in Python; onnxruntime follows the spec.)
std::vector<int64_t> spec_slice(int64_t len, int64_t start, int64_t stop, int64_t step) {
  std::vector<int64_t> idx;
  if (len == 0) return idx;
  if (start < 0) start += len;
  if (stop < 0) stop += len;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, len);
    stop = std::clamp<int64_t>(stop, 0, len);
  } else {
    start = std::clamp<int64_t>(start, 0, len - 1);
    stop = std::clamp<int64_t>(stop, -1, len - 1);
  }
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) idx.push_back(i);
  return idx;
}

TEST(ShapeOps, SliceSpecExamplesAndOpsets) {
  OpRunner r;
  Tensor x = ftensor({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor o = r.run1(make_node("Slice", 5), 13, {x, itensor({2}, {1, 0}), itensor({2}, {2, 3}), itensor({2}, {0, 1}), itensor({2}, {1, 2})});
  EXPECT_EQ(o.shape(), (Shape{1, 2}));
  EXPECT_EQ(vals<float>(o), (std::vector<float>{5, 7}));
  o = r.run1(make_node("Slice", 3), 13, {x, itensor({2}, {0, 1}), itensor({2}, {-1, 1000})});
  EXPECT_EQ(vals<float>(o), (std::vector<float>{2, 3, 4}));
  // Negative step with INT64 extremes (the usual "reverse" idiom).
  o = r.run1(make_node("Slice", 5), 13,
             {x, itensor({1}, {-1}), itensor({1}, {std::numeric_limits<int64_t>::min()}), itensor({1}, {1}), itensor({1}, {-1})});
  EXPECT_EQ(vals<float>(o), (std::vector<float>{4, 3, 2, 1, 8, 7, 6, 5}));
  Node old = make_node("Slice", 1);
  set_attr(old, "starts", std::vector<int64_t>{0, 1});
  set_attr(old, "ends", std::vector<int64_t>{1, 1000});
  EXPECT_EQ(vals<float>(r.run1(old, 9, {x})), (std::vector<float>{2, 3, 4}));
  expect_error(r.run(make_node("Slice", 5), 13, {x, itensor({1}, {0}), itensor({1}, {1}), itensor({1}, {0}), itensor({1}, {0})}),
               "step");
  expect_error(r.run(make_node("Slice", 4), 13, {x, itensor({2}, {0, 0}), itensor({2}, {1, 1}), itensor({2}, {1, 1})}), "twice");
  expect_error(r.run(make_node("Slice", 3), 13, {x, itensor({2}, {0, 0}), itensor({1}, {1})}), "same length");
}

TEST(ShapeOps, SliceRandomAgainstSpecRules) {
  OpRunner r;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> rank_d(1, 4), dim_d(0, 6), pos_d(-9, 9), step_d(-3, 3);
  for (int iter = 0; iter < 300; ++iter) {
    Shape shape(rank_d(rng));
    for (auto& d : shape) d = dim_d(rng);
    const int64_t numel = checked_numel(shape).value();
    Tensor x = ftensor(shape, iota_f(numel));
    std::vector<int64_t> starts, ends, axes, steps;
    std::vector<std::vector<int64_t>> pick(shape.size());
    for (size_t d = 0; d < shape.size(); ++d) {
      pick[d].resize(static_cast<size_t>(shape[d]));
      std::iota(pick[d].begin(), pick[d].end(), 0);
      if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) continue;  // axis not sliced
      int64_t step = 0;
      while (step == 0) step = step_d(rng);
      const int64_t s = pos_d(rng), e = pos_d(rng);
      starts.push_back(s);
      ends.push_back(e);
      axes.push_back(std::uniform_int_distribution<int>(0, 1)(rng) ? static_cast<int64_t>(d)
                                                                      : static_cast<int64_t>(d) - static_cast<int64_t>(shape.size()));
      steps.push_back(step);
      pick[d] = spec_slice(shape[d], s, e, step);
    }
    const int64_t n = static_cast<int64_t>(starts.size());
    Tensor o = r.run1(make_node("Slice", 5), 13,
                      {x, itensor({n}, starts), itensor({n}, ends), itensor({n}, axes), itensor({n}, steps)});
    Shape want;
    for (const auto& p : pick) want.push_back(static_cast<int64_t>(p.size()));
    ASSERT_EQ(o.shape(), want) << "input " << shape_string(shape) << " starts " << shape_string(starts) << " ends "
                               << shape_string(ends) << " axes " << shape_string(axes) << " steps " << shape_string(steps);
    for (int64_t i = 0; i < o.numel(); ++i) {
      int64_t rem = i, off = 0, stride = 1;
      for (size_t d = want.size(); d-- > 0;) {
        off += pick[d][static_cast<size_t>(rem % want[d])] * stride;
        rem /= want[d];
        stride *= shape[d];
      }
      ASSERT_EQ(o.data<float>()[i], static_cast<float>(off));
    }
  }
}

TEST(ShapeOps, Gather) {
  OpRunner r;
  // Spec examples.
  Tensor d = ftensor({3, 2}, {1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f});
  Tensor o = r.run1(make_node("Gather", 2), 13, {d, itensor({2, 2}, {0, 1, 1, 2})});
  EXPECT_EQ(o.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(vals<float>(o), (std::vector<float>{1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f}));
  Node n = make_node("Gather", 2);
  set_attr<int64_t>(n, "axis", 1);
  Tensor d2 = ftensor({3, 3}, {1.0f, 1.2f, 1.9f, 2.3f, 3.4f, 3.9f, 4.5f, 5.7f, 5.9f});
  o = r.run1(n, 13, {d2, tensor<int32_t>({1, 2}, {0, 2})});
  EXPECT_EQ(o.shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(vals<float>(o), (std::vector<float>{1.0f, 1.9f, 2.3f, 3.9f, 4.5f, 5.9f}));
  // A scalar negative index drops the axis.
  o = r.run1(n, 13, {d2, itensor({}, {-1})});
  EXPECT_EQ(o.shape(), (Shape{3}));
  EXPECT_EQ(vals<float>(o), (std::vector<float>{1.9f, 3.9f, 5.9f}));
  // Shape arithmetic: int64 data.
  EXPECT_EQ(vals<int64_t>(r.run1(make_node("Gather", 2), 13, {itensor({4}, {1, 3, 224, 224}), itensor({1}, {2})})),
            (std::vector<int64_t>{224}));
  expect_error(r.run(make_node("Gather", 2), 13, {d, itensor({2}, {0, 3})}), "index 3 (at position 1 of indices) is out of range");
  expect_error(r.run(make_node("Gather", 2), 13, {d, itensor({1}, {-4})}), "out of range");
  expect_error(r.run(make_node("Gather", 2), 13, {d, ftensor({1}, {0})}), "indices");
}

TEST(ShapeOps, GatherElements) {
  OpRunner r;
  Node n = make_node("GatherElements", 2);
  set_attr<int64_t>(n, "axis", 1);
  EXPECT_EQ(vals<float>(r.run1(n, 13, {ftensor({2, 2}, {1, 2, 3, 4}), itensor({2, 2}, {0, 0, 1, 0})})),
            (std::vector<float>{1, 1, 4, 3}));
  set_attr<int64_t>(n, "axis", 0);
  Tensor o = r.run1(n, 13, {ftensor({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}), itensor({2, 3}, {1, 2, 0, 2, 0, 0})});
  EXPECT_EQ(o.shape(), (Shape{2, 3}));
  EXPECT_EQ(vals<float>(o), (std::vector<float>{4, 8, 3, 7, 2, 3}));
  EXPECT_EQ(vals<float>(r.run1(n, 13, {ftensor({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}), itensor({1, 2}, {-1, -2})})),
            (std::vector<float>{7, 5}));
  expect_error(r.run(n, 13, {ftensor({2, 2}, {1, 2, 3, 4}), itensor({2, 2}, {0, 2, 0, 0})}), "out of range");
  expect_error(r.run(n, 13, {ftensor({2, 2}, {1, 2, 3, 4}), itensor({2, 3}, {0, 0, 0, 0, 0, 0})}), "exceed");
}

TEST(ShapeOps, Split) {
  OpRunner r;
  Tensor x = ftensor({6}, {1, 2, 3, 4, 5, 6});
  auto outs = r.run(make_node("Split", 1, 3), 13, {x});
  ASSERT_TRUE(outs.ok()) << outs.status().to_string();
  EXPECT_EQ(vals<float>(outs.value()[0]), (std::vector<float>{1, 2}));
  EXPECT_EQ(vals<float>(outs.value()[2]), (std::vector<float>{5, 6}));
  outs = r.run(make_node("Split", 2, 2), 13, {x, itensor({2}, {2, 4})});
  ASSERT_TRUE(outs.ok());
  EXPECT_EQ(vals<float>(outs.value()[1]), (std::vector<float>{3, 4, 5, 6}));
  Node old = make_node("Split", 1, 2);
  set_attr(old, "split", std::vector<int64_t>{5, 1});
  outs = r.run(old, 11, {x});
  ASSERT_TRUE(outs.ok());
  EXPECT_EQ(vals<float>(outs.value()[1]), (std::vector<float>{6}));
  // 2-D along axis 1 (negative).
  Node ax = make_node("Split", 1, 2);
  set_attr<int64_t>(ax, "axis", -1);
  outs = r.run(ax, 13, {ftensor({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8})});
  ASSERT_TRUE(outs.ok());
  EXPECT_EQ(vals<float>(outs.value()[0]), (std::vector<float>{1, 2, 5, 6}));
  EXPECT_EQ(vals<float>(outs.value()[1]), (std::vector<float>{3, 4, 7, 8}));
  // Opset 18 num_outputs: 7 into 4 is 2,2,2,1.
  Node n18 = make_node("Split", 1, 4);
  set_attr<int64_t>(n18, "num_outputs", 4);
  outs = r.run(n18, 18, {ftensor({7}, iota_f(7))});
  ASSERT_TRUE(outs.ok()) << outs.status().to_string();
  EXPECT_EQ(outs.value()[2].shape(), (Shape{2}));
  EXPECT_EQ(vals<float>(outs.value()[3]), (std::vector<float>{6}));
  expect_error(r.run(make_node("Split", 2, 2), 13, {x, itensor({2}, {2, 3})}), "sum to 5");
  expect_error(r.run(make_node("Split", 1, 4), 13, {x}), "equal parts");
}

TEST(ShapeOps, TransposeRandomAgainstReference) {
  OpRunner r;
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> rank_d(1, 5), dim_d(1, 7);
  for (int iter = 0; iter < 200; ++iter) {
    Shape shape(rank_d(rng));
    for (auto& d : shape) d = dim_d(rng);
    if (iter % 10 == 0) shape = {2, 37, 45};  // bigger than one 32x32 tile
    std::vector<int64_t> perm(shape.size());
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    const int64_t numel = checked_numel(shape).value();
    Node n = make_node("Transpose", 1);
    set_attr(n, "perm", perm);
    // float, and a 1-byte type through the same code.
    Tensor x = ftensor(shape, iota_f(numel));
    Tensor o = r.run1(n, 13, {x});
    Shape want(shape.size());
    for (size_t d = 0; d < perm.size(); ++d) want[d] = shape[static_cast<size_t>(perm[d])];
    ASSERT_EQ(o.shape(), want);
    std::vector<int64_t> in_st(shape.size(), 1);
    for (size_t d = shape.size() - 1; d-- > 0;) in_st[d] = in_st[d + 1] * shape[d + 1];
    for (int64_t i = 0; i < numel; ++i) {
      int64_t rem = i, off = 0;
      for (size_t d = want.size(); d-- > 0;) {
        off += (rem % want[d]) * in_st[static_cast<size_t>(perm[d])];
        rem /= want[d];
      }
      ASSERT_EQ(o.data<float>()[i], static_cast<float>(off)) << shape_string(shape) << " at " << i;
    }
    Tensor b = Tensor::make(DType::kUint8, shape).value();
    for (int64_t i = 0; i < numel; ++i) b.data<uint8_t>()[i] = static_cast<uint8_t>(i * 7);
    Tensor ob = r.run1(n, 13, {b});
    std::vector<int64_t> st(perm.size());
    for (size_t d = 0; d < perm.size(); ++d) st[d] = in_st[static_cast<size_t>(perm[d])];
    std::vector<uint8_t> ref(static_cast<size_t>(numel));
    strided_copy_ref(b.raw(), 0, want, st, reinterpret_cast<std::byte*>(ref.data()), 1);
    ASSERT_EQ(vals<uint8_t>(ob), ref);
  }
  // Default perm reverses; identity perm is a view; a bad perm is refused.
  Tensor x = ftensor({2, 3}, iota_f(6));
  EXPECT_EQ(vals<float>(r.run1(make_node("Transpose", 1), 13, {x})), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  Node id = make_node("Transpose", 1);
  set_attr(id, "perm", std::vector<int64_t>{0, 1});
  EXPECT_EQ(r.run1(id, 13, {x}).raw(), x.raw());
  set_attr(id, "perm", std::vector<int64_t>{0, 0});
  expect_error(r.run(id, 13, {x}), "not a permutation");
}

TEST(ShapeOps, ConstantOfShapeExpandTileRange) {
  OpRunner r;
  Node c = make_node("ConstantOfShape", 1);
  Tensor z = r.run1(c, 13, {itensor({2}, {2, 3})});
  EXPECT_EQ(z.dtype(), DType::kFloat);
  EXPECT_EQ(vals<float>(z), std::vector<float>(6, 0.0f));
  set_attr(c, "value", itensor({1}, {7}));
  Tensor sev = r.run1(c, 13, {itensor({1}, {3})});
  EXPECT_EQ(vals<int64_t>(sev), (std::vector<int64_t>{7, 7, 7}));
  EXPECT_EQ(r.run1(c, 13, {itensor({0}, {})}).shape(), Shape{});
  expect_error(r.run(c, 13, {itensor({2}, {1 << 30, 1 << 30})}), "elements");
  // Expand (spec): [3,1] to [2,1,6] is [2,3,6].
  Tensor e = r.run1(make_node("Expand", 2), 13, {ftensor({3, 1}, {1, 2, 3}), itensor({3}, {2, 1, 6})});
  EXPECT_EQ(e.shape(), (Shape{2, 3, 6}));
  std::vector<float> want;
  for (int b = 0; b < 2; ++b) for (int i = 1; i <= 3; ++i) for (int j = 0; j < 6; ++j) want.push_back(static_cast<float>(i));
  EXPECT_EQ(vals<float>(e), want);
  EXPECT_EQ(r.run1(make_node("Expand", 2), 13, {ftensor({3, 1}, {1, 2, 3}), itensor({2}, {1, 1})}).shape(), (Shape{3, 1}));
  expect_error(r.run(make_node("Expand", 2), 13, {ftensor({3}, {1, 2, 3}), itensor({1}, {4})}), "cannot be broadcast");
  expect_error(r.run(make_node("Expand", 2), 13, {ftensor({1}, {1}), itensor({3}, {1 << 20, 1 << 20, 1 << 20})}), "elements");
  // Tile (spec): [[0,1],[2,3]] by [2,2].
  Tensor t = r.run1(make_node("Tile", 2), 13, {ftensor({2, 2}, {0, 1, 2, 3}), itensor({2}, {2, 2})});
  EXPECT_EQ(t.shape(), (Shape{4, 4}));
  EXPECT_EQ(vals<float>(t), (std::vector<float>{0, 1, 0, 1, 2, 3, 2, 3, 0, 1, 0, 1, 2, 3, 2, 3}));
  t = r.run1(make_node("Tile", 2), 13, {ftensor({1, 3}, {1, 2, 3}), itensor({2}, {2, 1})});
  EXPECT_EQ(vals<float>(t), (std::vector<float>{1, 2, 3, 1, 2, 3}));
  expect_error(r.run(make_node("Tile", 2), 13, {ftensor({2}, {1, 2}), itensor({2}, {1, 1})}), "repeats");
  // Range (spec examples).
  EXPECT_EQ(vals<int64_t>(r.run1(make_node("Range", 3), 13, {itensor({}, {3}), itensor({}, {9}), itensor({}, {3})})),
            (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(vals<float>(r.run1(make_node("Range", 3), 13, {ftensor({}, {10}), ftensor({}, {4}), ftensor({}, {-2})})),
            (std::vector<float>{10, 8, 6}));
  EXPECT_EQ(r.run1(make_node("Range", 3), 13, {itensor({}, {5}), itensor({}, {1}), itensor({}, {1})}).shape(), (Shape{0}));
  expect_error(r.run(make_node("Range", 3), 13, {itensor({}, {0}), itensor({}, {1}), itensor({}, {0})}), "delta is 0");
  expect_error(r.run(make_node("Range", 3), 13, {itensor({}, {0}), itensor({}, {int64_t{1} << 62}), itensor({}, {1})}),
               "too large");
}

TEST(ShapeOps, NonZeroTriluDepthToSpace) {
  OpRunner r;
  Tensor nz = r.run1(make_node("NonZero", 1), 13, {btensor({2, 2}, {1, 0, 1, 1})});
  EXPECT_EQ(nz.shape(), (Shape{2, 3}));
  EXPECT_EQ(vals<int64_t>(nz), (std::vector<int64_t>{0, 1, 1, 0, 0, 1}));
  // Trilu against its definition on a 4x5 matrix, several k, upper and lower.
  Tensor m = ftensor({4, 5}, iota_f(20));
  for (int64_t upper = 0; upper <= 1; ++upper) {
    for (int64_t k : {-100, -2, -1, 0, 1, 3, 100}) {
      Node n = make_node("Trilu", 2);
      set_attr(n, "upper", upper);
      Tensor o = r.run1(n, 14, {m, itensor({}, {k})});
      for (int64_t i = 0; i < 4; ++i) {
        for (int64_t j = 0; j < 5; ++j) {
          const bool keep = upper ? j - i >= k : j - i <= k;
          ASSERT_EQ(o.data<float>()[i * 5 + j], keep ? static_cast<float>(i * 5 + j) : 0.0f) << upper << " k=" << k;
        }
      }
    }
  }
  // DepthToSpace DCR / CRD by their index formulas; SpaceToDepth undoes DCR.
  const int64_t b = 2, C = 8, H = 2, W = 3, Cb = C / (b * b);
  Tensor x = ftensor({1, C, H, W}, iota_f(C * H * W));
  for (const char* mode : {"DCR", "CRD"}) {
    Node n = make_node("DepthToSpace", 1);
    set_attr(n, "blocksize", b);
    set_attr<std::string>(n, "mode", mode);
    Tensor o = r.run1(n, 13, {x});
    ASSERT_EQ(o.shape(), (Shape{1, Cb, H * b, W * b}));
    for (int64_t c = 0; c < Cb; ++c) {
      for (int64_t h = 0; h < H * b; ++h) {
        for (int64_t w = 0; w < W * b; ++w) {
          const int64_t i = h % b, j = w % b;
          const int64_t ic = std::string(mode) == "DCR" ? (i * b + j) * Cb + c : c * b * b + i * b + j;
          ASSERT_EQ(o.data<float>()[(c * H * b + h) * W * b + w], x.data<float>()[(ic * H + h / b) * W + w / b]) << mode;
        }
      }
    }
    if (std::string(mode) == "DCR") {
      Node s = make_node("SpaceToDepth", 1);
      set_attr(s, "blocksize", b);
      EXPECT_EQ(vals<float>(r.run1(s, 13, {o})), vals<float>(x));
    }
  }
  Node bad = make_node("DepthToSpace", 1);
  set_attr<int64_t>(bad, "blocksize", 3);
  expect_error(r.run(bad, 13, {x}), "multiple");
}

TEST(ShapeOps, GatherNDScatterNDScatterElements) {
  OpRunner r;
  // GatherND (spec examples 1, 3 and 5).
  EXPECT_EQ(vals<int32_t>(r.run1(make_node("GatherND", 2), 13, {tensor<int32_t>({2, 2}, {0, 1, 2, 3}), itensor({2, 2}, {0, 0, 1, 1})})),
            (std::vector<int32_t>{0, 3}));
  Tensor g = r.run1(make_node("GatherND", 2), 13,
                    {tensor<int32_t>({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7}), itensor({2, 1, 2}, {0, 1, 1, 0})});
  EXPECT_EQ(g.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(vals<int32_t>(g), (std::vector<int32_t>{2, 3, 4, 5}));
  Node bd = make_node("GatherND", 2);
  set_attr<int64_t>(bd, "batch_dims", 1);
  g = r.run1(bd, 13, {tensor<int32_t>({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7}), itensor({2, 1}, {1, 0})});
  EXPECT_EQ(g.shape(), (Shape{2, 2}));
  EXPECT_EQ(vals<int32_t>(g), (std::vector<int32_t>{2, 3, 4, 5}));
  expect_error(r.run(make_node("GatherND", 2), 13, {tensor<int32_t>({2, 2}, {0, 1, 2, 3}), itensor({1, 2}, {0, 2})}),
               "out of range");
  // ScatterND (spec example 1) and with reduction add (the index repeated).
  Tensor data = ftensor({8}, {1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_EQ(vals<float>(r.run1(make_node("ScatterND", 3), 16, {data, itensor({4, 1}, {4, 3, 1, 7}), ftensor({4}, {9, 10, 11, 12})})),
            (std::vector<float>{1, 11, 3, 10, 9, 6, 7, 12}));
  Node add = make_node("ScatterND", 3);
  set_attr<std::string>(add, "reduction", "add");
  EXPECT_EQ(vals<float>(r.run1(add, 16, {data, itensor({2, 1}, {0, 0}), ftensor({2}, {10, 20})})),
            (std::vector<float>{31, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(vals<float>(data)[0], 1.0f);  // the input is untouched
  expect_error(r.run(make_node("ScatterND", 3), 16, {data, itensor({1, 1}, {8}), ftensor({1}, {0})}), "out of range");
  expect_error(r.run(make_node("ScatterND", 3), 16, {data, itensor({1, 1}, {0}), ftensor({2}, {0, 1})}), "updates");
  // ScatterElements (spec examples).
  Node se = make_node("ScatterElements", 3);
  Tensor o = r.run1(se, 16, {ftensor({3, 3}, std::vector<float>(9, 0.0f)), itensor({2, 3}, {1, 0, 2, 0, 2, 1}),
                              ftensor({2, 3}, {1.0f, 1.1f, 1.2f, 2.0f, 2.1f, 2.2f})});
  EXPECT_EQ(vals<float>(o), (std::vector<float>{2.0f, 1.1f, 0, 1.0f, 0, 2.2f, 0, 2.1f, 1.2f}));
  set_attr<int64_t>(se, "axis", 1);
  o = r.run1(se, 16, {ftensor({1, 5}, {1, 2, 3, 4, 5}), itensor({1, 2}, {1, -2}), ftensor({1, 2}, {1.1f, 2.1f})});
  EXPECT_EQ(vals<float>(o), (std::vector<float>{1, 1.1f, 3, 2.1f, 5}));
  expect_error(r.run(se, 16, {ftensor({1, 5}, {1, 2, 3, 4, 5}), itensor({1, 1}, {5}), ftensor({1, 1}, {0})}), "out of range");
}

TEST(ShapeOps, OneHotEyeLike) {
  OpRunner r;
  // OneHot (spec): indices [1, 9, 2] with depth 10 on axis 1, values [1, 3]; a negative index
  // counts from the end; one outside [-depth, depth) is all off.
  Node n = make_node("OneHot", 3);
  set_attr<int64_t>(n, "axis", 1);
  Tensor o = r.run1(n, 11, {itensor({3}, {1, -1, 12}), ftensor({}, {4}), ftensor({2}, {1, 3})});
  EXPECT_EQ(o.shape(), (Shape{3, 4}));
  EXPECT_EQ(vals<float>(o), (std::vector<float>{1, 3, 1, 1, 1, 1, 1, 3, 1, 1, 1, 1}));
  set_attr<int64_t>(n, "axis", 0);
  o = r.run1(n, 11, {itensor({2}, {0, 2}), itensor({}, {3}), itensor({2}, {0, 1})});
  EXPECT_EQ(o.shape(), (Shape{3, 2}));
  EXPECT_EQ(vals<int64_t>(o), (std::vector<int64_t>{1, 0, 0, 0, 0, 1}));
  expect_error(r.run(n, 11, {itensor({1}, {0}), itensor({}, {0}), itensor({2}, {0, 1})}), "depth");
  Node e = make_node("EyeLike", 1);
  set_attr<int64_t>(e, "k", 1);
  o = r.run1(e, 11, {itensor({3, 4}, std::vector<int64_t>(12, 5))});
  EXPECT_EQ(vals<int64_t>(o), (std::vector<int64_t>{0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}));
  set_attr<int64_t>(e, "dtype", 1);
  set_attr<int64_t>(e, "k", -2);
  o = r.run1(e, 11, {itensor({3, 2}, std::vector<int64_t>(6, 5))});
  EXPECT_EQ(o.dtype(), DType::kFloat);
  EXPECT_EQ(vals<float>(o), (std::vector<float>{0, 0, 0, 0, 1, 0}));
}

}  // namespace
}  // namespace hearth::onnx::test
