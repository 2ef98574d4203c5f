// ops/nn.cpp: pooling, normalization, Resize and Pad against references written here from the
// ONNX spec (brute force over each window / element, in double), on random shapes and
// attribute combinations, plus small cases worked by hand from the spec's examples and the
// errors of bad attributes and shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/onnx/op_registry.h"

namespace hearth::onnx {
namespace {

std::vector<float> random_floats(std::mt19937& rng, int64_t n) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

Tensor tensor(Shape s, const std::vector<float>& v) { return Tensor::from_values<float>(std::move(s), v).value(); }
Tensor ints(const std::vector<int64_t>& v) { return Tensor::from_values<int64_t>({static_cast<int64_t>(v.size())}, v).value(); }

int64_t numel(const Shape& s) {
  int64_t p = 1;
  for (int64_t d : s) p *= d;
  return p;
}

std::vector<float> values(const Tensor& t) { return {t.values<float>().begin(), t.values<float>().end()}; }

struct OpRun {
  ThreadPool pool{2};
  BufferPool buffers;
  Result<std::vector<Tensor>> run(const Node& node, std::vector<const Tensor*> in, int64_t opset = 17) {
    OpContext ctx{pool, buffers, kernels::active_kernels(), opset};
    OpFn fn = op_registry().find(node.op_type, opset);
    if (!fn) return make_error(ErrorCode::kUnimplemented, "no {}", node.op_type);
    std::vector<Tensor> out(node.outputs.size());
    HEARTH_TRY(fn(ctx, node, in, out));
    return out;
  }
};

Node make_node(const std::string& op, size_t n_in, size_t n_out = 1) {
  Node n;
  n.name = "t";
  n.op_type = op;
  for (size_t i = 0; i < n_in; ++i) n.inputs.push_back("i" + std::to_string(i));
  for (size_t i = 0; i < n_out; ++i) n.outputs.push_back("o" + std::to_string(i));
  return n;
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << what << " at " << i;
}

// ---- pooling ----

struct PoolCase {
  Shape x;
  std::vector<int64_t> k, s, d, pads;
  bool ceil = false, include_pad = false;
};

// Output size per the spec (floor or ceil), dropping a last window that starts in the end pad.
std::vector<int64_t> pool_out(const PoolCase& pc) {
  const size_t nd = pc.k.size();
  std::vector<int64_t> out(nd);
  for (size_t i = 0; i < nd; ++i) {
    const double span = static_cast<double>(pc.x[2 + i] + pc.pads[i] + pc.pads[nd + i] - ((pc.k[i] - 1) * pc.d[i] + 1));
    out[i] = static_cast<int64_t>(pc.ceil ? std::ceil(span / static_cast<double>(pc.s[i])) : std::floor(span / static_cast<double>(pc.s[i]))) + 1;
    if (pc.ceil && (out[i] - 1) * pc.s[i] >= pc.x[2 + i] + pc.pads[i]) --out[i];
  }
  return out;
}

// max (is_max) or average pool, brute force over every window position.
std::vector<float> pool_ref(const PoolCase& pc, const std::vector<float>& x, bool is_max, Shape& ys) {
  const size_t nd = pc.k.size();
  auto out = pool_out(pc);
  ys = {pc.x[0], pc.x[1]};
  ys.insert(ys.end(), out.begin(), out.end());
  const int64_t planes = pc.x[0] * pc.x[1], osz = numel(out), ksz = numel(pc.k);
  const int64_t isz = numel(Shape(pc.x.begin() + 2, pc.x.end()));
  std::vector<float> y(static_cast<size_t>(planes * osz));
  std::vector<int64_t> oc(nd), kc(nd);
  for (int64_t p = 0; p < planes; ++p) {
    for (int64_t o = 0; o < osz; ++o) {
      int64_t r = o;
      for (size_t i = nd; i-- > 0;) oc[i] = r % out[i], r /= out[i];
      double best = -INFINITY, sum = 0;
      int64_t valid = 0, in_padded = 0;
      for (int64_t kk = 0; kk < ksz; ++kk) {
        int64_t q = kk;
        for (size_t i = nd; i-- > 0;) kc[i] = q % pc.k[i], q /= pc.k[i];
        bool inside = true, in_pad = true;
        int64_t off = 0;
        for (size_t i = 0; i < nd; ++i) {
          const int64_t pos = oc[i] * pc.s[i] - pc.pads[i] + kc[i] * pc.d[i];
          inside = inside && pos >= 0 && pos < pc.x[2 + i];
          in_pad = in_pad && pos < pc.x[2 + i] + pc.pads[nd + i];
          off = off * pc.x[2 + i] + pos;
        }
        in_padded += in_pad;
        if (!inside) continue;
        const double v = x[static_cast<size_t>(p * isz + off)];
        best = std::max(best, v);
        sum += v;
        ++valid;
      }
      const int64_t n = pc.include_pad ? in_padded : valid;
      y[static_cast<size_t>(p * osz + o)] = static_cast<float>(is_max ? best : sum / static_cast<double>(n));
    }
  }
  return y;
}

Node pool_node(const std::string& op, const PoolCase& pc) {
  Node n = make_node(op, 1);
  n.attrs["kernel_shape"] = Attribute{pc.k};
  n.attrs["strides"] = Attribute{pc.s};
  n.attrs["pads"] = Attribute{pc.pads};
  if (op == "MaxPool" || pc.d != std::vector<int64_t>(pc.k.size(), 1)) n.attrs["dilations"] = Attribute{pc.d};
  n.attrs["ceil_mode"] = Attribute{int64_t{pc.ceil}};
  if (op == "AveragePool") n.attrs["count_include_pad"] = Attribute{int64_t{pc.include_pad}};
  return n;
}

TEST(PoolOps, MatchTheReferenceOnRandomShapes) {
  OpRun r;
  std::mt19937 rng(31);
  auto u = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  for (int it = 0; it < 200; ++it) {
    PoolCase pc;
    const size_t nd = it % 7 == 6 ? 3 : (it % 5 == 4 ? 1 : 2);
    const bool is_max = it % 2 == 0;
    pc.x = {u(1, 2), u(1, 5)};
    for (size_t i = 0; i < nd; ++i) {
      pc.k.push_back(u(1, 4));
      pc.s.push_back(u(1, 3));
      pc.d.push_back(is_max ? u(1, 2) : 1);
    }
    pc.pads.assign(2 * nd, 0);
    for (size_t i = 0; i < nd; ++i) {
      // Pads smaller than the kernel, as ONNX Runtime requires.
      pc.pads[i] = u(0, static_cast<int>(pc.k[i] - 1));
      pc.pads[nd + i] = u(0, static_cast<int>(pc.k[i] - 1));
      pc.x.push_back((pc.k[i] - 1) * pc.d[i] + 1 + u(0, nd == 3 ? 5 : 20));
    }
    pc.ceil = it % 3 == 0;
    pc.include_pad = it % 4 == 1;
    auto x = random_floats(rng, numel(pc.x));
    Shape ys;
    auto ref = pool_ref(pc, x, is_max, ys);
    Tensor tx = tensor(pc.x, x);
    auto out = r.run(pool_node(is_max ? "MaxPool" : "AveragePool", pc), {&tx});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    ASSERT_EQ((*out)[0].shape(), ys) << it;
    expect_near(values((*out)[0]), ref, 1e-5, "case " + std::to_string(it));
  }
}

// The spec's examples: test_maxpool_2d_ceil (4x4 ramp 1..16, kernel 3, stride 2, ceil) is
// [[11, 12], [15, 16]]; test_averagepool_2d_pads_count_include_pad-like corner by hand.
TEST(PoolOps, SpecExamplesByHand) {
  OpRun r;
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i + 1);
  Tensor tx = tensor({1, 1, 4, 4}, x);
  Node n = make_node("MaxPool", 1, 2);
  n.attrs["kernel_shape"] = Attribute{std::vector<int64_t>{3, 3}};
  n.attrs["strides"] = Attribute{std::vector<int64_t>{2, 2}};
  n.attrs["ceil_mode"] = Attribute{int64_t{1}};
  auto out = r.run(n, {&tx});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values((*out)[0]), (std::vector<float>{11, 12, 15, 16}));
  // Indices: flat offsets of the maxima (row-major).
  ASSERT_EQ((*out)[1].dtype(), DType::kInt64);
  EXPECT_EQ(std::vector<int64_t>((*out)[1].values<int64_t>().begin(), (*out)[1].values<int64_t>().end()), (std::vector<int64_t>{10, 11, 14, 15}));
  // AveragePool 2x2, pads 1 on every side, count_include_pad: the corner window holds only x[0]=1 -> 1/4.
  Node a = make_node("AveragePool", 1);
  a.attrs["kernel_shape"] = Attribute{std::vector<int64_t>{2, 2}};
  a.attrs["pads"] = Attribute{std::vector<int64_t>{1, 1, 1, 1}};
  a.attrs["strides"] = Attribute{std::vector<int64_t>{2, 2}};
  a.attrs["count_include_pad"] = Attribute{int64_t{1}};
  out = r.run(a, {&tx});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ((*out)[0].shape(), (Shape{1, 1, 3, 3}));
  EXPECT_FLOAT_EQ((*out)[0].data<float>()[0], 0.25f);
  EXPECT_FLOAT_EQ((*out)[0].data<float>()[4], (6 + 7 + 10 + 11) / 4.0f);
  a.attrs["count_include_pad"] = Attribute{int64_t{0}};
  out = r.run(a, {&tx});
  ASSERT_TRUE(out.ok());
  EXPECT_FLOAT_EQ((*out)[0].data<float>()[0], 1.0f);
  EXPECT_FLOAT_EQ((*out)[0].data<float>()[1], 2.5f);  // (2 + 3) / 2
  // SAME_UPPER on 4x4 with kernel 2 stride 1: pads only at the end; the last column's window
  // holds x[.,3] and the pad.
  Node s = make_node("MaxPool", 1);
  s.attrs["kernel_shape"] = Attribute{std::vector<int64_t>{2, 2}};
  s.attrs["auto_pad"] = Attribute{std::string("SAME_UPPER")};
  out = r.run(s, {&tx});
  ASSERT_TRUE(out.ok());
  ASSERT_EQ((*out)[0].shape(), (Shape{1, 1, 4, 4}));
  EXPECT_EQ((*out)[0].data<float>()[0], 6.0f);
  EXPECT_EQ((*out)[0].data<float>()[15], 16.0f);
  s.attrs["auto_pad"] = Attribute{std::string("SAME_LOWER")};
  out = r.run(s, {&tx});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].data<float>()[0], 1.0f);
}

