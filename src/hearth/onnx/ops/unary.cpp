// ONNX operators: unary elementwise math and activations (https://onnx.ai/onnx/operators/),
// Clip and Not. Each op is a per-element function applied over contiguous chunks split across
// the pool; float16/bfloat16 inputs are computed in float and rounded back.
#include <cmath>
#include <limits>

#include "hearth/onnx/ops/dtype_dispatch.h"
#include "hearth/onnx/ops/elementwise_internal.h"
#include "hearth/onnx/ops/op_common.h"
#include "hearth/onnx/ops/vec_math.h"

namespace hearth::onnx {
namespace {

constexpr int64_t kGrain = 1 << 14;

// The float types (16-bit ones through float) and the signed / all numeric types.
enum class Types { kFloat, kSigned, kNumeric, kBool };

template <Types kSet, typename F>
bool dispatch_set(DType t, F&& f) {
  if constexpr (kSet == Types::kFloat) {
    return dispatch_types<float, double, Half, BFloat>(t, f);
  } else if constexpr (kSet == Types::kSigned) {
    return dispatch_types<float, double, Half, BFloat, int32_t, int64_t, int8_t, int16_t>(t, f);
  } else if constexpr (kSet == Types::kNumeric) {
    return dispatch_types<float, double, Half, BFloat, int32_t, int64_t, int8_t, int16_t, uint8_t, uint16_t, uint32_t,
                          uint64_t>(t, f);
  } else {
    return dispatch_types<Bool8>(t, f);
  }
}

// out = f(x) elementwise; `f` is generic over float/double/integer element types. With
// bool_out the output is bool (f returns bool).
// Whether F has a whole-array float form F::array(in, out, n) (a named concept: clang 14 does
// not treat a requires-expression on a lambda's type inside `if constexpr` as a plain false).
template <typename F>
concept HasArrayForm = requires(const float* a, float* b) { F::array(a, b, int64_t{0}); };

template <Types kSet = Types::kFloat, bool kBoolOut = false, typename F>
Status unary(OpContext& ctx, const Node& node, const Tensor& x, std::vector<Tensor>& out, F f) {
  constexpr bool bool_out = kBoolOut;
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out_uninit(ctx, node, bool_out ? DType::kBool : x.dtype(), x.shape()));
  const bool known = dispatch_set<kSet>(x.dtype(), [&]<typename T>(Tag<T>) {
    const T* px = x.data<T>();
    ctx.pool.parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
      if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat>) {
        for (int64_t i = b; i < e; ++i) {
          const float v = static_cast<float>(as_double(px[i]));
          if constexpr (bool_out) o.data<uint8_t>()[i] = static_cast<uint8_t>(f(v));
          else o.data<T>()[i] = convert<T>(static_cast<float>(f(v)));
        }
      } else if constexpr (std::is_same_v<T, Bool8>) {
        uint8_t* po = o.data<uint8_t>();
        const uint8_t* pb = x.data<uint8_t>();
        // B is bool here; spelled dependent on T so that compilers check f(bool) only when
        // this branch is taken (clang 14 otherwise checks the non-dependent call eagerly).
        using B = std::conditional_t<std::is_same_v<T, Bool8>, bool, T>;
        for (int64_t i = b; i < e; ++i) po[i] = static_cast<uint8_t>(f(static_cast<B>(pb[i] != 0)));
      } else if constexpr (std::is_same_v<T, float> && !bool_out && HasArrayForm<F>) {
        using G = std::conditional_t<std::is_same_v<T, float>, F, F>;  // dependent on T: checked only when taken
        G::array(px + b, o.data<float>() + b, e - b);
      } else {
        if constexpr (bool_out) {
          uint8_t* po = o.data<uint8_t>();
          for (int64_t i = b; i < e; ++i) po[i] = static_cast<uint8_t>(f(px[i]));
        } else {
          T* po = o.data<T>();
          for (int64_t i = b; i < e; ++i) po[i] = static_cast<T>(f(px[i]));
        }
      }
    });
  });
  if (!known) return unsupported_dtype(node, "input", x);
  out[0] = std::move(o);
  return ok_status();
}

