// ONNX operators: binary and n-ary elementwise ops under multidirectional broadcasting
// (https://onnx.ai/onnx/operators/): Add Sub Mul Div Pow Mod, PRelu, the comparisons, the
// boolean ops, Where, and the variadic Min Max Sum Mean. The broadcast loops are in
// broadcast.h (with their scalar reference); the unary ops are in unary.cpp and Cast,
// Identity and Dropout in cast.cpp, registered from here.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "hearth/onnx/ops/broadcast.h"
#include "hearth/onnx/ops/dtype_dispatch.h"
#include "hearth/onnx/ops/elementwise_internal.h"
#include "hearth/onnx/ops/op_common.h"

namespace hearth::onnx {
namespace {

// out[0] = f(a, b): of the inputs' type, or bool with kBoolOut. `F` is a functor with a
// templated call operator; `dispatch` picks the element type.
template <bool kBoolOut, typename Dispatch, typename F>
Status binary(OpContext& ctx, const Node& node, const Tensor& a, const Tensor& b, std::vector<Tensor>& out,
              Dispatch dispatch, F f) {
  HEARTH_TRY(require_same_dtype(node, a, b, "input B"));
  HEARTH_ASSIGN_OR_RETURN(Shape shape, broadcast_shape(node, {&a.shape(), &b.shape()}));
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out_uninit(ctx, node, kBoolOut ? DType::kBool : a.dtype(), shape));
  const Broadcast bc = plan_broadcast(shape, {&a.shape(), &b.shape()});
  const bool known = dispatch(a.dtype(), [&]<typename T>(Tag<T>) {
    using O = std::conditional_t<kBoolOut, uint8_t, T>;
    broadcast_binary(ctx.pool, bc, a.data<T>(), b.data<T>(), o.data<O>(), [f](T x, T y) { return static_cast<O>(f(x, y)); });
  });
  if (!known) return unsupported_dtype(node, "input A", a);
  out[0] = std::move(o);
  return ok_status();
}

struct AddF {
  template <typename T>
  T operator()(T x, T y) const { return wrap_add(x, y); }
};
struct SubF {
  template <typename T>
  T operator()(T x, T y) const { return wrap_sub(x, y); }
};
struct MulF {
  template <typename T>
  T operator()(T x, T y) const { return wrap_mul(x, y); }
};
struct DivF {  // integer division truncates toward zero (a zero divisor is refused before)
  template <typename T>
  T operator()(T x, T y) const {
    if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      if (y == T(-1)) return wrap_neg(x);  // INT_MIN / -1 would trap
    }
    return static_cast<T>(x / y);
  }
};
struct EqualF {
  template <typename T>
  bool operator()(T x, T y) const { return x == y; }
};
struct LessF {
  template <typename T>
  bool operator()(T x, T y) const { return x < y; }
};
struct GreaterF {
  template <typename T>
  bool operator()(T x, T y) const { return x > y; }
};
struct LessEqF {
  template <typename T>
  bool operator()(T x, T y) const { return x <= y; }
};
struct GreaterEqF {
  template <typename T>
  bool operator()(T x, T y) const { return x >= y; }
};
struct AndF {
  template <typename T>
  bool operator()(T x, T y) const { return (x != 0) & (y != 0); }
};
struct OrF {
  template <typename T>
  bool operator()(T x, T y) const { return (x != 0) | (y != 0); }
};
struct XorF {
  template <typename T>
  bool operator()(T x, T y) const { return (x != 0) != (y != 0); }
};
// Min/Max propagate NaN, as numpy.minimum/maximum (the ONNX reference).
struct MinF {
  template <typename T>
  T operator()(T x, T y) const {
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(y)) return y;
    }
    return y < x ? y : x;
  }
};
struct MaxF {
  template <typename T>
  T operator()(T x, T y) const {
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(y)) return y;
    }
    return y > x ? y : x;
  }
};

const auto numeric = [](DType t, auto&& f) { return dispatch_numeric(t, f); };
const auto with_bool = [](DType t, auto&& f) {
  return dispatch_types<float, double, int32_t, int64_t, int8_t, uint8_t, int16_t, uint16_t, uint32_t, uint64_t>(
      t == DType::kBool ? DType::kUint8 : t, f);
};
const auto bool_only = [](DType t, auto&& f) { return t == DType::kBool && dispatch_types<uint8_t>(DType::kUint8, f); };