TEST(PoolOps, GlobalPoolsAndUint8) {
  OpRun r;
  std::mt19937 rng(32);
  auto x = random_floats(rng, 2 * 3 * 5 * 7);
  Tensor tx = tensor({2, 3, 5, 7}, x);
  for (bool mx : {false, true}) {
    auto out = r.run(make_node(mx ? "GlobalMaxPool" : "GlobalAveragePool", 1), {&tx});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    ASSERT_EQ((*out)[0].shape(), (Shape{2, 3, 1, 1}));
    for (int p = 0; p < 6; ++p) {
      double s = 0, m = -INFINITY;
      for (int i = 0; i < 35; ++i) s += x[static_cast<size_t>(p * 35 + i)], m = std::max<double>(m, x[static_cast<size_t>(p * 35 + i)]);
      EXPECT_NEAR((*out)[0].data<float>()[p], mx ? m : s / 35, 1e-6);
    }
  }
  std::vector<uint8_t> u8 = {1, 200, 3, 4, 5, 6, 7, 255, 9};
  Tensor t8 = Tensor::from_values<uint8_t>({1, 1, 3, 3}, u8).value();
  Node n = make_node("MaxPool", 1);
  n.attrs["kernel_shape"] = Attribute{std::vector<int64_t>{2, 2}};
  auto out = r.run(n, {&t8});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(std::vector<uint8_t>((*out)[0].values<uint8_t>().begin(), (*out)[0].values<uint8_t>().end()), (std::vector<uint8_t>{200, 200, 255, 255}));
}