// A unary op without attributes: F is a stateless generic functor.
template <typename F, Types kSet = Types::kFloat, bool kBoolOut = false>
Status plain(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  return unary<kSet, kBoolOut>(ctx, node, *in[0], out, F{});
}

template <typename T>
using Real = std::conditional_t<std::is_same_v<T, double>, double, float>;

#define HEARTH_UNARY(name, expr)         \
  struct name {                          \
    template <typename T>                \
    auto operator()(T x) const {         \
      return expr;                       \
    }                                    \
  }

HEARTH_UNARY(SqrtF, std::sqrt(x));
HEARTH_UNARY(LogF, std::log(x));
HEARTH_UNARY(ErfF, std::erf(x));
HEARTH_UNARY(FloorF, std::floor(x));
HEARTH_UNARY(CeilF, std::ceil(x));
HEARTH_UNARY(RoundF, std::nearbyint(x));  // half to even (the default rounding mode)
HEARTH_UNARY(ReciprocalF, T(1) / x);
HEARTH_UNARY(SinF, std::sin(x));
HEARTH_UNARY(CosF, std::cos(x));
HEARTH_UNARY(TanF, std::tan(x));
HEARTH_UNARY(AsinF, std::asin(x));
HEARTH_UNARY(AcosF, std::acos(x));
HEARTH_UNARY(AtanF, std::atan(x));
HEARTH_UNARY(SinhF, std::sinh(x));
HEARTH_UNARY(CoshF, std::cosh(x));
HEARTH_UNARY(AsinhF, std::asinh(x));
HEARTH_UNARY(AcoshF, std::acosh(x));
HEARTH_UNARY(AtanhF, std::atanh(x));
HEARTH_UNARY(SoftsignF, x / (T(1) + std::abs(x)));
HEARTH_UNARY(NegF, wrap_neg(x));
struct AbsF {
  template <typename T>
  T operator()(T x) const {
    if constexpr (std::is_signed_v<T>) return x < T{0} ? wrap_neg(x) : x;
    else return x;
  }
};
struct SignF {
  template <typename T>
  T operator()(T x) const {
    if constexpr (std::is_signed_v<T>) return static_cast<T>(x > T{0} ? 1 : (x < T{0} ? -1 : 0));
    else return static_cast<T>(x > T{0} ? 1 : 0);
  }
};
HEARTH_UNARY(ReluF, x > T{0} ? x : T{0});
HEARTH_UNARY(NotF, !x);
HEARTH_UNARY(IsNaNF, std::isnan(x));
// Exp, Sigmoid and Tanh on float: vec_math.h's call-free versions, which vectorize.
// (A functor with a static array() is run by unary() on float chunks through it.)
struct ExpF {
  static void array(const float* x, float* y, int64_t n) { exp_array(x, y, n); }
  template <typename T>
  T operator()(T x) const {
    if constexpr (std::is_same_v<T, float>) return exp_approx(x);
    else return std::exp(x);
  }
};
struct SigmoidF {
  static void array(const float* x, float* y, int64_t n) { sigmoid_array(x, y, n); }
  template <typename T>
  T operator()(T x) const {
    if constexpr (std::is_same_v<T, float>) return sigmoid_approx(x);
    else return x >= T(0) ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
  }
};
struct TanhF {
  static void array(const float* x, float* y, int64_t n) { tanh_array(x, y, n); }
  template <typename T>
  T operator()(T x) const {
    if constexpr (std::is_same_v<T, float>) return tanh_approx(x);
    else return std::tanh(x);
  }
};
// log(1 + e^x), stable for large |x|.
HEARTH_UNARY(SoftplusF, x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)));
HEARTH_UNARY(HardSwishF, x * std::max(T(0), std::min(T(1), x / T(6) + T(0.5))));
HEARTH_UNARY(MishF, x * std::tanh(x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x))));

#undef HEARTH_UNARY

Status leaky_relu(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const float alpha = node.attr_float("alpha", 0.01f);
  return unary(ctx, node, *in[0], out, [alpha](auto x) {
    using T = decltype(x);
    return x < T(0) ? static_cast<T>(alpha) * x : x;
  });
}

