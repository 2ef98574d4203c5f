// Conv and ConvTranspose (ops/conv.cpp): the float kernels (every table this CPU runs) against
// their scalar references, then the ops on random shapes (groups, depthwise, strides, pads,
// dilations, auto_pad, bias, fused activations, 1-D/2-D/3-D) against plain nested-loop
// references written here from the ONNX spec's formulas, a few tiny cases worked by hand, the
// errors of bad attributes and shapes, and a Session with Conv -> BatchNormalization -> Relu
// run fused and unfused.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/onnx/kernels/float_kernels.h"
#include "hearth/onnx/op_registry.h"
#include "hearth/onnx/session.h"

namespace hearth::onnx {
namespace {

std::vector<float> random_floats(std::mt19937& rng, int64_t n) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

Tensor tensor(Shape s, const std::vector<float>& v) { return Tensor::from_values<float>(std::move(s), v).value(); }

int64_t numel(const Shape& s) {
  int64_t p = 1;
  for (int64_t d : s) p *= d;
  return p;
}

std::vector<const kern::FloatKernels*> float_tables() {
  std::vector<const kern::FloatKernels*> v{&kern::float_kernels_generic()};
  if (auto* k = kern::float_kernels_avx2()) v.push_back(k);
  if (auto* k = kern::float_kernels_avx512()) v.push_back(k);
  return v;
}

TEST(FloatKernels, GemmMatchesTheReferenceOnRandomShapes) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> small(1, 70);
  struct D {
    int64_t m, n, k;
  };
  std::vector<D> dims = {{1, 1, 1}, {6, 16, 256}, {8, 32, 257}, {13, 47, 600}, {64, 100, 27}, {3, 1, 5}};
  for (int i = 0; i < 25; ++i) dims.push_back({small(rng), small(rng), small(rng) * 5});
  for (const auto* fk : float_tables()) {
    for (const auto& d : dims) {
      for (bool acc : {false, true}) {
        const int64_t lda = d.k + 2, ldb = d.n + 3, ldc = d.n + 1;
        auto a = random_floats(rng, d.m * lda), b = random_floats(rng, d.k * ldb);
        auto c0 = random_floats(rng, d.m * ldc);
        std::vector<float> ref = c0, got = c0;
        kern::sgemm_ref(d.m, d.n, d.k, a.data(), lda, b.data(), ldb, ref.data(), ldc, acc);
        std::vector<float> bp(static_cast<size_t>(kern::packed_b_floats(*fk, d.k, d.n)));
        fk->pack_b(d.k, d.n, b.data(), ldb, bp.data());
        fk->gemm_packed(d.m, d.n, d.k, a.data(), lda, bp.data(), got.data(), ldc, acc);
        // gemm_direct (B read in place) must give the same within rounding.
        std::vector<float> direct = c0;
        fk->gemm_direct(d.m, d.n, d.k, a.data(), lda, b.data(), ldb, direct.data(), ldc, acc);
        for (size_t i = 0; i < direct.size(); ++i) {
          ASSERT_NEAR(direct[i], ref[i], 1e-4 * (1 + std::sqrt(static_cast<double>(d.k)))) << fk->name << " direct at " << i;
        }
        for (int64_t i = 0; i < d.m; ++i) {
          for (int64_t j = 0; j < ldc; ++j) {
            const size_t at = static_cast<size_t>(i * ldc + j);
            if (j >= d.n) {
              ASSERT_EQ(got[at], c0[at]) << "wrote past n";  // the row padding is untouched
              continue;
            }
            ASSERT_NEAR(got[at], ref[at], 1e-4 * (1 + std::sqrt(static_cast<double>(d.k))))
                << fk->name << " m=" << d.m << " n=" << d.n << " k=" << d.k << " at " << i << "," << j;
          }
        }
      }
    }
  }
}

// Every kernel table this CPU runs gets the widest float kernels of its ISA family: only ref
// falls back to the generic ones (an x86 table added later must not silently lose its SIMD).
TEST(FloatKernels, EveryKernelTableFindsItsIsasFloatKernels) {
  for (const auto* kt : kernels::available_kernels()) {
    const std::string name(kt->name);
    const std::string got(kern::float_kernels_for(kt->name).name);
    if (name.rfind("avx512", 0) == 0) {
      EXPECT_EQ(got, "avx512") << name;
    } else if (name == "avx2") {
      EXPECT_EQ(got, "avx2") << name;
    } else {
      EXPECT_EQ(got, std::string(kern::float_kernels_generic().name)) << name;
    }
  }
}

TEST(FloatKernels, DepthwiseMatchesTheReference) {
  std::mt19937 rng(8);
  std::uniform_int_distribution<int> r(1, 5);
  for (const auto* fk : float_tables()) {
    for (int it = 0; it < 60; ++it) {
      kern::DepthwiseArgs a{};
      a.kh = r(rng), a.kw = r(rng), a.sh = r(rng) % 3 + 1, a.sw = r(rng) % 3 + 1, a.dh = r(rng) % 2 + 1, a.dw = r(rng) % 2 + 1;
      a.oh = r(rng) * 3, a.ow = r(rng) * 13;
      const int64_t rows = (a.oh - 1) * a.sh + (a.kh - 1) * a.dh + 1;
      const int64_t cols = (a.ow - 1) * a.sw + (a.kw - 1) * a.dw + 1;
      a.pw = (cols + a.sw - 1) / a.sw;
      a.plane = rows * a.pw;
      auto p = random_floats(rng, a.plane * a.sw);
      auto w = random_floats(rng, a.kh * a.kw);
      a.p = p.data();
      a.w = w.data();
      a.bias = 0.25f;
      a.ep.act = static_cast<kern::Act>(it % 4);
      a.ep.alpha = -0.1f, a.ep.beta = 0.3f;
      if (a.ep.act == kern::Act::kLeakyRelu) a.ep.alpha = 0.2f;
      std::vector<float> ref(static_cast<size_t>(a.oh * a.ow)), got(ref.size());
      a.out = ref.data();
      kern::depthwise_ref(a);
      a.out = got.data();
      fk->depthwise(a);
      for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-5) << fk->name << " it " << it << " at " << i;
    }
  }
}

