// LSTM, GRU and RNN (ops/rnn.cpp) against a double-precision implementation written here from
// the ONNX operator spec's equations, one batch entry and one step at a time, on random shapes
// and every option: directions, layouts, sequence_lens, initial states, biases, peepholes,
// input_forget, GRU linear_before_reset, clip, activations with alpha/beta; then shape errors.
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

enum class Kind { kLstm, kGru, kRnn };

struct Act {
  std::string name;
  double alpha = 0, beta = 0;
  double operator()(double x) const {
    if (name == "Sigmoid") return 1 / (1 + std::exp(-x));
    if (name == "Tanh") return std::tanh(x);
    if (name == "Relu") return std::max(0.0, x);
    if (name == "HardSigmoid") return std::min(1.0, std::max(0.0, alpha * x + beta));
    if (name == "LeakyRelu") return x >= 0 ? x : alpha * x;
    if (name == "Softsign") return x / (1 + std::fabs(x));
    ADD_FAILURE() << "activation " << name;
    return 0;
  }
};

struct Case {
  Kind kind = Kind::kLstm;
  int64_t seq = 1, batch = 1, input = 1, hidden = 1;
  std::string direction = "forward";
  int layout = 0;
  bool bias = false, lens = false, init_h = false, init_c = false, peep = false, input_forget = false, lbr = false;
  float clip = 0;
  bool custom_acts = false;
};

struct Data {
  Tensor X, W, R, B, L, H0, C0, P;
};

int64_t gates(Kind k) { return k == Kind::kLstm ? 4 : k == Kind::kGru ? 3 : 1; }

Tensor random_tensor(std::mt19937& rng, Shape shape, float scale = 1.0f) {
  const int64_t n = checked_numel(shape).value();
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return Tensor::from_values<float>(std::move(shape), v).value();
}

// The activations of the case for each direction, with the alpha/beta values they consume.
std::vector<Act> case_acts(const Case& c, int n_dir) {
  std::vector<Act> per;
  if (!c.custom_acts) {
    if (c.kind == Kind::kLstm) per = {{"Sigmoid"}, {"Tanh"}, {"Tanh"}};
    if (c.kind == Kind::kGru) per = {{"Sigmoid"}, {"Tanh"}};
    if (c.kind == Kind::kRnn) per = {{"Tanh"}};
  } else {
    if (c.kind == Kind::kLstm) per = {{"HardSigmoid", 0.3, 0.4}, {"LeakyRelu", 0.05}, {"Softsign"}};
    if (c.kind == Kind::kGru) per = {{"HardSigmoid", 0.3, 0.4}, {"LeakyRelu", 0.05}};
    if (c.kind == Kind::kRnn) per = {{"Relu"}};
  }
  std::vector<Act> all;
  for (int d = 0; d < n_dir; ++d) all.insert(all.end(), per.begin(), per.end());
  return all;
}

struct Expected {
  std::vector<double> y, yh, yc;
};