Status thresholded_relu(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const float alpha = node.attr_float("alpha", 1.0f);
  return unary(ctx, node, *in[0], out, [alpha](auto x) {
    using T = decltype(x);
    return x > static_cast<T>(alpha) ? x : T(0);
  });
}

Status hard_sigmoid(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const float alpha = node.attr_float("alpha", 0.2f), beta = node.attr_float("beta", 0.5f);
  return unary(ctx, node, *in[0], out, [alpha, beta](auto x) {
    using T = decltype(x);
    return std::max<T>(T(0), std::min<T>(T(1), static_cast<T>(static_cast<T>(alpha) * x + static_cast<T>(beta))));
  });
}

Status elu(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const float alpha = node.attr_float("alpha", 1.0f);
  return unary(ctx, node, *in[0], out, [alpha](auto x) {
    using T = decltype(x);
    return x < T(0) ? static_cast<T>(alpha) * std::expm1(x) : x;
  });
}

Status celu(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const float alpha = node.attr_float("alpha", 1.0f);
  if (alpha == 0.0f) return make_error(ErrorCode::kInvalidArgument, "{}: alpha must not be 0", node.describe());
  return unary(ctx, node, *in[0], out, [alpha](auto x) {
    using T = decltype(x);
    const T a = static_cast<T>(alpha);
    return std::max(T(0), x) + std::min(T(0), a * std::expm1(x / a));
  });
}

Status selu(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const float alpha = node.attr_float("alpha", 1.67326319217681884765625f);
  const float gamma = node.attr_float("gamma", 1.05070102214813232421875f);
  return unary(ctx, node, *in[0], out, [alpha, gamma](auto x) {
    using T = decltype(x);
    return static_cast<T>(gamma) * (x > T(0) ? x : static_cast<T>(alpha) * std::expm1(x));
  });
}

// Gelu (opset 20): approximate "none" is x * Phi(x) with the erf; "tanh" the tanh formula.
Status gelu(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const std::string approx = node.attr_string("approximate", "none");
  if (approx == "none") {
    return unary(ctx, node, *in[0], out, [](auto x) {
      using T = decltype(x);
      return T(0.5) * x * (T(1) + std::erf(x * static_cast<T>(0.70710678118654752440)));
    });
  }
  if (approx == "tanh") {
    return unary(ctx, node, *in[0], out, [](auto x) {
      using T = decltype(x);
      const T k = static_cast<T>(0.79788456080286535588);  // sqrt(2 / pi)
      return T(0.5) * x * (T(1) + std::tanh(k * (x + T(0.044715) * x * x * x)));
    });
  }
  return make_error(ErrorCode::kInvalidArgument, "{}: approximate must be \"none\" or \"tanh\", is \"{}\"", node.describe(),
                    approx);
}

Status shrink(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const float lambd = node.attr_float("lambd", 0.5f), bias = node.attr_float("bias", 0.0f);
  return unary<Types::kSigned>(ctx, node, *in[0], out, [lambd, bias](auto x) {
    using T = decltype(x);
    const double v = static_cast<double>(x);
    return static_cast<T>(v < -lambd ? v + bias : (v > lambd ? v - bias : 0.0));
  });
}

Status is_inf(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const bool neg = node.attr_int("detect_negative", 1) != 0, pos = node.attr_int("detect_positive", 1) != 0;
  return unary<Types::kFloat, true>(ctx, node, *in[0], out, [neg, pos](auto x) {
    return std::isinf(x) && ((x > 0 && pos) || (x < 0 && neg));
  });
}