TEST(PoolOps, BadInputsGiveClearErrors) {
  OpRun r;
  Tensor x = Tensor::make(DType::kFloat, {1, 2, 4, 4}).value();
  auto expect_error = [&](const Node& n, const std::string& needle) {
    auto out = r.run(n, {&x});
    ASSERT_FALSE(out.ok()) << needle;
    EXPECT_EQ(out.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(out.status().message().find(needle), std::string::npos) << out.status().message();
  };
  Node n = make_node("MaxPool", 1);
  expect_error(n, "kernel_shape");
  n.attrs["kernel_shape"] = Attribute{std::vector<int64_t>{5, 5}};
  expect_error(n, "larger than the padded input");
  n.attrs["kernel_shape"] = Attribute{std::vector<int64_t>{2, 0}};
  expect_error(n, "kernel_shape");
  n.attrs["kernel_shape"] = Attribute{std::vector<int64_t>{2, 2}};
  n.attrs["strides"] = Attribute{std::vector<int64_t>{0, 1}};
  expect_error(n, "strides");
  n.attrs.erase("strides");
  n.attrs["pads"] = Attribute{std::vector<int64_t>{1, 1}};
  expect_error(n, "pads");
  n.attrs["pads"] = Attribute{std::vector<int64_t>{int64_t{1} << 40, 0, 0, 0}};
  expect_error(n, "pads");
  n.attrs.erase("pads");
  n.attrs["auto_pad"] = Attribute{std::string("BOGUS")};
  expect_error(n, "auto_pad");
  // A 2^30-wide window over a 1x1 input (pads 2^30 - 1, strides 2^30): one output, found
  // without walking the window's taps.
  {
    Tensor one = tensor({1, 1, 1, 1}, {3.0f});
    const int64_t big = int64_t{1} << 30;
    for (const char* op : {"MaxPool", "AveragePool"}) {
      Node h = make_node(op, 1);
      h.attrs["kernel_shape"] = Attribute{std::vector<int64_t>{big, big}};
      h.attrs["strides"] = Attribute{std::vector<int64_t>{big, big}};
      h.attrs["pads"] = Attribute{std::vector<int64_t>{big - 1, big - 1, big - 1, big - 1}};
      h.attrs["count_include_pad"] = Attribute{int64_t{1}};
      auto ho = r.run(h, {&one});
      ASSERT_TRUE(ho.ok()) << ho.status().to_string();
      ASSERT_EQ((*ho)[0].shape(), (Shape{1, 1, 1, 1}));
      // Average with the pad counted: every tap of the window is inside [-pb, in + pe).
      EXPECT_FLOAT_EQ((*ho)[0].data<float>()[0], std::string(op) == "MaxPool" ? 3.0f : 3.0f / static_cast<float>(big) / static_cast<float>(big));
    }
  }
  Tensor x2 = Tensor::make(DType::kFloat, {4, 4}).value();
  Node m = make_node("MaxPool", 1);
  m.attrs["kernel_shape"] = Attribute{std::vector<int64_t>{2}};
  auto out = r.run(m, {&x2});
  EXPECT_FALSE(out.ok());
}

// ---- normalization ----

TEST(NormOps, BatchNormalizationByFormula) {
  OpRun r;
  // The spec's formula y = scale * (x - mean) / sqrt(var + eps) + B per channel.
  Tensor x = tensor({1, 2, 1, 3}, {-1, 0, 1, 2, 3, 4});
  Tensor scale = tensor({2}, {1.0f, 1.5f}), b = tensor({2}, {0.0f, 1.0f}), mean = tensor({2}, {0.0f, 3.0f}), var = tensor({2}, {1.0f, 1.5f});
  Node n = make_node("BatchNormalization", 5);
  n.attrs["epsilon"] = Attribute{1e-2f};
  auto out = r.run(n, {&x, &scale, &b, &mean, &var});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  std::vector<float> want;
  const float xs[] = {-1, 0, 1, 2, 3, 4};
  for (int i = 0; i < 6; ++i) {
    const int c = i / 3;
    const double sc[] = {1.0, 1.5}, bb[] = {0.0, 1.0}, mm[] = {0.0, 3.0}, vv[] = {1.0, 1.5};
    want.push_back(static_cast<float>(sc[c] * (xs[i] - mm[c]) / std::sqrt(vv[c] + 1e-2) + bb[c]));
  }
  expect_near(values((*out)[0]), want, 1e-6, "bn");
  Tensor bad = tensor({3}, {1, 1, 1});
  out = r.run(n, {&x, &bad, &b, &mean, &var});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("scale"), std::string::npos);
  n.attrs["training_mode"] = Attribute{int64_t{1}};
  out = r.run(n, {&x, &scale, &b, &mean, &var});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("training_mode"), std::string::npos);
}

