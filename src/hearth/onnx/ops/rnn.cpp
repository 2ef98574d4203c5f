// ONNX recurrent layers: LSTM, GRU and RNN (https://onnx.ai/onnx/operators/onnx__LSTM.html,
// onnx__GRU.html, onnx__RNN.html), float32: forward, reverse and bidirectional, layout 0
// ([seq, batch, ...]) and 1 ([batch, seq, ...]), sequence_lens, initial states, LSTM peepholes
// and input_forget, GRU linear_before_reset, clip, and every activation the spec lists with its
// alpha/beta (consumed in order by the activations that take them, as onnxruntime does).
//
// Per direction: the input projection X·Wᵀ (+ both biases) of every step at once on the GEMM
// (ops/matmul.h); then, step by step, H_prev·Rᵀ on the kernel table's matmul (R's rows read as
// stored: a few rows of H against many weight rows is its streaming case) and the gates.
// Gate order in W, R and B: LSTM i, o, f, c (P: i, o, f); GRU z, r, h.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "hearth/core/checked_math.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/onnx/op_registry.h"
#include "hearth/onnx/ops/matmul.h"

namespace hearth::onnx {
namespace {

enum class ActKind {
  kSigmoid,
  kTanh,
  kRelu,
  kHardSigmoid,
  kLeakyRelu,
  kThresholdedRelu,
  kScaledTanh,
  kAffine,
  kElu,
  kSoftsign,
  kSoftplus
};

struct Activation {
  ActKind kind = ActKind::kSigmoid;
  float alpha = 0.0f, beta = 0.0f;