// The spec's equations, literally, in double.
Expected reference(const Case& c, const Data& in) {
  const int64_t T = c.seq, N = c.batch, I = c.input, H = c.hidden, G = gates(c.kind), GH = G * H;
  const int n_dir = c.direction == "bidirectional" ? 2 : 1;
  const auto acts = case_acts(c, n_dir);
  const size_t per = acts.size() / static_cast<size_t>(n_dir);
  auto X = [&](int64_t t, int64_t n, int64_t i) {
    return double{in.X.data<float>()[c.layout ? (n * T + t) * I + i : (t * N + n) * I + i]};
  };
  auto W = [&](int64_t d, int64_t row, int64_t i) { return double{in.W.data<float>()[(d * GH + row) * I + i]}; };
  auto R = [&](int64_t d, int64_t row, int64_t j) { return double{in.R.data<float>()[(d * GH + row) * H + j]}; };
  auto Wb = [&](int64_t d, int64_t row) { return c.bias ? double{in.B.data<float>()[d * 2 * GH + row]} : 0.0; };
  auto Rb = [&](int64_t d, int64_t row) { return c.bias ? double{in.B.data<float>()[d * 2 * GH + GH + row]} : 0.0; };
  auto state_index = [&](int64_t d, int64_t n, int64_t k) {
    return c.layout ? (n * n_dir + d) * H + k : (d * N + n) * H + k;
  };
  auto clip = [&](double v) { return c.clip > 0 ? std::min<double>(c.clip, std::max<double>(-c.clip, v)) : v; };
  Expected e;
  e.y.assign(static_cast<size_t>(T * n_dir * N * H), 0.0);
  e.yh.assign(static_cast<size_t>(n_dir * N * H), 0.0);
  e.yc = e.yh;
  for (int d = 0; d < n_dir; ++d) {
    const bool reverse = c.direction == "reverse" || d == 1;
    const Act* f = &acts[static_cast<size_t>(d) * per];
    for (int64_t n = 0; n < N; ++n) {
      std::vector<double> h(static_cast<size_t>(H), 0.0), cs(static_cast<size_t>(H), 0.0);
      for (int64_t k = 0; k < H; ++k) {
        if (c.init_h) h[static_cast<size_t>(k)] = in.H0.data<float>()[state_index(d, n, k)];
        if (c.init_c) cs[static_cast<size_t>(k)] = in.C0.data<float>()[state_index(d, n, k)];
      }
      const int64_t len = c.lens ? in.L.data<int32_t>()[n] : T;
      for (int64_t s = 0; s < len; ++s) {
        const int64_t t = reverse ? len - 1 - s : s;
        // gate q's x and h projections for unit k
        auto xp = [&](int64_t q, int64_t k) {
          double v = Wb(d, q * H + k);
          for (int64_t i = 0; i < I; ++i) v += W(d, q * H + k, i) * X(t, n, i);
          return v;
        };
        auto hp = [&](int64_t q, int64_t k, const std::vector<double>& hv) {
          double v = Rb(d, q * H + k);
          for (int64_t j = 0; j < H; ++j) v += R(d, q * H + k, j) * hv[static_cast<size_t>(j)];
          return v;
        };
        std::vector<double> hn(static_cast<size_t>(H)), cn(static_cast<size_t>(H));
        if (c.kind == Kind::kLstm) {
          for (int64_t k = 0; k < H; ++k) {
            const double cp = cs[static_cast<size_t>(k)];
            const double pi = c.peep ? in.P.data<float>()[d * 3 * H + k] : 0.0;
            const double po = c.peep ? in.P.data<float>()[d * 3 * H + H + k] : 0.0;
            const double pf = c.peep ? in.P.data<float>()[d * 3 * H + 2 * H + k] : 0.0;
            const double it = f[0](clip(xp(0, k) + hp(0, k, h) + pi * cp));
            const double ft = c.input_forget ? 1 - it : f[0](clip(xp(2, k) + hp(2, k, h) + pf * cp));
            const double ct = f[1](clip(xp(3, k) + hp(3, k, h)));
            const double Ct = ft * cp + it * ct;
            const double ot = f[0](clip(xp(1, k) + hp(1, k, h) + po * Ct));
            cn[static_cast<size_t>(k)] = Ct;
            hn[static_cast<size_t>(k)] = ot * f[2](Ct);
          }
          cs = cn;
        } else if (c.kind == Kind::kGru) {
          std::vector<double> r(static_cast<size_t>(H)), rh(static_cast<size_t>(H));
          for (int64_t k = 0; k < H; ++k) r[static_cast<size_t>(k)] = f[0](clip(xp(1, k) + hp(1, k, h)));
          for (int64_t k = 0; k < H; ++k)
            rh[static_cast<size_t>(k)] = r[static_cast<size_t>(k)] * h[static_cast<size_t>(k)];
          for (int64_t k = 0; k < H; ++k) {
            const double z = f[0](clip(xp(0, k) + hp(0, k, h)));
            const double hh = c.lbr ? f[1](clip(xp(2, k) + r[static_cast<size_t>(k)] * hp(2, k, h)))
                                    : f[1](clip(xp(2, k) + hp(2, k, rh)));
            hn[static_cast<size_t>(k)] = (1 - z) * hh + z * h[static_cast<size_t>(k)];
          }
        } else {
          for (int64_t k = 0; k < H; ++k) hn[static_cast<size_t>(k)] = f[0](clip(xp(0, k) + hp(0, k, h)));
        }
        h = hn;
        for (int64_t k = 0; k < H; ++k) {
          const int64_t yi = c.layout ? ((n * T + t) * n_dir + d) * H + k : ((t * n_dir + d) * N + n) * H + k;
          e.y[static_cast<size_t>(yi)] = h[static_cast<size_t>(k)];
        }
      }
      for (int64_t k = 0; k < H; ++k) {
        e.yh[static_cast<size_t>(state_index(d, n, k))] = h[static_cast<size_t>(k)];
        e.yc[static_cast<size_t>(state_index(d, n, k))] = cs[static_cast<size_t>(k)];
      }
    }
  }
  return e;
}