TEST(NormOps, InstanceAndLayerNormalizationMatchTheReference) {
  OpRun r;
  std::mt19937 rng(33);
  // InstanceNormalization over the spatial dims of each (n, c).
  Shape xs{2, 3, 4, 5};
  auto x = random_floats(rng, numel(xs)), sc = random_floats(rng, 3), b = random_floats(rng, 3);
  Tensor tx = tensor(xs, x), tsc = tensor({3}, sc), tb = tensor({3}, b);
  Node in = make_node("InstanceNormalization", 3);
  in.attrs["epsilon"] = Attribute{1e-3f};
  auto out = r.run(in, {&tx, &tsc, &tb});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  std::vector<float> want(x.size());
  for (int p = 0; p < 6; ++p) {
    double m = 0, v = 0;
    for (int i = 0; i < 20; ++i) m += x[static_cast<size_t>(p * 20 + i)];
    m /= 20;
    for (int i = 0; i < 20; ++i) v += std::pow(x[static_cast<size_t>(p * 20 + i)] - m, 2);
    v /= 20;
    for (int i = 0; i < 20; ++i) {
      want[static_cast<size_t>(p * 20 + i)] = static_cast<float>(sc[static_cast<size_t>(p % 3)] * (x[static_cast<size_t>(p * 20 + i)] - m) / std::sqrt(v + 1e-3) + b[static_cast<size_t>(p % 3)]);
    }
  }
  expect_near(values((*out)[0]), want, 1e-5, "instance norm");
  // LayerNormalization for every axis, with the Mean and InvStdDev outputs.
  for (int64_t axis = -4; axis < 4; ++axis) {
    const int64_t a = axis < 0 ? axis + 4 : axis;
    Shape nd(xs.begin() + a, xs.end());
    const int64_t d = numel(nd), rows = numel(xs) / d;
    auto lsc = random_floats(rng, d), lb = random_floats(rng, d);
    Tensor tls = tensor(nd, lsc), tlb = tensor(nd, lb);
    Node ln = make_node("LayerNormalization", 3, 3);
    ln.attrs["axis"] = Attribute{axis};
    auto lo = r.run(ln, {&tx, &tls, &tlb});
    ASSERT_TRUE(lo.ok()) << lo.status().to_string();
    std::vector<float> wy(x.size()), wm, wi;
    for (int64_t row = 0; row < rows; ++row) {
      double m = 0, v = 0;
      for (int64_t i = 0; i < d; ++i) m += x[static_cast<size_t>(row * d + i)];
      m /= static_cast<double>(d);
      for (int64_t i = 0; i < d; ++i) v += std::pow(x[static_cast<size_t>(row * d + i)] - m, 2);
      v /= static_cast<double>(d);
      const double inv = 1 / std::sqrt(v + 1e-5);
      wm.push_back(static_cast<float>(m));
      wi.push_back(static_cast<float>(inv));
      for (int64_t i = 0; i < d; ++i) {
        const size_t at = static_cast<size_t>(row * d + i);
        wy[at] = static_cast<float>((x[at] - m) * inv * lsc[static_cast<size_t>(i)] + lb[static_cast<size_t>(i)]);
      }
    }
    expect_near(values((*lo)[0]), wy, 1e-5, "layer norm axis " + std::to_string(axis));
    expect_near(values((*lo)[1]), wm, 1e-6, "mean");
    expect_near(values((*lo)[2]), wi, 1e-4, "inv std");
    Shape stat(xs.begin(), xs.begin() + a);
    stat.resize(4, 1);
    EXPECT_EQ((*lo)[1].shape(), stat);
  }
  // A Scale that does not broadcast is refused.
  Tensor bad = tensor({4}, {1, 1, 1, 1});
  Node ln = make_node("LayerNormalization", 2);
  auto lo = r.run(ln, {&tx, &bad});
  ASSERT_FALSE(lo.ok());
  EXPECT_NE(lo.status().message().find("Scale"), std::string::npos);
}