// ---- the ops against nested-loop references ----

struct ConvCase {
  Shape x;  // N, C, spatial...
  int64_t m = 1, group = 1;
  std::vector<int64_t> k, s, d, pads;  // pads: begins then ends
  std::string auto_pad = "NOTSET";
  bool bias = true;
  std::string act;  // "", relu, leaky_relu, clip
};

// The spec's conv, one output element at a time (in double); explicit pads only.
std::vector<float> conv_ref(const ConvCase& cc, const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                            const std::vector<int64_t>& pb, Shape& yshape) {
  const size_t nd = cc.x.size() - 2;
  const int64_t n = cc.x[0], c = cc.x[1], cg = c / cc.group, mg = cc.m / cc.group;
  std::vector<int64_t> out(nd);
  for (size_t i = 0; i < nd; ++i) {
    const int64_t ek = (cc.k[i] - 1) * cc.d[i] + 1;
    out[i] = (cc.x[2 + i] + cc.pads[i] + cc.pads[nd + i] - ek) / cc.s[i] + 1;
  }
  yshape = {n, cc.m};
  yshape.insert(yshape.end(), out.begin(), out.end());
  std::vector<float> y(static_cast<size_t>(numel(yshape)));
  const int64_t osz = numel(out), ksz = numel(cc.k), isz = numel(Shape(cc.x.begin() + 2, cc.x.end()));
  std::vector<int64_t> oc(nd), kc(nd);
  for (int64_t ni = 0; ni < n; ++ni) {
    for (int64_t mi = 0; mi < cc.m; ++mi) {
      const int64_t gi = mi / mg;
      for (int64_t o = 0; o < osz; ++o) {
        int64_t r = o;
        for (size_t i = nd; i-- > 0;) oc[i] = r % out[i], r /= out[i];
        double s = cc.bias ? b[static_cast<size_t>(mi)] : 0.0;
        for (int64_t ci = 0; ci < cg; ++ci) {
          for (int64_t kk = 0; kk < ksz; ++kk) {
            int64_t q = kk;
            for (size_t i = nd; i-- > 0;) kc[i] = q % cc.k[i], q /= cc.k[i];
            int64_t off = 0;
            bool inside = true;
            for (size_t i = 0; i < nd; ++i) {
              const int64_t p = oc[i] * cc.s[i] - pb[i] + kc[i] * cc.d[i];
              inside = inside && p >= 0 && p < cc.x[2 + i];
              off = off * cc.x[2 + i] + p;
            }
            if (!inside) continue;
            s += static_cast<double>(w[static_cast<size_t>((mi * cg + ci) * ksz + kk)]) *
                 x[static_cast<size_t>((ni * c + gi * cg + ci) * isz + off)];
          }
        }
        float v = static_cast<float>(s);
        if (cc.act == "relu") v = std::max(v, 0.0f);
        if (cc.act == "leaky_relu" && v < 0) v *= 0.1f;
        if (cc.act == "clip") v = std::min(std::max(v, -0.5f), 0.75f);
        y[static_cast<size_t>((ni * cc.m + mi) * osz + o)] = v;
      }
    }
  }
  return y;
}