struct Runner {
  ThreadPool pool{2};
  BufferPool buffers;

  Result<std::vector<Tensor>> run(const Node& node, const std::vector<const Tensor*>& in,
                                  const kernels::KernelTable& kt, int64_t opset = 14) {
    OpFn fn = op_registry().find(node.op_type, opset);
    if (!fn) return make_error(ErrorCode::kNotFound, "no op {}", node.op_type);
    OpContext ctx{pool, buffers, kt, opset};
    std::vector<Tensor> out(node.outputs.size());
    HEARTH_TRY(fn(ctx, node, in, out));
    return out;
  }
};

std::string kind_name(Kind k) { return k == Kind::kLstm ? "LSTM" : k == Kind::kGru ? "GRU" : "RNN"; }

void check_case(Runner& r, std::mt19937& rng, const Case& c, const kernels::KernelTable& kt) {
  const int n_dir = c.direction == "bidirectional" ? 2 : 1;
  const int64_t G = gates(c.kind), T = c.seq, N = c.batch, H = c.hidden;
  Data d;
  d.X = random_tensor(rng, c.layout ? Shape{N, T, c.input} : Shape{T, N, c.input});
  d.W = random_tensor(rng, {n_dir, G * H, c.input}, 0.6f);
  d.R = random_tensor(rng, {n_dir, G * H, H}, 0.6f);
  d.B = random_tensor(rng, {n_dir, 2 * G * H}, 0.5f);
  std::vector<int32_t> lens(static_cast<size_t>(N));
  std::uniform_int_distribution<int32_t> len_d(0, static_cast<int32_t>(T));
  for (auto& l : lens) l = len_d(rng);
  d.L = Tensor::from_values<int32_t>({N}, lens).value();
  const Shape state = c.layout ? Shape{N, n_dir, H} : Shape{n_dir, N, H};
  d.H0 = random_tensor(rng, state);
  d.C0 = random_tensor(rng, state);
  d.P = random_tensor(rng, {n_dir, 3 * H}, 0.5f);

  Node node;
  node.op_type = kind_name(c.kind);
  node.name = "rnn";
  node.attrs["hidden_size"].value = H;
  node.attrs["direction"].value = c.direction;
  node.attrs["layout"].value = int64_t{c.layout};
  if (c.clip > 0) node.attrs["clip"].value = c.clip;
  if (c.kind == Kind::kLstm && c.input_forget) node.attrs["input_forget"].value = int64_t{1};
  if (c.kind == Kind::kGru) node.attrs["linear_before_reset"].value = int64_t{c.lbr};
  if (c.custom_acts) {
    std::vector<std::string> names;
    std::vector<float> alphas, betas;
    for (const auto& a : case_acts(c, n_dir)) {
      names.push_back(a.name);
      if (a.name == "HardSigmoid")
        alphas.push_back(static_cast<float>(a.alpha)), betas.push_back(static_cast<float>(a.beta));
      if (a.name == "LeakyRelu") alphas.push_back(static_cast<float>(a.alpha));
    }
    node.attrs["activations"].value = names;
    node.attrs["activation_alpha"].value = alphas;
    node.attrs["activation_beta"].value = betas;
  }
  std::vector<const Tensor*> in = {
      &d.X, &d.W, &d.R, c.bias ? &d.B : nullptr, c.lens ? &d.L : nullptr, c.init_h ? &d.H0 : nullptr};
  node.inputs = {"X", "W", "R", c.bias ? "B" : "", c.lens ? "L" : "", c.init_h ? "H0" : ""};
  if (c.kind == Kind::kLstm) {
    in.push_back(c.init_c ? &d.C0 : nullptr);
    in.push_back(c.peep ? &d.P : nullptr);
    node.inputs.push_back(c.init_c ? "C0" : "");
    node.inputs.push_back(c.peep ? "P" : "");
  }
  node.outputs = {"Y", "Y_h"};
  if (c.kind == Kind::kLstm) node.outputs.push_back("Y_c");

  const std::string what = fmt::format(
      "{} {} seq={} batch={} input={} hidden={} {} layout={} bias={} lens={} h0={} c0={} peep={} "
      "input_forget={} lbr={} clip={} acts={}",
      kt.name, node.op_type, T, N, c.input, H, c.direction, c.layout, c.bias, c.lens, c.init_h, c.init_c, c.peep,
      c.input_forget, c.lbr, c.clip, c.custom_acts);
  auto out = r.run(node, in, kt);
  ASSERT_TRUE(out.ok()) << what << ": " << out.status().to_string();
  const Expected e = reference(c, d);
  auto expect = [&](const Tensor& t, const Shape& shape, const std::vector<double>& want, const char* name) {
    ASSERT_EQ(t.shape(), shape) << what << " " << name;
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_NEAR(t.data<float>()[i], want[i], 2e-5 * (1 + std::fabs(want[i]))) << what << " " << name << " at " << i;
    }
  };
  expect((*out)[0], c.layout ? Shape{N, T, n_dir, H} : Shape{T, n_dir, N, H}, e.y, "Y");
  expect((*out)[1], state, e.yh, "Y_h");
  if (c.kind == Kind::kLstm) expect((*out)[2], state, e.yc, "Y_c");
}