// ---- Resize ----

// 2-D resize of the last two dims by the spec's formulas: nearest (every rounding) and bilinear.
double src_coord(const std::string& ct, int64_t o, double scale, int64_t in, double len) {
  if (ct == "half_pixel") return (o + 0.5) / scale - 0.5;
  if (ct == "pytorch_half_pixel") return len > 1 ? (o + 0.5) / scale - 0.5 : 0;
  if (ct == "align_corners") return len == 1 ? 0 : o * (in - 1.0) / (len - 1);
  if (ct == "asymmetric") return o / scale;
  return (o + 0.5) / scale;  // tf_half_pixel_for_nn
}

std::vector<float> resize2d_ref(const std::vector<float>& x, int64_t planes, int64_t ih, int64_t iw, int64_t oh, int64_t ow,
                                double sh, double sw, double lh, double lw, const std::string& mode, const std::string& ct, const std::string& nm) {
  std::vector<float> y(static_cast<size_t>(planes * oh * ow));
  auto nearest = [&](double v, int64_t in) {
    int64_t i;
    const double f = std::floor(v);
    if (nm == "floor") i = static_cast<int64_t>(f);
    else if (nm == "ceil") i = static_cast<int64_t>(std::ceil(v));
    else if (v - f == 0.5) i = static_cast<int64_t>(nm == "round_prefer_ceil" ? f + 1 : f);
    else i = static_cast<int64_t>(std::round(v));
    return std::clamp<int64_t>(i, 0, in - 1);
  };
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x.data() + p * ih * iw;
    for (int64_t oy = 0; oy < oh; ++oy) {
      for (int64_t ox = 0; ox < ow; ++ox) {
        // An axis of scale 1 and equal size is copied as is (ONNX Runtime's rule, which hearth follows).
        const double ys = (sh == 1 && ih == oh) ? oy : src_coord(ct, oy, sh, ih, lh);
        const double xs = (sw == 1 && iw == ow) ? ox : src_coord(ct, ox, sw, iw, lw);
        double v;
        if (mode == "nearest") {
          v = xp[nearest(ys, ih) * iw + nearest(xs, iw)];
        } else {
          const double yc = std::clamp(ys, 0.0, ih - 1.0), xc = std::clamp(xs, 0.0, iw - 1.0);
          const int64_t y0 = static_cast<int64_t>(yc), x0 = static_cast<int64_t>(xc);
          const int64_t y1 = std::min(y0 + 1, ih - 1), x1 = std::min(x0 + 1, iw - 1);
          const double fy = yc - y0, fx = xc - x0;
          v = (1 - fy) * ((1 - fx) * xp[y0 * iw + x0] + fx * xp[y0 * iw + x1]) + fy * ((1 - fx) * xp[y1 * iw + x0] + fx * xp[y1 * iw + x1]);
        }
        y[static_cast<size_t>((p * oh + oy) * ow + ox)] = static_cast<float>(v);
      }
    }
  }
  return y;
}