// Clip: bounds are attributes before opset 11, optional scalar inputs from 11 (same type as
// the input). NaN passes through; min > max gives max everywhere (the spec, opset 13).
Status clip(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, ctx.opset < 11 ? 1 : 3));
  const Tensor& x = *in[0];
  const Tensor* tmin = opt_input(in, 1);
  const Tensor* tmax = opt_input(in, 2);
  for (const Tensor* t : {tmin, tmax}) {
    if (!t) continue;
    HEARTH_TRY(require_same_dtype(node, x, *t, t == tmin ? "min" : "max"));
    if (t->numel() != 1) {
      return make_error(ErrorCode::kInvalidArgument, "{}: {} must be a scalar, has shape {}", node.describe(),
                        t == tmin ? "min" : "max", shape_string(t->shape()));
    }
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), x.shape()));
  const bool known = dispatch_set<Types::kNumeric>(x.dtype(), [&]<typename T>(Tag<T>) {
    constexpr bool k16 = std::is_same_v<T, Half> || std::is_same_v<T, BFloat>;
    using C = std::conditional_t<k16, float, T>;
    C lo = std::numeric_limits<C>::lowest(), hi = std::numeric_limits<C>::max();
    if (ctx.opset < 11) {
      lo = convert<C>(node.attr_float("min", std::numeric_limits<float>::lowest()));
      hi = convert<C>(node.attr_float("max", std::numeric_limits<float>::max()));
    } else if constexpr (k16) {
      if (tmin) lo = static_cast<float>(as_double(tmin->data<T>()[0]));
      if (tmax) hi = static_cast<float>(as_double(tmax->data<T>()[0]));
    } else {
      if (tmin) lo = tmin->data<T>()[0];
      if (tmax) hi = tmax->data<T>()[0];
    }
    const T* px = x.data<T>();
    T* po = o.data<T>();
    ctx.pool.parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        C v;
        if constexpr (k16) v = static_cast<float>(as_double(px[i]));
        else v = px[i];
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        if constexpr (k16) po[i] = convert<T>(v);
        else po[i] = v;
      }
    });
  });
  if (!known) return unsupported_dtype(node, "input", x);
  out[0] = std::move(o);
  return ok_status();
}

}  // namespace

void register_unary_ops(OpRegistry& r) {
  r.add("Sqrt", 6, plain<SqrtF>);
  r.add("Log", 6, plain<LogF>);
  r.add("Exp", 6, plain<ExpF>);
  r.add("Erf", 9, plain<ErfF>);
  r.add("Floor", 6, plain<FloorF>);
  r.add("Ceil", 6, plain<CeilF>);
  r.add("Round", 11, plain<RoundF>);
  r.add("Reciprocal", 6, plain<ReciprocalF>);
  r.add("Tanh", 6, plain<TanhF>);
  r.add("Sigmoid", 6, plain<SigmoidF>);
  r.add("Softplus", 1, plain<SoftplusF>);
  r.add("Softsign", 1, plain<SoftsignF>);
  r.add("HardSwish", 14, plain<HardSwishF>);
  r.add("Mish", 18, plain<MishF>);
  r.add("Sin", 7, plain<SinF>);
  r.add("Cos", 7, plain<CosF>);
  r.add("Tan", 7, plain<TanF>);
  r.add("Asin", 7, plain<AsinF>);
  r.add("Acos", 7, plain<AcosF>);
  r.add("Atan", 7, plain<AtanF>);
  r.add("Sinh", 9, plain<SinhF>);
  r.add("Cosh", 9, plain<CoshF>);
  r.add("Asinh", 9, plain<AsinhF>);
  r.add("Acosh", 9, plain<AcoshF>);
  r.add("Atanh", 9, plain<AtanhF>);
  r.add("Neg", 6, plain<NegF, Types::kSigned>);
  r.add("Abs", 6, plain<AbsF, Types::kNumeric>);
  r.add("Sign", 9, plain<SignF, Types::kNumeric>);
  r.add("Relu", 6, plain<ReluF, Types::kSigned>);
  r.add("Not", 1, plain<NotF, Types::kBool, true>);
  r.add("IsNaN", 9, plain<IsNaNF, Types::kFloat, true>);
  r.add("IsInf", 10, is_inf);
  r.add("LeakyRelu", 6, leaky_relu);
  r.add("ThresholdedRelu", 10, thresholded_relu);
  r.add("HardSigmoid", 6, hard_sigmoid);
  r.add("Elu", 6, elu);
  r.add("Celu", 12, celu);
  r.add("Selu", 6, selu);
  r.add("Gelu", 20, gelu);
  r.add("Clip", 6, clip);
  r.add("Shrink", 9, shrink);
}

}  // namespace hearth::onnx