// Add followed by Relu, fused by fusion.cpp (the attribute hearth.activation = "relu"): the sum
// clamped as Relu clamps, in one pass over memory.
struct AddReluF {
  template <typename T>
  T operator()(T x, T y) const {
    const T s = wrap_add(x, y);  // integers wrap as Add's do
    return s > T{0} ? s : T{0};
  }
};

template <typename F>
Status arith_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  if constexpr (std::is_same_v<F, AddF>) {
    if (node.has("hearth.activation")) {
      // Relu takes floats and signed integers only: the fused node refuses what Relu would.
      HEARTH_TRY(require_dtype(node, *in[0], "input A (fused with Relu)",
                               {DType::kFloat, DType::kDouble, DType::kInt8, DType::kInt16, DType::kInt32, DType::kInt64}));
      return binary<false>(ctx, node, *in[0], *in[1], out, numeric, AddReluF{});
    }
  }
  return binary<false>(ctx, node, *in[0], *in[1], out, numeric, F{});
}

Status div_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const Tensor& b = *in[1];
  if (is_integer_dtype(b.dtype())) {
    for (int64_t i = 0; i < b.numel(); ++i) {
      if (b.int_at(i) == 0) return make_error(ErrorCode::kInvalidArgument, "{}: integer division by zero", node.describe());
    }
  }
  return binary<false>(ctx, node, *in[0], b, out, numeric, DivF{});
}

template <typename F>
Status compare_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  return binary<true>(ctx, node, *in[0], *in[1], out, with_bool, F{});
}

template <typename F>
Status logic_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  HEARTH_TRY(require_dtype(node, *in[0], "input A", {DType::kBool}));
  return binary<true>(ctx, node, *in[0], *in[1], out, bool_only, F{});
}

struct ModF {
  bool fmod;
  template <typename T>
  T operator()(T x, T y) const {
    if constexpr (std::is_floating_point_v<T>) {
      return std::fmod(x, y);
    } else {
      if constexpr (std::is_signed_v<T>) {
        if (y == T(-1)) return T{0};
      }
      T r = static_cast<T>(x % y);
      if constexpr (std::is_signed_v<T>) {
        if (!fmod && r != 0 && ((r < 0) != (y < 0))) r = static_cast<T>(r + y);
      }
      return r;
    }
  }
};

// BitShift on unsigned integers; a shift by the type's width or more gives 0.
struct ShiftF {
  bool left;
  template <typename T>
  T operator()(T x, T y) const {
    if constexpr (std::is_unsigned_v<T>) {
      if (y >= sizeof(T) * 8) return T{0};
      return static_cast<T>(left ? x << y : x >> y);
    } else {
      return x;  // not reached: unsigned types only
    }
  }
};

Status bit_shift(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const std::string dir = node.attr_string("direction", "");
  if (dir != "LEFT" && dir != "RIGHT") {
    return make_error(ErrorCode::kInvalidArgument, "{}: direction must be LEFT or RIGHT, is \"{}\"", node.describe(), dir);
  }
  const auto unsigned_types = [](DType t, auto&& f) { return dispatch_types<uint8_t, uint16_t, uint32_t, uint64_t>(t, f); };
  return binary<false>(ctx, node, *in[0], *in[1], out, unsigned_types, ShiftF{dir == "LEFT"});
}

// Mod: fmod=0 takes the divisor's sign (Python's %, integers only); fmod=1 is C's fmod.
Status mod_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const bool fmod = node.attr_int("fmod", 0) != 0;
  const Tensor& a = *in[0];
  const Tensor& b = *in[1];
  const bool is_float = a.dtype() == DType::kFloat || a.dtype() == DType::kDouble;
  if (is_float && !fmod) {
    return make_error(ErrorCode::kInvalidArgument, "{}: fmod must be 1 for floating-point inputs", node.describe());
  }
  if (is_integer_dtype(b.dtype())) {
    for (int64_t i = 0; i < b.numel(); ++i) {
      if (b.int_at(i) == 0) return make_error(ErrorCode::kInvalidArgument, "{}: integer modulo by zero", node.describe());
    }
  }
  return binary<false>(ctx, node, a, b, out, numeric, ModF{fmod});
}