TEST(ResizeOp, MatchesTheReferenceOnRandomShapes) {
  OpRun r;
  std::mt19937 rng(34);
  auto u = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  const char* cts[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"};
  const char* nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  for (int it = 0; it < 120; ++it) {
    const std::string mode = it % 2 ? "linear" : "nearest";
    const std::string ct = cts[(it / 2) % 5];
    if (mode == "linear" && ct == "tf_half_pixel_for_nn") continue;
    const std::string nm = nms[(it / 10) % 4];
    const int64_t n = u(1, 2), c = u(1, 3), ih = u(1, 9), iw = u(1, 9);
    Shape xs{n, c, ih, iw};
    auto x = random_floats(rng, numel(xs));
    Tensor tx = tensor(xs, x);
    Node node = make_node("Resize", 4);
    node.attrs["mode"] = Attribute{mode};
    node.attrs["coordinate_transformation_mode"] = Attribute{ct};
    node.attrs["nearest_mode"] = Attribute{nm};
    Tensor empty = Tensor::make(DType::kFloat, {0}).value();
    int64_t oh, ow;
    double sh, sw, lh, lw;
    Result<std::vector<Tensor>> out = Status(ErrorCode::kInternal, "unset");
    if (it % 3 == 0) {
      // scales: the coordinate formulas see in * scale, the output floor(in * scale).
      const float fh = static_cast<float>(u(1, 12)) / 4, fw = static_cast<float>(u(1, 12)) / 4;
      sh = fh, sw = fw;
      lh = ih * sh, lw = iw * sw;
      oh = static_cast<int64_t>(std::floor(lh)), ow = static_cast<int64_t>(std::floor(lw));
      Tensor sc = tensor({4}, {1, 1, fh, fw});
      if (oh == 0 || ow == 0) continue;
      out = r.run(node, {&tx, &empty, &sc, nullptr}, 13);
    } else {
      oh = u(1, 14), ow = u(1, 14);
      sh = static_cast<double>(oh) / ih, sw = static_cast<double>(ow) / iw;
      lh = static_cast<double>(oh), lw = static_cast<double>(ow);
      Tensor sz = ints({n, c, oh, ow});
      out = r.run(node, {&tx, nullptr, nullptr, &sz}, 18);
    }
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    ASSERT_EQ((*out)[0].shape(), (Shape{n, c, oh, ow})) << it;
    auto ref = resize2d_ref(x, n * c, ih, iw, oh, ow, sh, sw, lh, lw, mode, ct, nm);
    expect_near(values((*out)[0]), ref, 1e-5, "case " + std::to_string(it) + " " + mode + " " + ct + " " + nm);
  }
}

// The spec's examples: test_resize_upsample_scales_nearest (2x2 -> 4x6) and
// test_resize_upsample_scales_linear (2x2 -> 4x4, half_pixel).
TEST(ResizeOp, SpecExamplesByHand) {
  OpRun r;
  Tensor x = tensor({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor empty = Tensor::make(DType::kFloat, {0}).value();
  Tensor sc = tensor({4}, {1, 1, 2, 3});
  Node n = make_node("Resize", 3);
  auto out = r.run(n, {&x, &empty, &sc}, 11);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values((*out)[0]), (std::vector<float>{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}));
  n.attrs["mode"] = Attribute{std::string("linear")};
  Tensor sc2 = tensor({4}, {1, 1, 2, 2});
  out = r.run(n, {&x, &empty, &sc2}, 11);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  expect_near(values((*out)[0]), {1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4}, 1e-6, "linear");
  // Opset 10: X and scales only; nearest is asymmetric floor.
  Node n10 = make_node("Resize", 2);
  out = r.run(n10, {&x, &sc}, 10);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].shape(), (Shape{1, 1, 4, 6}));
  EXPECT_EQ((*out)[0].data<float>()[23], 4.0f);
  // Upsample (opset 9): the same as Resize-10.
  Node up = make_node("Upsample", 2);
  out = r.run(up, {&x, &sc}, 9);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values((*out)[0]), (std::vector<float>{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}));
}