  float operator()(float x) const {
    switch (kind) {
      case ActKind::kSigmoid: return 1.0f / (1.0f + std::exp(-x));
      case ActKind::kTanh: return std::tanh(x);
      case ActKind::kRelu: return x > 0.0f ? x : 0.0f;
      case ActKind::kHardSigmoid: return std::clamp(alpha * x + beta, 0.0f, 1.0f);
      case ActKind::kLeakyRelu: return x >= 0.0f ? x : alpha * x;
      case ActKind::kThresholdedRelu: return x > alpha ? x : 0.0f;
      case ActKind::kScaledTanh: return alpha * std::tanh(beta * x);
      case ActKind::kAffine: return alpha * x + beta;
      case ActKind::kElu: return x >= 0.0f ? x : alpha * (std::exp(x) - 1.0f);
      case ActKind::kSoftsign: return x / (1.0f + std::fabs(x));
      case ActKind::kSoftplus: return std::log1p(std::exp(x));
    }
    return x;
  }
};

// The activations of every direction (per_dir of each), from the node's attributes or defaults.
Result<std::vector<Activation>> parse_activations(const Node& node, size_t per_dir, int64_t n_dir,
                                                  const std::vector<std::string>& defaults) {
  std::vector<std::string> names;
  if (auto it = node.attrs.find("activations"); it != node.attrs.end()) {
    if (auto* v = std::get_if<std::vector<std::string>>(&it->second.value))
      names = *v;
    else if (auto* s = std::get_if<std::string>(&it->second.value))
      names = {*s};
  }
  if (names.empty()) {
    for (int64_t d = 0; d < n_dir; ++d) names.insert(names.end(), defaults.begin(), defaults.end());
  } else if (names.size() == per_dir && n_dir == 2) {
    names.insert(names.end(), names.begin(), names.end());  // one list for both directions
  }
  if (names.size() != per_dir * static_cast<size_t>(n_dir)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: activations has {} names, expected {} ({} per direction)",
                      node.describe(), names.size(), per_dir * static_cast<size_t>(n_dir), per_dir);
  }
  const std::vector<float> alphas = node.attr_floats("activation_alpha"), betas = node.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  auto take = [](const std::vector<float>& v, size_t& i, float fallback) { return i < v.size() ? v[i++] : fallback; };
  std::vector<Activation> acts;
  for (const auto& raw : names) {
    std::string n = raw;
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    Activation a;
    if (n == "sigmoid")
      a.kind = ActKind::kSigmoid;
    else if (n == "tanh")
      a.kind = ActKind::kTanh;
    else if (n == "relu")
      a.kind = ActKind::kRelu;
    else if (n == "hardsigmoid")
      a = {ActKind::kHardSigmoid, take(alphas, ai, 0.2f), take(betas, bi, 0.5f)};
    else if (n == "leakyrelu")
      a = {ActKind::kLeakyRelu, take(alphas, ai, 0.01f), 0.0f};
    else if (n == "thresholdedrelu")
      a = {ActKind::kThresholdedRelu, take(alphas, ai, 1.0f), 0.0f};
    else if (n == "scaledtanh")
      a = {ActKind::kScaledTanh, take(alphas, ai, 1.0f), take(betas, bi, 1.0f)};
    else if (n == "affine")
      a = {ActKind::kAffine, take(alphas, ai, 1.0f), take(betas, bi, 0.0f)};
    else if (n == "elu")
      a = {ActKind::kElu, take(alphas, ai, 1.0f), 0.0f};
    else if (n == "softsign")
      a.kind = ActKind::kSoftsign;
    else if (n == "softplus")
      a.kind = ActKind::kSoftplus;
    else
      return make_error(ErrorCode::kInvalidArgument, "{}: unknown activation '{}'", node.describe(), raw);
    acts.push_back(a);
  }
  return acts;
}

enum class Cell { kLstm, kGru, kRnn };

int64_t gate_count(Cell c) { return c == Cell::kLstm ? 4 : c == Cell::kGru ? 3 : 1; }

// Everything one call needs, checked.
struct Plan {
  Cell cell;
  int64_t seq = 0, batch = 0, input = 0, hidden = 0, n_dir = 1, gates = 1;
  bool layout1 = false;
  bool reverse_only = false;
  float clip = 0.0f;  // 0: none
  bool input_forget = false;
  bool linear_before_reset = false;
  std::vector<int64_t> lens;  // per batch entry
  std::vector<Activation> acts;
  const Tensor *X = nullptr, *W = nullptr, *R = nullptr, *B = nullptr, *h0 = nullptr, *c0 = nullptr, *P = nullptr;
};

Status bad_shape(const Node& node, std::string_view what, const Tensor& t, const Shape& want) {
  return make_error(ErrorCode::kInvalidArgument, "{}: {} has shape {}, expected {}", node.describe(), what,
                    shape_string(t.shape()), shape_string(want));
}

Result<Plan> make_plan(const Node& node, OpInputs in, Cell cell) {
  Plan p;
  p.cell = cell;
  p.gates = gate_count(cell);
  const size_t max_in = cell == Cell::kLstm ? 8 : 6;
  HEARTH_TRY(require_inputs(node, in, 3, max_in));
  auto opt = [&](size_t i) { return i < in.size() ? in[i] : nullptr; };
  p.X = in[0], p.W = in[1], p.R = in[2], p.B = opt(3);
  const Tensor* lens = opt(4);
  p.h0 = opt(5);
  if (cell == Cell::kLstm) p.c0 = opt(6), p.P = opt(7);
  for (const Tensor* t : {p.X, p.W, p.R, p.B, p.h0, p.c0, p.P}) {
    if (t) HEARTH_TRY(require_dtype(node, *t, "every input but sequence_lens", {DType::kFloat}));
  }
  const std::string dir = node.attr_string("direction", "forward");
  if (dir == "forward")
    p.n_dir = 1;
  else if (dir == "reverse")
    p.n_dir = 1, p.reverse_only = true;
  else if (dir == "bidirectional")
    p.n_dir = 2;
  else
    return make_error(ErrorCode::kInvalidArgument, "{}: direction '{}' is not forward, reverse or bidirectional",
                      node.describe(), dir);
  const int64_t layout = node.attr_int("layout", 0);
  if (layout != 0 && layout != 1)
    return make_error(ErrorCode::kInvalidArgument, "{}: layout {} is not 0 or 1", node.describe(), layout);
  p.layout1 = layout == 1;
  if (p.X->rank() != 3)
    return make_error(ErrorCode::kInvalidArgument, "{}: X must be 3-D, has shape {}", node.describe(),
                      shape_string(p.X->shape()));
  p.seq = p.layout1 ? p.X->dim(1) : p.X->dim(0);
  p.batch = p.layout1 ? p.X->dim(0) : p.X->dim(1);
  p.input = p.X->dim(2);
  if (p.R->rank() != 3)
    return make_error(ErrorCode::kInvalidArgument, "{}: R must be 3-D, has shape {}", node.describe(),
                      shape_string(p.R->shape()));
  p.hidden = node.attr_int("hidden_size", p.R->dim(2));
  if (p.hidden <= 0 || p.hidden > (int64_t{1} << 24)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: hidden_size {} is out of range", node.describe(), p.hidden);
  }
  const int64_t gh = p.gates * p.hidden;
  if (p.W->shape() != Shape{p.n_dir, gh, p.input}) return bad_shape(node, "W", *p.W, {p.n_dir, gh, p.input});
  if (p.R->shape() != Shape{p.n_dir, gh, p.hidden}) return bad_shape(node, "R", *p.R, {p.n_dir, gh, p.hidden});
  if (p.B && p.B->shape() != Shape{p.n_dir, 2 * gh}) return bad_shape(node, "B", *p.B, {p.n_dir, 2 * gh});
  const Shape state = p.layout1 ? Shape{p.batch, p.n_dir, p.hidden} : Shape{p.n_dir, p.batch, p.hidden};
  if (p.h0 && p.h0->shape() != state) return bad_shape(node, "initial_h", *p.h0, state);
  if (p.c0 && p.c0->shape() != state) return bad_shape(node, "initial_c", *p.c0, state);
  if (p.P && p.P->shape() != Shape{p.n_dir, 3 * p.hidden}) return bad_shape(node, "P", *p.P, {p.n_dir, 3 * p.hidden});
  p.lens.assign(static_cast<size_t>(p.batch), p.seq);
  if (lens) {
    HEARTH_ASSIGN_OR_RETURN(p.lens, int_list(node, *lens, "sequence_lens"));
    if (static_cast<int64_t>(p.lens.size()) != p.batch) {
      return make_error(ErrorCode::kInvalidArgument, "{}: sequence_lens has {} entries for a batch of {}",
                        node.describe(), p.lens.size(), p.batch);
    }
    for (int64_t l : p.lens) {
      if (l < 0 || l > p.seq)
        return make_error(ErrorCode::kInvalidArgument, "{}: sequence length {} is outside [0, {}]", node.describe(), l,
                          p.seq);
    }
  }
  p.clip = node.attr_float("clip", 0.0f);
  if (node.has("clip") && !(p.clip > 0.0f))
    return make_error(ErrorCode::kInvalidArgument, "{}: clip must be positive", node.describe());
  p.input_forget = node.attr_int("input_forget", 0) != 0;
  p.linear_before_reset = node.attr_int("linear_before_reset", 0) != 0;
  const std::vector<std::string> defaults = cell == Cell::kLstm  ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                            : cell == Cell::kGru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                                 : std::vector<std::string>{"Tanh"};
  HEARTH_ASSIGN_OR_RETURN(p.acts, parse_activations(node, defaults.size(), p.n_dir, defaults));
  // Bound the work and the projection buffer (seq x batch x gates x hidden floats).
  auto steps = checked_mul<int64_t>(p.seq, p.batch);
  auto proj = steps ? checked_mul<int64_t>(*steps, gh) : std::nullopt;
  auto work = proj ? checked_mul<int64_t>(*proj, p.n_dir * (p.input + p.hidden + 1)) : std::nullopt;
  if (!work || *proj > kMaxElements) {
    return make_error(ErrorCode::kOutOfRange, "{}: the layer is too large (seq {}, batch {}, hidden {})",
                      node.describe(), p.seq, p.batch, p.hidden);
  }
  return p;
}

// One direction d of the layer: fills y (Y's rows of this direction, or null), h_out, c_out.
void run_direction(OpContext& ctx, const Plan& p, int64_t d, bool reverse, float* y, float* h_out, float* c_out) {
  const int64_t H = p.hidden, G = p.gates, GH = G * H, N = p.batch, T = p.seq, I = p.input;
  const float* W = p.W->data<float>() + d * GH * I;
  const float* R = p.R->data<float>() + d * GH * H;
  const float* Wb = p.B ? p.B->data<float>() + d * 2 * GH : nullptr;
  const float* Rb = Wb ? Wb + GH : nullptr;
  const float* P = p.P ? p.P->data<float>() + d * 3 * H : nullptr;
  const Activation* act = p.acts.data() + d * (p.cell == Cell::kLstm ? 3 : p.cell == Cell::kGru ? 2 : 1);

  // xw[(t, n)] = X[t, n]·Wᵀ + Wb (+ Rb, except GRU's h gate when linear_before_reset), rows in X's
  // own order (layout 1: n-major).
  std::vector<float> xw(static_cast<size_t>(T * N * GH));
  if (T * N <= 4) {
    // A few rows (a streaming model's one step): the kernel table's matmul reads W's rows as
    // stored, so W is not transposed on every call.
    std::vector<std::byte> xs(kernels::matmul_scratch_bytes(ctx.kt, TensorType::F32, I, T * N) + 64);
    kernels::MatmulArgs ma{TensorType::F32,
                           reinterpret_cast<const std::byte*>(W),
                           static_cast<size_t>(I) * sizeof(float),
                           GH,
                           I,
                           p.X->data<float>(),
                           I,
                           T * N,
                           xw.data(),
                           GH,
                           xs.data()};
    ctx.kt.matmul(ma, ctx.pool);
  } else {
    std::vector<float> wt(static_cast<size_t>(I * GH));
    for (int64_t j = 0; j < GH; ++j) {
      for (int64_t k = 0; k < I; ++k) wt[static_cast<size_t>(k * GH + j)] = W[j * I + k];
    }
    GemmF32 g;
    g.m = T * N, g.n = GH, g.k = I;
    g.a = p.X->data<float>(), g.a_row = I, g.a_col = 1;
    g.b = wt.data(), g.ldb = GH;
    g.y = xw.data(), g.ldy = GH;
    gemm_f32(g, ctx.pool, ctx.kt);
  }
  if (Wb) {
    std::vector<float> bias(static_cast<size_t>(GH));
    for (int64_t j = 0; j < GH; ++j) {
      const bool rb_apart = p.cell == Cell::kGru && p.linear_before_reset && j >= 2 * H;
      bias[static_cast<size_t>(j)] = Wb[j] + (rb_apart ? 0.0f : Rb[j]);
    }
    for (int64_t r = 0; r < T * N; ++r) {
      for (int64_t j = 0; j < GH; ++j) xw[static_cast<size_t>(r * GH + j)] += bias[static_cast<size_t>(j)];
    }
  }
  auto xw_row = [&](int64_t t, int64_t n) { return xw.data() + (p.layout1 ? n * T + t : t * N + n) * GH; };

  // State: h, c [N][H], from the initial values of this direction or zeros.
  std::vector<float> h(static_cast<size_t>(N * H), 0.0f), c(static_cast<size_t>(N * H), 0.0f);
  auto state_at = [&](int64_t n) { return p.layout1 ? (n * p.n_dir + d) * H : (d * N + n) * H; };
  for (int64_t n = 0; n < N; ++n) {
    if (p.h0)
      std::memcpy(&h[static_cast<size_t>(n * H)], p.h0->data<float>() + state_at(n),
                  static_cast<size_t>(H) * sizeof(float));
    if (p.c0)
      std::memcpy(&c[static_cast<size_t>(n * H)], p.c0->data<float>() + state_at(n),
                  static_cast<size_t>(H) * sizeof(float));
  }

  // hr = h·Rᵀ for rows [r0, r0 + rows) of R, on the kernel table's matmul.
  std::vector<float> hr(static_cast<size_t>(N * GH)), rh(static_cast<size_t>(N * H));
  std::vector<std::byte> scratch(kernels::matmul_scratch_bytes(ctx.kt, TensorType::F32, H, N) + 64);
  auto recur = [&](const float* x, int64_t r0, int64_t rows) {
    kernels::MatmulArgs ma{TensorType::F32,
                           reinterpret_cast<const std::byte*>(R + r0 * H),
                           static_cast<size_t>(H) * sizeof(float),
                           rows,
                           H,
                           x,
                           H,
                           N,
                           hr.data() + r0,
                           GH,
                           scratch.data()};
    ctx.kt.matmul(ma, ctx.pool);
  };
  const float clip = p.clip;
  auto pre = [clip](float v) { return clip > 0.0f ? std::clamp(v, -clip, clip) : v; };

  for (int64_t s = 0; s < T; ++s) {
    if (p.cell == Cell::kGru && !p.linear_before_reset) {
      recur(h.data(), 0, 2 * H);  // z, r; h's gate needs r first
    } else {
      recur(h.data(), 0, GH);
    }
    if (p.cell == Cell::kGru && !p.linear_before_reset) {
      // (r ⊙ h_prev)·Rhᵀ: r from this step's z/r pre-activations.
      for (int64_t n = 0; n < N; ++n) {
        if (s >= p.lens[static_cast<size_t>(n)]) continue;
        const int64_t t = reverse ? p.lens[static_cast<size_t>(n)] - 1 - s : s;
        const float* xr = xw_row(t, n);
        for (int64_t k = 0; k < H; ++k) {
          const float r = act[0](pre(xr[H + k] + hr[static_cast<size_t>(n * GH + H + k)]));
          rh[static_cast<size_t>(n * H + k)] = r * h[static_cast<size_t>(n * H + k)];
        }
      }
      recur(rh.data(), 2 * H, H);
    }
    for (int64_t n = 0; n < N; ++n) {
      const int64_t len = p.lens[static_cast<size_t>(n)];
      if (s >= len) continue;
      const int64_t t = reverse ? len - 1 - s : s;
      const float* xr = xw_row(t, n);
      const float* rr = hr.data() + n * GH;
      float* hn = h.data() + n * H;
      float* cn = c.data() + n * H;
      for (int64_t k = 0; k < H; ++k) {
        switch (p.cell) {
          case Cell::kLstm: {
            const float c_prev = cn[k];
            const float gi = act[0](pre(xr[k] + rr[k] + (P ? P[k] * c_prev : 0.0f)));
            const float gf = p.input_forget
                                 ? 1.0f - gi
                                 : act[0](pre(xr[2 * H + k] + rr[2 * H + k] + (P ? P[2 * H + k] * c_prev : 0.0f)));
            const float gc = act[1](pre(xr[3 * H + k] + rr[3 * H + k]));
            const float c_new = gf * c_prev + gi * gc;
            const float go = act[0](pre(xr[H + k] + rr[H + k] + (P ? P[H + k] * c_new : 0.0f)));
            cn[k] = c_new;
            hn[k] = go * act[2](c_new);
            break;
          }
          case Cell::kGru: {
            const float z = act[0](pre(xr[k] + rr[k]));
            float hh;
            if (p.linear_before_reset) {
              const float r = act[0](pre(xr[H + k] + rr[H + k]));
              hh = act[1](pre(xr[2 * H + k] + r * (rr[2 * H + k] + (Rb ? Rb[2 * H + k] : 0.0f))));
            } else {
              hh = act[1](pre(xr[2 * H + k] + rr[2 * H + k]));
            }
            hn[k] = (1.0f - z) * hh + z * hn[k];
            break;
          }
          case Cell::kRnn: hn[k] = act[0](pre(xr[k] + rr[k])); break;
        }
      }
      if (y) {
        // Y[t][d][n] (layout 0) or Y[n][t][d] (layout 1).
        float* yr = y + (p.layout1 ? (n * T + t) * p.n_dir + d : (t * p.n_dir + d) * N + n) * H;
        std::memcpy(yr, hn, static_cast<size_t>(H) * sizeof(float));
      }
    }
  }
  for (int64_t n = 0; n < N; ++n) {
    if (h_out) std::memcpy(h_out + state_at(n), &h[static_cast<size_t>(n * H)], static_cast<size_t>(H) * sizeof(float));
    if (c_out) std::memcpy(c_out + state_at(n), &c[static_cast<size_t>(n * H)], static_cast<size_t>(H) * sizeof(float));
  }
}

Status recurrent_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out, Cell cell) {
  HEARTH_ASSIGN_OR_RETURN(Plan p, make_plan(node, in, cell));
  const size_t n_out = cell == Cell::kLstm ? 3 : 2;
  if (out.size() > n_out)
    return make_error(ErrorCode::kInvalidArgument, "{}: has {} outputs, at most {}", node.describe(), out.size(),
                      n_out);
  auto wanted = [&](size_t i) { return i < node.outputs.size() && !node.outputs[i].empty(); };
  const Shape y_shape = p.layout1 ? Shape{p.batch, p.seq, p.n_dir, p.hidden} : Shape{p.seq, p.n_dir, p.batch, p.hidden};
  const Shape s_shape = p.layout1 ? Shape{p.batch, p.n_dir, p.hidden} : Shape{p.n_dir, p.batch, p.hidden};
  Tensor Y, Yh, Yc;
  // Y is zero where a sequence has ended (alloc zero-fills).
  if (wanted(0)) {
    HEARTH_ASSIGN_OR_RETURN(Y, ctx.alloc(DType::kFloat, y_shape));
  }
  if (wanted(1)) {
    HEARTH_ASSIGN_OR_RETURN(Yh, ctx.alloc(DType::kFloat, s_shape));
  }
  if (wanted(2)) {
    HEARTH_ASSIGN_OR_RETURN(Yc, ctx.alloc(DType::kFloat, s_shape));
  }
  for (int64_t d = 0; d < p.n_dir; ++d) {
    const bool reverse = p.reverse_only || d == 1;
    run_direction(ctx, p, d, reverse, wanted(0) ? Y.data<float>() : nullptr, wanted(1) ? Yh.data<float>() : nullptr,
                  wanted(2) ? Yc.data<float>() : nullptr);
  }
  if (wanted(0)) out[0] = std::move(Y);
  if (wanted(1)) out[1] = std::move(Yh);
  if (wanted(2)) out[2] = std::move(Yc);
  return ok_status();
}

Status lstm_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  return recurrent_op(ctx, node, in, out, Cell::kLstm);
}
Status gru_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  return recurrent_op(ctx, node, in, out, Cell::kGru);
}
Status rnn_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  return recurrent_op(ctx, node, in, out, Cell::kRnn);
}

}  // namespace

void register_rnn_ops(OpRegistry& r) {
  // Opsets 7 and 14 differ by `layout` only (read with a default of 0).
  r.add("LSTM", 7, &lstm_op);
  r.add("GRU", 7, &gru_op);
  r.add("RNN", 7, &rnn_op);
}

}  // namespace hearth::onnx