struct OpRun {
  ThreadPool pool{2};
  BufferPool buffers;
  Result<std::vector<Tensor>> run(const kernels::KernelTable& kt, const Node& node, std::vector<const Tensor*> in, int64_t opset = 17) {
    OpContext ctx{pool, buffers, kt, opset};
    OpFn fn = op_registry().find(node.op_type, opset);
    if (!fn) return make_error(ErrorCode::kUnimplemented, "no {}", node.op_type);
    std::vector<Tensor> out(node.outputs.size());
    HEARTH_TRY(fn(ctx, node, in, out));
    return out;
  }
};

Node make_node(const std::string& op, size_t n_in) {
  Node n;
  n.name = "t";
  n.op_type = op;
  for (size_t i = 0; i < n_in; ++i) n.inputs.push_back("i" + std::to_string(i));
  n.outputs = {"y"};
  return n;
}

Node conv_node(const ConvCase& cc, bool explicit_kernel_shape) {
  Node n = make_node("Conv", cc.bias ? 3 : 2);
  n.attrs["group"] = Attribute{cc.group};
  n.attrs["strides"] = Attribute{cc.s};
  n.attrs["dilations"] = Attribute{cc.d};
  if (explicit_kernel_shape) n.attrs["kernel_shape"] = Attribute{cc.k};
  if (cc.auto_pad == "NOTSET") {
    n.attrs["pads"] = Attribute{cc.pads};
  } else {
    n.attrs["auto_pad"] = Attribute{cc.auto_pad};
  }
  if (!cc.act.empty()) {
    n.attrs["hearth.activation"] = Attribute{cc.act};
    if (cc.act == "leaky_relu") n.attrs["hearth.alpha"] = Attribute{0.1f};
    if (cc.act == "clip") n.attrs["hearth.alpha"] = Attribute{-0.5f}, n.attrs["hearth.beta"] = Attribute{0.75f};
  }
  return n;
}

void check_conv(OpRun& r, const ConvCase& cc0, std::mt19937& rng, int it) {
  ConvCase cc = cc0;
  const size_t nd = cc.x.size() - 2;
  // The pads auto_pad implies (the spec's formula), for the reference.
  std::vector<int64_t> pb(nd);
  if (cc.auto_pad != "NOTSET") {
    cc.pads.assign(2 * nd, 0);
    for (size_t i = 0; i < nd; ++i) {
      if (cc.auto_pad == "VALID") continue;
      const int64_t in = cc.x[2 + i], out = (in + cc.s[i] - 1) / cc.s[i];
      const int64_t total = std::max<int64_t>(0, (out - 1) * cc.s[i] + (cc.k[i] - 1) * cc.d[i] + 1 - in);
      cc.pads[i] = cc.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      cc.pads[nd + i] = total - cc.pads[i];
    }
  }
  for (size_t i = 0; i < nd; ++i) pb[i] = cc.pads[i];
  Shape ws{cc.m, cc.x[1] / cc.group};
  ws.insert(ws.end(), cc.k.begin(), cc.k.end());
  auto x = random_floats(rng, numel(cc.x)), w = random_floats(rng, numel(ws)), b = random_floats(rng, cc.m);
  Shape ys;
  auto ref = conv_ref(cc, x, w, b, pb, ys);
  Tensor tx = tensor(cc.x, x), tw = tensor(ws, w), tb = tensor({cc.m}, b);
  std::vector<const Tensor*> in{&tx, &tw};
  if (cc.bias) in.push_back(&tb);
  for (const kernels::KernelTable* kt : kernels::available_kernels()) {
    auto out = r.run(*kt, conv_node(cc0, it % 2 == 0), in);
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    const Tensor& y = (*out)[0];
    ASSERT_EQ(y.shape(), ys) << "case " << it;
    const double tol = 1e-5 * std::sqrt(static_cast<double>(numel(ws) / cc.m)) + 1e-6;
    for (int64_t i = 0; i < y.numel(); ++i) {
      ASSERT_NEAR(y.data<float>()[i], ref[static_cast<size_t>(i)], tol)
          << kt->name << " case " << it << " x " << shape_string(cc.x) << " w " << shape_string(ws) << " group " << cc.group << " at " << i;
    }
  }
}