TEST(RecurrentOps, MatchTheSpecEquationsOnRandomCases) {
  Runner r;
  std::mt19937 rng(2024);
  auto coin = [&] { return std::uniform_int_distribution<int>(0, 1)(rng) == 1; };
  std::uniform_int_distribution<int64_t> small(1, 6);
  std::vector<Case> cases;
  for (Kind kind : {Kind::kLstm, Kind::kGru, Kind::kRnn}) {
    for (const char* dir : {"forward", "reverse", "bidirectional"}) {
      for (int layout = 0; layout < 2; ++layout) {
        for (int rep = 0; rep < 4; ++rep) {
          Case c;
          c.kind = kind;
          c.direction = dir;
          c.layout = layout;
          c.seq = small(rng), c.batch = small(rng) % 3 + 1, c.input = small(rng), c.hidden = small(rng) + 1;
          c.bias = coin(), c.lens = coin(), c.init_h = coin(), c.init_c = coin(), c.peep = coin();
          c.input_forget = rep == 3, c.lbr = coin(), c.custom_acts = rep == 2;
          c.clip = rep == 1 ? 0.7f : 0.0f;
          cases.push_back(c);
        }
      }
    }
  }
  // Sizes past the GEMM's vector widths, as the Silero VAD LSTM (hidden 64 / 128).
  Case big;
  big.seq = 3, big.batch = 2, big.input = 70, big.hidden = 64, big.bias = true, big.init_h = true, big.init_c = true;
  cases.push_back(big);
  big.direction = "bidirectional", big.hidden = 128, big.batch = 1, big.layout = 1;
  cases.push_back(big);
  for (const kernels::KernelTable* kt : kernels::available_kernels()) {
    for (const auto& c : cases) {
      check_case(r, rng, c, *kt);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

TEST(RecurrentOps, BadShapesAndAttributesAreErrors) {
  Runner r;
  std::mt19937 rng(3);
  Tensor X = random_tensor(rng, {2, 1, 3}), W = random_tensor(rng, {1, 8, 3}), R = random_tensor(rng, {1, 8, 2});
  Tensor W_bad = random_tensor(rng, {1, 8, 4}), B_bad = random_tensor(rng, {1, 8});
  Tensor lens_bad = Tensor::from_values<int32_t>({1}, std::vector<int32_t>{3}).value();
  Node n;
  n.op_type = "LSTM";
  n.name = "lstm";
  n.attrs["hidden_size"].value = int64_t{2};
  n.outputs = {"Y"};
  const kernels::KernelTable& kt = kernels::active_kernels();
  ASSERT_TRUE(r.run(n, {&X, &W, &R}, kt).ok());
  EXPECT_FALSE(r.run(n, {&X, &W_bad, &R}, kt).ok());
  EXPECT_FALSE(r.run(n, {&X, &W, &R, &B_bad}, kt).ok());
  EXPECT_FALSE(r.run(n, {&X, &W, &R, nullptr, &lens_bad}, kt).ok());  // length 3 > seq 2
  Node bad_dir = n;
  bad_dir.attrs["direction"].value = std::string("sideways");
  EXPECT_FALSE(r.run(bad_dir, {&X, &W, &R}, kt).ok());
  Node bad_act = n;
  bad_act.attrs["activations"].value = std::vector<std::string>{"Sigmoid", "Tanh", "Nope"};
  auto st = r.run(bad_act, {&X, &W, &R}, kt);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("node 'lstm' (LSTM)"), std::string::npos) << st.status().message();
  Node bad_hidden = n;
  bad_hidden.attrs["hidden_size"].value = int64_t{3};
  EXPECT_FALSE(r.run(bad_hidden, {&X, &W, &R}, kt).ok());
}

}  // namespace
}  // namespace hearth::onnx