TEST(ResizeOp, BadInputsGiveClearErrors) {
  OpRun r;
  Tensor x = tensor({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor empty = Tensor::make(DType::kFloat, {0}).value();
  auto expect_error = [&](const Node& n, std::vector<const Tensor*> in, const std::string& needle, int64_t opset = 13) {
    auto out = r.run(n, std::move(in), opset);
    ASSERT_FALSE(out.ok()) << needle;
    EXPECT_NE(out.status().message().find(needle), std::string::npos) << out.status().message();
  };
  Node n = make_node("Resize", 4);
  Tensor sc = tensor({4}, {1, 1, 2, 2});
  Tensor sz = ints({1, 1, 4, 4});
  expect_error(n, {&x, &empty, &sc, &sz}, "not both");
  expect_error(n, {&x, &empty, &empty, nullptr}, "scales or sizes");
  Tensor neg = tensor({4}, {1, 1, -2, 2});
  expect_error(n, {&x, &empty, &neg, nullptr}, "scales");
  Tensor huge = tensor({4}, {1, 1, 1e30f, 1e30f});
  expect_error(n, {&x, &empty, &huge, nullptr}, "scale");
  Tensor three = tensor({3}, {1, 2, 2});
  expect_error(n, {&x, &empty, &three, nullptr}, "scales has 3 values");
  Tensor badsz = ints({1, 1, -4, 4});
  expect_error(n, {&x, &empty, nullptr, &badsz}, "sizes");
  // Cubic on every axis of a rank-7 tensor: 4^7 reads per output element, refused.
  Tensor x7 = tensor(Shape(7, 2), std::vector<float>(128, 1.0f));
  Tensor sc7 = tensor({7}, std::vector<float>(7, 2.0f));
  Node cubic = n;
  cubic.attrs["mode"] = Attribute{std::string("cubic")};
  expect_error(cubic, {&x7, &empty, &sc7, nullptr}, "too many axes");
  Node m = n;
  m.attrs["mode"] = Attribute{std::string("bogus")};
  expect_error(m, {&x, &empty, &sc, nullptr}, "mode");
  m = n;
  m.attrs["coordinate_transformation_mode"] = Attribute{std::string("bogus")};
  expect_error(m, {&x, &empty, &sc, nullptr}, "coordinate_transformation_mode");
}

// ---- Pad ----

std::vector<float> pad_ref(const std::vector<float>& x, const Shape& xs, const std::vector<int64_t>& pads, const std::string& mode, float value, Shape& ys) {
  const size_t r = xs.size();
  ys.resize(r);
  for (size_t i = 0; i < r; ++i) ys[i] = xs[i] + pads[i] + pads[r + i];
  std::vector<float> y(static_cast<size_t>(numel(ys)));
  std::vector<int64_t> oc(r);
  for (int64_t o = 0; o < numel(ys); ++o) {
    int64_t rem = o;
    for (size_t i = r; i-- > 0;) oc[i] = rem % ys[i], rem /= ys[i];
    int64_t off = 0;
    bool constant = false;
    for (size_t i = 0; i < r; ++i) {
      int64_t p = oc[i] - pads[i];
      if (p < 0 || p >= xs[i]) {
        if (mode == "constant") constant = true;
        else if (mode == "edge") p = std::clamp<int64_t>(p, 0, xs[i] - 1);
        else if (mode == "reflect") {
          // numpy: reflect back and forth across the edges as often as needed.
          while (p < 0 || p >= xs[i]) p = p < 0 ? -p : 2 * (xs[i] - 1) - p;
        }
        else p = ((p % xs[i]) + xs[i]) % xs[i];  // wrap
      }
      off = off * xs[i] + p;
    }
    y[static_cast<size_t>(o)] = constant ? value : x[static_cast<size_t>(off)];
  }
  return y;
}

TEST(PadOp, MatchesTheReferenceOnRandomShapes) {
  OpRun r;
  std::mt19937 rng(35);
  auto u = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  const char* modes[] = {"constant", "reflect", "edge", "wrap"};
  for (int it = 0; it < 120; ++it) {
    const std::string mode = modes[it % 4];
    const size_t rank = static_cast<size_t>(u(1, 4));
    Shape xs;
    for (size_t i = 0; i < rank; ++i) xs.push_back(u(2, 6));
    std::vector<int64_t> pads(2 * rank);
    for (size_t i = 0; i < 2 * rank; ++i) {
      const int64_t d = xs[i % rank];
      pads[i] = mode == "wrap" ? u(-1, static_cast<int>(d - 1)) : u(-1, 7);
    }
    auto x = random_floats(rng, numel(xs));
    Shape ys;
    auto ref = pad_ref(x, xs, pads, mode, 0.5f, ys);
    Tensor tx = tensor(xs, x), tp = ints(pads), tv = tensor({}, {0.5f});
    Node n = make_node("Pad", 3);
    n.attrs["mode"] = Attribute{mode};
    auto out = r.run(n, {&tx, &tp, &tv}, 19);
    ASSERT_TRUE(out.ok()) << out.status().to_string() << " " << shape_string(pads);
    ASSERT_EQ((*out)[0].shape(), ys);
    EXPECT_EQ(values((*out)[0]), ref) << "case " << it << " " << mode << " pads " << shape_string(pads);
  }
}

TEST(PadOp, OpsetsAxesTypesAndErrors) {
  OpRun r;
  // Opset 2: pads and value are attributes.
  Tensor x = tensor({2, 2}, {1, 2, 3, 4});
  Node a = make_node("Pad", 1);
  a.attrs["pads"] = Attribute{std::vector<int64_t>{0, 1, 0, 1}};
  a.attrs["value"] = Attribute{9.0f};
  auto out = r.run(a, {&x}, 2);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values((*out)[0]), (std::vector<float>{9, 1, 2, 9, 9, 3, 4, 9}));
  // Opset 18: axes select the dims the pads apply to (here the last, as axis -1).
  Node b = make_node("Pad", 4);
  Tensor pads = ints({2, 0}), axes = ints({-1});
  out = r.run(b, {&x, &pads, nullptr, &axes}, 18);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values((*out)[0]), (std::vector<float>{0, 0, 1, 2, 0, 0, 3, 4}));
  // The spec's reflect example: [[1.0, 1.2], [2.3, 3.4], [4.5, 5.7]] with pads [0, 2, 0, 0] gives
  // [[1.0, 1.2, 1.0, 1.2], [2.3, 3.4, 2.3, 3.4], [4.5, 5.7, 4.5, 5.7]].
  Tensor s = tensor({3, 2}, {1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f});
  Tensor sp = ints({0, 2, 0, 0});
  Node c = make_node("Pad", 2);
  c.attrs["mode"] = Attribute{std::string("reflect")};
  out = r.run(c, {&s, &sp}, 13);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  // The pad (2) is wider than the dim's reflection (1): columns -2, -1 reflect to 0, 1.
  EXPECT_EQ(values((*out)[0]), (std::vector<float>{1.0f, 1.2f, 1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f, 4.5f, 5.7f}));
  // int64 data with a constant.
  Tensor xi = Tensor::from_values<int64_t>({3}, std::vector<int64_t>{7, 8, 9}).value();
  Tensor ip = ints({1, -1});
  Tensor iv = Tensor::scalar<int64_t>(-5);
  Node d = make_node("Pad", 3);
  out = r.run(d, {&xi, &ip, &iv}, 13);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(std::vector<int64_t>((*out)[0].values<int64_t>().begin(), (*out)[0].values<int64_t>().end()), (std::vector<int64_t>{-5, 7, 8}));
  // Errors: wrong pads count, cropping past the dim, reflect wider than the dim, bad mode.
  auto expect_error = [&](const Node& n, std::vector<const Tensor*> in, const std::string& needle) {
    auto o = r.run(n, std::move(in), 13);
    ASSERT_FALSE(o.ok()) << needle;
    EXPECT_EQ(o.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(o.status().message().find(needle), std::string::npos) << o.status().message();
  };
  Tensor p3 = ints({1, 1, 1});
  expect_error(c, {&x, &p3}, "pads has 3 values");
  Tensor crop = ints({-3, 0, 0, 0});
  Node e = make_node("Pad", 2);
  expect_error(e, {&x, &crop}, "crop");
  Node f = make_node("Pad", 2);
  f.attrs["mode"] = Attribute{std::string("mirror")};
  expect_error(f, {&x, &sp}, "mode");
  Tensor huge = ints({0, int64_t{1} << 40, 0, 0});
  auto o = r.run(e, {&x, &huge}, 13);
  EXPECT_FALSE(o.ok());
}

}  // namespace
}  // namespace hearth::onnx