TEST(ConvOp, MatchesTheReferenceOnRandomShapes) {
  OpRun r;
  std::mt19937 rng(11);
  auto u = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  const char* pads_modes[] = {"NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
  const char* acts[] = {"", "relu", "leaky_relu", "clip"};
  for (int it = 0; it < 160; ++it) {
    ConvCase cc;
    const size_t nd = it % 8 == 7 ? 3 : (it % 5 == 4 ? 1 : 2);
    const int kind = it % 4;  // 0: group 1, 1: depthwise, 2: grouped, 3: depthwise with multiplier
    // cg >= 8 with stride 1 takes the per-tap GEMM path (conv_taps), smaller cg im2col.
    int64_t g = 1, cg = it % 3 == 0 ? u(8, 12) : u(1, 6), mg = u(1, 20);
    if (kind == 1) g = u(1, 12), cg = 1, mg = 1;
    if (kind == 2) g = u(2, 4);
    if (kind == 3) g = u(2, 6), cg = 1, mg = 2;
    cc.group = g;
    cc.m = g * mg;
    cc.x = {u(1, 2), g * cg};
    for (size_t i = 0; i < nd; ++i) {
      cc.k.push_back(u(1, nd == 3 ? 3 : 5));
      cc.s.push_back(u(1, 3));
      cc.d.push_back(u(1, 2));
    }
    cc.auto_pad = pads_modes[it % 5];
    cc.pads.assign(2 * nd, 0);
    for (size_t i = 0; i < nd; ++i) {
      cc.pads[i] = u(0, 2), cc.pads[nd + i] = u(0, 2);
      const int64_t ek = (cc.k[i] - 1) * cc.d[i] + 1;
      cc.x.push_back(std::max<int64_t>(ek, 1) + u(0, nd == 3 ? 6 : 40));
    }
    cc.bias = it % 3 != 0;
    cc.act = acts[(it / 3) % 4];
    check_conv(r, cc, rng, it);
    if (testing::Test::HasFatalFailure()) return;
  }
  // Bigger shapes that cross the GEMM's column chunks and k blocks.
  std::vector<ConvCase> big = {
      {{1, 16, 40, 50}, 24, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, "NOTSET", true, "relu"},
      {{1, 64, 20, 33}, 40, 1, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, "NOTSET", true, ""},
      {{1, 96, 30, 30}, 24, 1, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, "NOTSET", true, "clip"},
      {{2, 48, 37, 41}, 48, 48, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, "NOTSET", true, "relu"},
      {{1, 32, 40, 40}, 32, 32, {5, 5}, {2, 2}, {1, 1}, {2, 2, 2, 2}, "NOTSET", false, ""},
      {{1, 8, 700}, 8, 1, {3}, {1}, {1}, {1, 1}, "NOTSET", true, ""},
  };
  for (size_t i = 0; i < big.size(); ++i) {
    check_conv(r, big[i], rng, 1000 + static_cast<int>(i));
    if (testing::Test::HasFatalFailure()) return;
  }
}

// The ONNX spec's example (test_basic_conv_with_padding / _without_padding): a 5x5 ramp
// 0..24 with a 3x3 kernel of ones is the sum of each 3x3 neighbourhood.
TEST(ConvOp, SpecExampleByHand) {
  OpRun r;
  std::vector<float> x(25), w(9, 1.0f);
  for (int i = 0; i < 25; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i);
  Tensor tx = tensor({1, 1, 5, 5}, x), tw = tensor({1, 1, 3, 3}, w);
  Node n = make_node("Conv", 2);
  n.attrs["kernel_shape"] = Attribute{std::vector<int64_t>{3, 3}};
  n.attrs["pads"] = Attribute{std::vector<int64_t>{1, 1, 1, 1}};
  auto out = r.run(kernels::active_kernels(), n, {&tx, &tw});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const std::vector<float> want = {12, 21, 27, 33, 24, 33, 54, 63, 72, 51, 63, 99, 108, 117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84};
  ASSERT_EQ((*out)[0].shape(), (Shape{1, 1, 5, 5}));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ((*out)[0].data<float>()[i], want[i]) << i;
  // Strides 2, pads 1 0 1 0 (asymmetric, test_conv_with_strides_and_asymmetric_padding) on a 7x5 ramp.
  std::vector<float> x7(35);
  for (int i = 0; i < 35; ++i) x7[static_cast<size_t>(i)] = static_cast<float>(i);
  Tensor t7 = tensor({1, 1, 7, 5}, x7);
  n.attrs["pads"] = Attribute{std::vector<int64_t>{1, 0, 1, 0}};
  n.attrs["strides"] = Attribute{std::vector<int64_t>{2, 2}};
  out = r.run(kernels::active_kernels(), n, {&t7, &tw});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const std::vector<float> want2 = {21, 33, 99, 117, 189, 207, 171, 183};
  ASSERT_EQ((*out)[0].shape(), (Shape{1, 1, 4, 2}));
  for (size_t i = 0; i < want2.size(); ++i) EXPECT_EQ((*out)[0].data<float>()[i], want2[i]) << i;
}

TEST(ConvOp, BadInputsGiveClearErrors) {
  OpRun r;
  Tensor x = Tensor::make(DType::kFloat, {1, 4, 5, 5}).value();
  Tensor w = Tensor::make(DType::kFloat, {6, 2, 3, 3}).value();
  auto expect_error = [&](Node n, std::vector<const Tensor*> in, const std::string& needle) {
    auto out = r.run(kernels::active_kernels(), n, std::move(in));
    ASSERT_FALSE(out.ok()) << needle;
    EXPECT_EQ(out.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(out.status().message().find(needle), std::string::npos) << out.status().message();
    EXPECT_NE(out.status().message().find("node 't'"), std::string::npos) << out.status().message();
  };
  Node n = make_node("Conv", 2);
  n.attrs["group"] = Attribute{int64_t{3}};
  expect_error(n, {&x, &w}, "group");
  n.attrs["group"] = Attribute{int64_t{0}};
  expect_error(n, {&x, &w}, "group must be > 0");
  n.attrs["group"] = Attribute{int64_t{2}};
  n.attrs["strides"] = Attribute{std::vector<int64_t>{0, 1}};
  expect_error(n, {&x, &w}, "strides");
  n.attrs.erase("strides");
  n.attrs["dilations"] = Attribute{std::vector<int64_t>{3, 3}};
  expect_error(n, {&x, &w}, "larger than the padded input");
  n.attrs.erase("dilations");
  n.attrs["pads"] = Attribute{std::vector<int64_t>{-1, 0, 0, 0}};
  expect_error(n, {&x, &w}, "pads");
  n.attrs["pads"] = Attribute{std::vector<int64_t>{0, 0}};
  expect_error(n, {&x, &w}, "pads has 2 values");
  n.attrs.erase("pads");
  n.attrs["dilations"] = Attribute{std::vector<int64_t>{int64_t{1} << 40, 1}};
  expect_error(n, {&x, &w}, "dilations");
  n.attrs.erase("dilations");
  n.attrs["kernel_shape"] = Attribute{std::vector<int64_t>{5, 5}};
  expect_error(n, {&x, &w}, "kernel_shape");
  n.attrs.erase("kernel_shape");
  n.attrs["auto_pad"] = Attribute{std::string("SAME")};
  expect_error(n, {&x, &w}, "auto_pad");
  n.attrs.erase("auto_pad");
  Tensor w3 = Tensor::make(DType::kFloat, {6, 2, 3}).value();
  expect_error(n, {&x, &w3}, "rank");
  Tensor bias = Tensor::make(DType::kFloat, {5}).value();
  Node nb = make_node("Conv", 3);
  nb.attrs["group"] = Attribute{int64_t{2}};
  expect_error(nb, {&x, &w, &bias}, "bias");
  Tensor xi = Tensor::make(DType::kInt64, {1, 4, 5, 5}).value();
  expect_error(n, {&xi, &w}, "float32");
  // Huge pads would make a huge output: refused by the size limit, not allocated.
  n.attrs["pads"] = Attribute{std::vector<int64_t>{int64_t{1} << 30, int64_t{1} << 30, int64_t{1} << 30, int64_t{1} << 30}};
  auto out = r.run(kernels::active_kernels(), n, {&x, &w});
  EXPECT_FALSE(out.ok());
  // Huge dilations with matching pads: a tiny output whose padded extent is ~2^31 per dim.
  // The direct paths would need that much scratch; hearth falls back to im2col and answers.
  {
    Tensor x1 = tensor({1, 8, 1, 1}, std::vector<float>(8, 1.0f));
    Tensor w1 = tensor({8, 1, 2, 2}, std::vector<float>(32, 1.0f));
    Node h = make_node("Conv", 2);
    h.attrs["group"] = Attribute{int64_t{8}};
    h.attrs["dilations"] = Attribute{std::vector<int64_t>{int64_t{1} << 30, int64_t{1} << 30}};
    h.attrs["pads"] = Attribute{std::vector<int64_t>{int64_t{1} << 30, int64_t{1} << 30, 0, 0}};
    auto hout = r.run(kernels::active_kernels(), h, {&x1, &w1});
    ASSERT_TRUE(hout.ok()) << hout.status().to_string();
    // Output size per dim: (1 + 2^30 - (2^30 + 1)) / 1 + 1 = 1; the one window sees x
    // through its bottom-right tap only: each output is 1.
    ASSERT_EQ((*hout)[0].shape(), (Shape{1, 8, 1, 1}));
    for (int i = 0; i < 8; ++i) EXPECT_EQ((*hout)[0].data<float>()[i], 1.0f);
    Tensor w8 = tensor({8, 8, 2, 2}, std::vector<float>(256, 1.0f));
    h.attrs["group"] = Attribute{int64_t{1}};
    hout = r.run(kernels::active_kernels(), h, {&x1, &w8});
    ASSERT_TRUE(hout.ok()) << hout.status().to_string();
    for (int i = 0; i < 8; ++i) EXPECT_EQ((*hout)[0].data<float>()[i], 8.0f);
  }
  // ConvTranspose: bad channels and output_padding.
  Node t = make_node("ConvTranspose", 2);
  Tensor wt = Tensor::make(DType::kFloat, {3, 2, 3, 3}).value();
  expect_error(t, {&x, &wt}, "channels");
  Tensor wt4 = Tensor::make(DType::kFloat, {4, 2, 3, 3}).value();
  t.attrs["output_padding"] = Attribute{std::vector<int64_t>{1, 1}};
  expect_error(t, {&x, &wt4}, "output_padding");
}

// ---- ConvTranspose ----

struct TCase {
  Shape x;
  int64_t mg = 1, group = 1;
  std::vector<int64_t> k, s, d, pads, opad;
  bool bias = true;
};

// The spec's transposed conv as a scatter: y[o*s - pb + k*d] += x[i] * w.
std::vector<float> conv_transpose_ref(const TCase& tc, const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                                      Shape& yshape) {
  const size_t nd = tc.x.size() - 2;
  const int64_t n = tc.x[0], c = tc.x[1], cg = c / tc.group, m = tc.mg * tc.group;
  std::vector<int64_t> out(nd);
  for (size_t i = 0; i < nd; ++i) {
    out[i] = tc.s[i] * (tc.x[2 + i] - 1) + tc.opad[i] + (tc.k[i] - 1) * tc.d[i] + 1 - tc.pads[i] - tc.pads[nd + i];
  }
  yshape = {n, m};
  yshape.insert(yshape.end(), out.begin(), out.end());
  std::vector<double> y(static_cast<size_t>(numel(yshape)));
  const int64_t osz = numel(out), ksz = numel(tc.k), isz = numel(Shape(tc.x.begin() + 2, tc.x.end()));
  std::vector<int64_t> ic(nd), kc(nd);
  for (int64_t ni = 0; ni < n; ++ni) {
    for (int64_t ci = 0; ci < c; ++ci) {
      const int64_t gi = ci / cg;
      for (int64_t q = 0; q < isz; ++q) {
        int64_t rr = q;
        for (size_t i = nd; i-- > 0;) ic[i] = rr % tc.x[2 + i], rr /= tc.x[2 + i];
        for (int64_t mj = 0; mj < tc.mg; ++mj) {
          for (int64_t kk = 0; kk < ksz; ++kk) {
            int64_t t = kk;
            for (size_t i = nd; i-- > 0;) kc[i] = t % tc.k[i], t /= tc.k[i];
            int64_t off = 0;
            bool inside = true;
            for (size_t i = 0; i < nd; ++i) {
              const int64_t p = ic[i] * tc.s[i] - tc.pads[i] + kc[i] * tc.d[i];
              inside = inside && p >= 0 && p < out[i];
              off = off * out[i] + p;
            }
            if (!inside) continue;
            y[static_cast<size_t>((ni * m + gi * tc.mg + mj) * osz + off)] +=
                static_cast<double>(x[static_cast<size_t>((ni * c + ci) * isz + q)]) * w[static_cast<size_t>((ci * tc.mg + mj) * ksz + kk)];
          }
        }
      }
    }
  }
  std::vector<float> yf(y.size());
  for (size_t i = 0; i < y.size(); ++i) yf[i] = static_cast<float>(y[i] + (tc.bias ? b[(i / static_cast<size_t>(osz)) % static_cast<size_t>(m)] : 0.0));
  return yf;
}

TEST(ConvTransposeOp, MatchesTheReferenceOnRandomShapes) {
  OpRun r;
  std::mt19937 rng(12);
  auto u = [&](int lo, int hi) { return static_cast<int64_t>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  for (int it = 0; it < 80; ++it) {
    TCase tc;
    const size_t nd = it % 6 == 5 ? 3 : (it % 4 == 3 ? 1 : 2);
    tc.group = it % 3 == 0 ? u(2, 3) : 1;
    tc.mg = u(1, 5);
    tc.x = {u(1, 2), tc.group * u(1, 4)};
    for (size_t i = 0; i < nd; ++i) {
      tc.k.push_back(u(1, 4));
      tc.s.push_back(u(1, 3));
      tc.d.push_back(u(1, 2));
      tc.x.push_back(u(1, nd == 3 ? 4 : 12));
      tc.opad.push_back(u(0, std::max(tc.s.back(), tc.d.back()) - 1));
    }
    tc.pads.assign(2 * nd, 0);
    for (size_t i = 0; i < 2 * nd; ++i) tc.pads[i] = u(0, 1);
    tc.bias = it % 2 == 0;
    Shape ws{tc.x[1], tc.mg};
    ws.insert(ws.end(), tc.k.begin(), tc.k.end());
    auto x = random_floats(rng, numel(tc.x)), w = random_floats(rng, numel(ws)), b = random_floats(rng, tc.mg * tc.group);
    Shape ys;
    auto ref = conv_transpose_ref(tc, x, w, b, ys);
    Tensor tx = tensor(tc.x, x), tw = tensor(ws, w), tb = tensor({tc.mg * tc.group}, b);
    Node n = make_node("ConvTranspose", tc.bias ? 3 : 2);
    n.attrs["group"] = Attribute{tc.group};
    n.attrs["strides"] = Attribute{tc.s};
    n.attrs["dilations"] = Attribute{tc.d};
    n.attrs["pads"] = Attribute{tc.pads};
    n.attrs["output_padding"] = Attribute{tc.opad};
    std::vector<const Tensor*> in{&tx, &tw};
    if (tc.bias) in.push_back(&tb);
    for (const kernels::KernelTable* kt : kernels::available_kernels()) {
      auto out = r.run(*kt, n, in);
      ASSERT_TRUE(out.ok()) << out.status().to_string();
      ASSERT_EQ((*out)[0].shape(), ys) << it;
      for (int64_t i = 0; i < (*out)[0].numel(); ++i) ASSERT_NEAR((*out)[0].data<float>()[i], ref[static_cast<size_t>(i)], 1e-4) << kt->name << " case " << it << " at " << i;
    }
    // The same output asked for by output_shape: the spec's pads (begin = total - total/2 unless SAME_UPPER).
    Node n2 = n;
    n2.attrs.erase("pads");
    n2.attrs["output_shape"] = Attribute{Shape(ys.begin() + 2, ys.end())};
    auto out2 = r.run(kernels::active_kernels(), n2, in);
    ASSERT_TRUE(out2.ok()) << out2.status().to_string();
    ASSERT_EQ((*out2)[0].shape(), ys);
  }
}

// A 1-D case by hand: x = [1, 2, 3], w = [1, 1, 1], stride 1 -> full correlation [1, 3, 6, 5, 3];
// stride 2 -> [1, 1, 3, 2, 5, 3, 3].
TEST(ConvTransposeOp, TinyByHand) {
  OpRun r;
  Tensor x = tensor({1, 1, 3}, {1, 2, 3}), w = tensor({1, 1, 3}, {1, 1, 1});
  Node n = make_node("ConvTranspose", 2);
  auto out = r.run(kernels::active_kernels(), n, {&x, &w});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].shape(), (Shape{1, 1, 5}));
  EXPECT_EQ(std::vector<float>((*out)[0].values<float>().begin(), (*out)[0].values<float>().end()), (std::vector<float>{1, 3, 6, 5, 3}));
  n.attrs["strides"] = Attribute{std::vector<int64_t>{2}};
  out = r.run(kernels::active_kernels(), n, {&x, &w});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(std::vector<float>((*out)[0].values<float>().begin(), (*out)[0].values<float>().end()),
            (std::vector<float>{1, 1, 3, 2, 5, 3, 3}));
}

// ---- Session: Conv -> BatchNormalization -> Relu fused and unfused ----

TEST(ConvFusion, FusedAndUnfusedSessionsAgree) {
  std::mt19937 rng(21);
  const int64_t c = 3, m = 8;
  auto make_model = [&](std::mt19937 r2) {
    Model model;
    model.ir_version = 8;
    model.opset = 17;
    Graph& g = model.graph;
    g.initializers["W"] = tensor({m, c, 3, 3}, random_floats(r2, m * c * 9));
    g.initializers["B"] = tensor({m}, random_floats(r2, m));
    auto scale = random_floats(r2, m), var = random_floats(r2, m);
    for (auto& v : var) v = std::abs(v) + 0.1f;
    g.initializers["scale"] = tensor({m}, scale);
    g.initializers["shift"] = tensor({m}, random_floats(r2, m));
    g.initializers["mean"] = tensor({m}, random_floats(r2, m));
    g.initializers["var"] = tensor({m}, var);
    Node conv = make_node("Conv", 0);
    conv.name = "conv";
    conv.inputs = {"X", "W", "B"};
    conv.outputs = {"c"};
    conv.attrs["pads"] = Attribute{std::vector<int64_t>{1, 1, 1, 1}};
    Node bn = make_node("BatchNormalization", 0);
    bn.name = "bn";
    bn.inputs = {"c", "scale", "shift", "mean", "var"};
    bn.outputs = {"b"};
    bn.attrs["epsilon"] = Attribute{1e-3f};
    Node relu = make_node("Relu", 0);
    relu.name = "relu";
    relu.inputs = {"b"};
    relu.outputs = {"Y"};
    g.nodes = {conv, bn, relu};
    ValueInfo xi;
    xi.name = "X";
    xi.dtype = DType::kFloat;
    xi.has_shape = true;
    xi.dims = {1, c, 9, 11};
    g.inputs = {xi};
    ValueInfo yo;
    yo.name = "Y";
    yo.dtype = DType::kFloat;
    g.outputs = {yo};
    return model;
  };
  if (!op_registry().find("Relu", 17)) GTEST_SKIP() << "Relu is not registered yet (ops/elementwise.cpp)";
  SessionOptions fused_opts, plain_opts;
  plain_opts.fuse = false;
  auto fused = Session::create(make_model(rng), fused_opts);
  auto plain = Session::create(make_model(rng), plain_opts);
  ASSERT_TRUE(fused.ok()) << fused.status().to_string();
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  EXPECT_EQ(fused->stats().fused, 2u);
  EXPECT_EQ(plain->stats().fused, 0u);
  Tensor x = tensor({1, c, 9, 11}, random_floats(rng, c * 99));
  auto a = fused->run({{"X", x}});
  auto b = plain->run({{"X", x}});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  ASSERT_EQ((*a)[0].shape(), (Shape{1, m, 9, 11}));
  ASSERT_EQ((*a)[0].shape(), (*b)[0].shape());
  int positive = 0;
  for (int64_t i = 0; i < (*a)[0].numel(); ++i) {
    ASSERT_NEAR((*a)[0].data<float>()[i], (*b)[0].data<float>()[i], 1e-4) << i;
    EXPECT_GE((*a)[0].data<float>()[i], 0.0f);
    positive += (*a)[0].data<float>()[i] > 0;
  }
  EXPECT_GT(positive, 0);  // not all clipped away
}

// ---- Session: Add -> Relu fused into one pass ----

// A residual tail: Y = Relu(X + B) with B broadcast over rows, and Z = Relu(X + X) whose sum is
// also a graph output (so that Add must stay on its own). Checked against plain arithmetic.
TEST(AddReluFusion, FusedWhereSafeAndEqualToTheArithmetic) {
  if (!op_registry().find("Relu", 17) || !op_registry().find("Add", 17)) GTEST_SKIP() << "Add/Relu not registered";
  std::mt19937 rng(5);
  const int64_t rows = 7, cols = 13;
  auto make_model = [&](DType dtype) {
    Model model;
    model.ir_version = 8;
    model.opset = 17;
    Graph& g = model.graph;
    auto node = [](const char* op, std::vector<std::string> ins, std::string out) {
      Node n = make_node(op, 0);
      n.name = out + "_node";
      n.inputs = std::move(ins);
      n.outputs = {std::move(out)};
      return n;
    };
    g.nodes = {node("Add", {"X", "B"}, "s"), node("Relu", {"s"}, "Y"), node("Add", {"X", "X"}, "S2"),
               node("Relu", {"S2"}, "Z")};
    ValueInfo xi, bi;
    xi.name = "X";
    xi.dtype = dtype;
    xi.has_shape = true;
    xi.dims = {rows, cols};
    bi = xi;
    bi.name = "B";
    bi.dims = {cols};
    g.inputs = {xi, bi};
    for (const char* o : {"Y", "Z", "S2"}) {
      ValueInfo v;
      v.name = o;
      v.dtype = dtype;
      g.outputs.push_back(v);
    }
    return model;
  };
  auto session = Session::create(make_model(DType::kFloat), {});
  ASSERT_TRUE(session.ok()) << session.status().to_string();
  EXPECT_EQ(session->stats().fused, 1u);  // Y's; Z's sum S2 is a graph output
  auto xv = random_floats(rng, rows * cols), bv = random_floats(rng, cols);
  auto out = session->run({{"X", tensor({rows, cols}, xv)}, {"B", tensor({cols}, bv)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  int zeros = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r * cols + c);
      const float sum = xv[i] + bv[static_cast<size_t>(c)];
      EXPECT_EQ((*out)[0].data<float>()[i], sum > 0 ? sum : 0.0f) << r << "," << c;
      zeros += sum <= 0;
      EXPECT_EQ((*out)[1].data<float>()[i], xv[i] + xv[i] > 0 ? xv[i] + xv[i] : 0.0f);
      EXPECT_EQ((*out)[2].data<float>()[i], xv[i] + xv[i]);
    }
  }
  EXPECT_GT(zeros, 0);
  EXPECT_LT(zeros, rows * cols);

  // Relu refuses uint8; the fused Add must refuse it too, naming the node.
  auto u8 = Session::create(make_model(DType::kUint8), {});
  ASSERT_TRUE(u8.ok()) << u8.status().to_string();
  auto tx = Tensor::make(DType::kUint8, {rows, cols});
  auto tb = Tensor::make(DType::kUint8, {cols});
  ASSERT_TRUE(tx.ok() && tb.ok());
  auto bad = u8->run({{"X", *tx}, {"B", *tb}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("s_node"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace hearth::onnx