// Pow(X, Y): the output has X's type; Y may be of another numeric type (opset 12+).
Status pow_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const Tensor& a = *in[0];
  const Tensor& b = *in[1];
  HEARTH_ASSIGN_OR_RETURN(Shape shape, broadcast_shape(node, {&a.shape(), &b.shape()}));
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, a.dtype(), shape));
  const Broadcast bc = plan_broadcast(shape, {&a.shape(), &b.shape()});
  bool known_b = true;
  const bool known_a = dispatch_types<float, double, int32_t, int64_t>(a.dtype(), [&]<typename T>(Tag<T>) {
    T* po = o.data<T>();
    if constexpr (std::is_same_v<T, float>) {
      // x^2 (the common case: variance, squared error) without pow().
      if (b.numel() == 1 && b.double_at(0) == 2.0) {
        const float* pa = a.data<float>();
        broadcast_binary(ctx.pool, bc, pa, pa, po, [](float x, float) { return x * x; });
        return;
      }
    }
    known_b = dispatch_numeric(b.dtype(), [&]<typename U>(Tag<U>) {
      broadcast_binary(ctx.pool, bc, a.data<T>(), b.data<U>(), po, [](T x, U y) {
        if constexpr (std::is_same_v<T, float> && std::is_same_v<U, float>) return std::pow(x, y);
        else return convert<T>(std::pow(static_cast<double>(x), static_cast<double>(y)));
      });
    });
  });
  if (!known_a) return unsupported_dtype(node, "input X", a);
  if (!known_b) return unsupported_dtype(node, "input Y", b);
  out[0] = std::move(o);
  return ok_status();
}

// PRelu: slope broadcasts to X (unidirectionally: the output has X's shape).
Status prelu_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const Tensor& x = *in[0];
  const Tensor& s = *in[1];
  HEARTH_TRY(require_same_dtype(node, x, s, "slope"));
  HEARTH_ASSIGN_OR_RETURN(Shape shape, broadcast_shape(node, {&x.shape(), &s.shape()}));
  if (shape != x.shape()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: slope of shape {} does not broadcast to X's shape {}",
                      node.describe(), shape_string(s.shape()), shape_string(x.shape()));
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), shape));
  const Broadcast bc = plan_broadcast(shape, {&x.shape(), &s.shape()});
  const bool known = dispatch_signed(x.dtype(), [&]<typename T>(Tag<T>) {
    broadcast_binary(ctx.pool, bc, x.data<T>(), s.data<T>(), o.data<T>(),
                     [](T v, T k) { return v < T{0} ? wrap_mul(v, k) : v; });
  });
  if (!known) return unsupported_dtype(node, "input X", x);
  out[0] = std::move(o);
  return ok_status();
}

// Where(condition, X, Y): elements are copied by size (any held type).
Status where_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 3, 3));
  const Tensor& c = *in[0];
  const Tensor& x = *in[1];
  const Tensor& y = *in[2];
  HEARTH_TRY(require_dtype(node, c, "condition", {DType::kBool}));
  HEARTH_TRY(require_same_dtype(node, x, y, "input Y"));
  HEARTH_ASSIGN_OR_RETURN(Shape shape, broadcast_shape(node, {&c.shape(), &x.shape(), &y.shape()}));
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), shape));
  const Broadcast bc = plan_broadcast(shape, {&c.shape(), &x.shape(), &y.shape()});
  auto run = [&]<typename T>(Tag<T>) {
    broadcast_ternary(ctx.pool, bc, c.data<uint8_t>(), x.data<T>(), y.data<T>(), o.data<T>(),
                      [](uint8_t k, T a, T b) { return k ? a : b; });
  };
  switch (dtype_size(x.dtype())) {
    case 1: run(Tag<uint8_t>{}); break;
    case 2: run(Tag<uint16_t>{}); break;
    case 4: run(Tag<uint32_t>{}); break;
    case 8: run(Tag<uint64_t>{}); break;
    default: return unsupported_dtype(node, "input X", x);
  }
  out[0] = std::move(o);
  return ok_status();
}

// Min Max Sum Mean: folded left to right, each step broadcasting (so the result has the
// broadcast of all the shapes); Mean divides the sum by the input count.
template <typename F, bool kMean = false>
Status variadic_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  if (in.empty()) return make_error(ErrorCode::kInvalidArgument, "{}: needs at least one input", node.describe());
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i]) return make_error(ErrorCode::kInvalidArgument, "{}: input {} is required", node.describe(), i);
  }
  Tensor acc = *in[0];
  if (in.size() == 1) {  // a copy, so that Mean's division does not touch the input
    HEARTH_ASSIGN_OR_RETURN(Tensor c, alloc_out(ctx, node, acc.dtype(), acc.shape()));
    if (acc.nbytes()) std::memcpy(c.raw(), acc.raw(), acc.nbytes());
    acc = std::move(c);
  }
  std::vector<Tensor> step(1);
  for (size_t i = 1; i < in.size(); ++i) {
    HEARTH_TRY(binary<false>(ctx, node, acc, *in[i], step, numeric, F{}));
    acc = std::move(step[0]);
  }
  if constexpr (kMean) {
    const double n = static_cast<double>(in.size());
    const bool known = dispatch_float(acc.dtype(), [&]<typename T>(Tag<T>) {
      for (T& v : acc.mutable_values<T>()) v = static_cast<T>(v / n);
    });
    if (!known) return unsupported_dtype(node, "input", acc);
  }
  out[0] = std::move(acc);
  return ok_status();
}

// float16 / bfloat16 inputs: converted to float, the op run in float, and a float output
// converted back when the first input was 16-bit (ONNX computes these types at their own
// precision; rounding once at the end is what onnxruntime's float-upcasting kernels do too).
Result<Tensor> convert_tensor(OpContext& ctx, const Node& node, const Tensor& t, DType to) {
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, to, t.shape()));
  bool ok = false;
  dispatch_types<float, Half, BFloat>(t.dtype(), [&]<typename S>(Tag<S>) {
    ok = dispatch_types<float, Half, BFloat>(to, [&]<typename D>(Tag<D>) {
      const S* ps = t.data<S>();
      D* pd = o.data<D>();
      for (int64_t i = 0; i < t.numel(); ++i) pd[i] = convert<D>(ps[i]);
    });
  });
  if (!ok) return make_error(ErrorCode::kInternal, "{}: cannot convert {} to {}", node.describe(), dtype_name(t.dtype()), dtype_name(to));
  return o;
}

template <OpFn kFn>
Status via_float(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  auto is16 = [](const Tensor* t) { return t && (t->dtype() == DType::kFloat16 || t->dtype() == DType::kBFloat16); };
  if (std::none_of(in.begin(), in.end(), is16)) return kFn(ctx, node, in, out);
  std::vector<Tensor> conv(in.size());
  std::vector<const Tensor*> ptrs(in.begin(), in.end());
  for (size_t i = 0; i < in.size(); ++i) {
    if (!is16(in[i])) continue;
    HEARTH_ASSIGN_OR_RETURN(conv[i], convert_tensor(ctx, node, *in[i], DType::kFloat));
    ptrs[i] = &conv[i];
  }
  HEARTH_TRY(kFn(ctx, node, ptrs, out));
  if (!in.empty() && is16(in[0])) {
    for (Tensor& o : out) {
      if (!o.empty_value() && o.dtype() == DType::kFloat) {
        HEARTH_ASSIGN_OR_RETURN(o, convert_tensor(ctx, node, o, in[0]->dtype()));
      }
    }
  }
  return ok_status();
}

}  // namespace

void register_elementwise_ops(OpRegistry& r) {
  r.add("Add", 7, via_float<arith_op<AddF>>);
  r.add("Sub", 7, via_float<arith_op<SubF>>);
  r.add("Mul", 7, via_float<arith_op<MulF>>);
  r.add("Div", 7, via_float<div_op>);
  r.add("Pow", 7, via_float<pow_op>);
  r.add("Mod", 10, via_float<mod_op>);
  r.add("BitShift", 11, bit_shift);
  r.add("PRelu", 7, via_float<prelu_op>);
  r.add("Equal", 7, via_float<compare_op<EqualF>>);
  r.add("Less", 7, via_float<compare_op<LessF>>);
  r.add("Greater", 7, via_float<compare_op<GreaterF>>);
  r.add("LessOrEqual", 12, via_float<compare_op<LessEqF>>);
  r.add("GreaterOrEqual", 12, via_float<compare_op<GreaterEqF>>);
  r.add("And", 7, logic_op<AndF>);
  r.add("Or", 7, logic_op<OrF>);
  r.add("Xor", 7, logic_op<XorF>);
  r.add("Where", 9, where_op);
  r.add("Min", 8, via_float<variadic_op<MinF>>);
  r.add("Max", 8, via_float<variadic_op<MaxF>>);
  r.add("Sum", 8, via_float<variadic_op<AddF>>);
  r.add("Mean", 8, via_float<variadic_op<AddF, true>>);
  register_unary_ops(r);
  register_cast_ops(r);
}

}  // namespace hearth::onnx
