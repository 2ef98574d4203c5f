// ONNX operators: reductions (https://onnx.ai/onnx/operators/) — ReduceSum ReduceMean ReduceMax
// ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceSumSquare ReduceLogSum ReduceLogSumExp, ArgMax,
// ArgMin, and the running sum CumSum. Axes are an attribute before opset 18 (ReduceSum: 13) and an optional input after;
// keepdims; noop_with_empty_axes. The work is laid out by reduce_plan.h as [A, R, B]; a
// reduction over several separated axis runs uses reduce_ref(), the scalar reference the unit
// tests also compare the fast layouts with. Softmax, LogSoftmax, Hardmax and TopK are in
// softmax.cpp, registered from here.
#include <cmath>
#include <limits>

#include "hearth/onnx/ops/dtype_dispatch.h"
#include "hearth/onnx/ops/op_common.h"
#include "hearth/onnx/ops/reduce_internal.h"
#include "hearth/onnx/ops/reduce_plan.h"

namespace hearth::onnx {
namespace {

// A reduction: T init(), T step(T acc, T x), T combine(T acc, T partial) (joins two partial
// results), T finish(T acc, count); integer sums wrap.

template <typename T>
struct SumR {
  static T init() { return T(0); }
  static T step(T acc, T x) { return wrap_add(acc, x); }
  static T combine(T acc, T part) { return wrap_add(acc, part); }
  static T finish(T acc, int64_t) { return acc; }
};
template <typename T>
struct MeanR : SumR<T> {
  static T finish(T acc, int64_t n) {
    if constexpr (std::is_floating_point_v<T>) return acc / static_cast<T>(n);  // 0/0: NaN
    else return n == 0 ? T(0) : static_cast<T>(static_cast<long double>(acc) / static_cast<long double>(n));
  }
};
template <typename T>
struct MaxR {
  static T init() {
    if constexpr (std::is_floating_point_v<T>) return -std::numeric_limits<T>::infinity();
    else return std::numeric_limits<T>::lowest();
  }
  static T step(T acc, T x) { return x > acc ? x : acc; }
  static T combine(T acc, T part) { return step(acc, part); }
  static T finish(T acc, int64_t) { return acc; }
};
template <typename T>
struct MinR {
  static T init() {
    if constexpr (std::is_floating_point_v<T>) return std::numeric_limits<T>::infinity();
    else return std::numeric_limits<T>::max();
  }
  static T step(T acc, T x) { return x < acc ? x : acc; }
  static T combine(T acc, T part) { return step(acc, part); }
  static T finish(T acc, int64_t) { return acc; }
};
template <typename T>
struct ProdR {
  static T init() { return T(1); }
  static T step(T acc, T x) { return wrap_mul(acc, x); }
  static T combine(T acc, T part) { return step(acc, part); }
  static T finish(T acc, int64_t) { return acc; }
};
template <typename T>
struct L1R : SumR<T> {
  static T step(T acc, T x) {
    if constexpr (std::is_signed_v<T>) return wrap_add(acc, x < T(0) ? wrap_neg(x) : x);
    else return wrap_add(acc, x);
  }
};
template <typename T>
struct SumSquareR : SumR<T> {
  static T step(T acc, T x) { return wrap_add(acc, wrap_mul(x, x)); }
};
template <typename T>
struct L2R : SumSquareR<T> {
  static T finish(T acc, int64_t) { return static_cast<T>(std::sqrt(static_cast<double>(acc))); }
};
template <typename T>
struct LogSumR : SumR<T> {
  static T finish(T acc, int64_t) { return static_cast<T>(std::log(static_cast<double>(acc))); }
};
// log(sum(exp(x))) without overflow needs the max first: reduce_log_sum_exp() does two passes.

// out[a, b] = finish(combine over r of in[a, r, b]).
template <template <typename> class R, typename T>
void reduce_arb(ThreadPool& pool, const T* in, T* out, const ReducePlan& p) {
  const int64_t A = p.a, Rn = p.r, B = p.b;
  if (B == 1) {
    pool.parallel_for(A, std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(Rn, 1)), [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) {
        // Eight independent partial results, so that the compiler can keep them in one vector
        // register (a single accumulator is a serial dependency it may not reorder).
        const T* row = in + a * Rn;
        constexpr int64_t kLanes = 8;
        T lanes[kLanes];
        for (auto& l : lanes) l = R<T>::init();
        int64_t r = 0;
        for (; r + kLanes <= Rn; r += kLanes) {
          for (int64_t k = 0; k < kLanes; ++k) lanes[k] = R<T>::step(lanes[k], row[r + k]);
        }
        T acc = R<T>::init();
        for (; r < Rn; ++r) acc = R<T>::step(acc, row[r]);
        for (const auto& l : lanes) acc = R<T>::combine(acc, l);
        out[a] = R<T>::finish(acc, p.count);
      }
    });
    return;
  }
  pool.parallel_for(A, std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(Rn * B, 1)), [&](int64_t a0, int64_t a1) {
    for (int64_t a = a0; a < a1; ++a) {
      T* acc = out + a * B;
      for (int64_t b = 0; b < B; ++b) acc[b] = R<T>::init();
      for (int64_t r = 0; r < Rn; ++r) {
        const T* row = in + (a * Rn + r) * B;
        for (int64_t b = 0; b < B; ++b) acc[b] = R<T>::step(acc[b], row[b]);
      }
      for (int64_t b = 0; b < B; ++b) acc[b] = R<T>::finish(acc[b], p.count);
    }
  });
}

struct Axes {
  bool noop = false;           // return the input unchanged
  std::vector<bool> reduced;   // per input dim
};

// The axes to reduce: the attribute before `input_since`, else the optional input 1; none
// given reduces all (or nothing with noop_with_empty_axes).
Result<Axes> reduce_axes(OpContext& ctx, const Node& node, OpInputs in, int64_t input_since) {
  const Tensor& x = *in[0];
  std::vector<int64_t> axes;
  if (ctx.opset < input_since) {
    HEARTH_TRY(require_inputs(node, in, 1, 1));
    axes = node.attr_ints("axes");
  } else {
    HEARTH_TRY(require_inputs(node, in, 1, 2));
    if (const Tensor* t = opt_input(in, 1)) {
      HEARTH_ASSIGN_OR_RETURN(axes, int_list(node, *t, "axes"));
    }
  }
  Axes r;
  r.reduced.assign(x.rank(), axes.empty());
  if (axes.empty()) {
    r.noop = ctx.opset >= input_since && node.attr_int("noop_with_empty_axes", 0) != 0;
    return r;
  }
  for (int64_t a : axes) {
    HEARTH_ASSIGN_OR_RETURN(int64_t d, normalize_axis(node, a, static_cast<int64_t>(x.rank())));
    if (r.reduced[static_cast<size_t>(d)]) return make_error(ErrorCode::kInvalidArgument, "{}: axis {} is given twice", node.describe(), a);
    r.reduced[static_cast<size_t>(d)] = true;
  }
  return r;
}

Shape reduced_shape(const Shape& shape, const std::vector<bool>& reduced, bool keepdims) {
  Shape s;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (!reduced[d]) s.push_back(shape[d]);
    else if (keepdims) s.push_back(1);
  }
  return s;
}

template <template <typename> class R>
Status reduce_with(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out, int64_t input_since) {
  HEARTH_TRY(require_inputs(node, in, 1, 2));
  const Tensor& x = *in[0];
  HEARTH_ASSIGN_OR_RETURN(Axes axes, reduce_axes(ctx, node, in, input_since));
  if (axes.noop) {
    out[0] = x;
    return ok_status();
  }
  const bool keepdims = node.attr_int("keepdims", 1) != 0;
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), reduced_shape(x.shape(), axes.reduced, keepdims)));
  const ReducePlan p = plan_reduce(x.shape(), axes.reduced);
  const bool known = dispatch_types<float, double, int32_t, int64_t, uint8_t, int8_t, uint32_t, uint64_t>(
      x.dtype(), [&]<typename T>(Tag<T>) {
        if (p.single_run) reduce_arb<R, T>(ctx.pool, x.data<T>(), o.data<T>(), p);
        else reduce_ref<R, T>(x.data<T>(), x.shape(), axes.reduced, o.data<T>());
      });
  if (!known) return unsupported_dtype(node, "input", x);
  out[0] = std::move(o);
  return ok_status();
}

// ReduceLogSumExp: m + log(sum(exp(x - m))) with m the max (m itself where it is infinite).
Status reduce_log_sum_exp(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out, int64_t input_since) {
  std::vector<Tensor> mx(1);
  HEARTH_TRY(reduce_with<MaxR>(ctx, node, in, mx, input_since));
  const Tensor& x = *in[0];
  HEARTH_ASSIGN_OR_RETURN(Axes axes, reduce_axes(ctx, node, in, input_since));
  if (axes.noop) {
    out[0] = x;
    return ok_status();
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), mx[0].shape()));
  const bool known = dispatch_float(x.dtype(), [&]<typename T>(Tag<T>) {
    // Accumulate exp(x - m) into o by the reference's index mapping, then finish.
    const T* m = mx[0].data<T>();
    T* po = o.data<T>();
    const Shape& s = x.shape();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t j = reduced_index(s, axes.reduced, i);
      const T mj = std::isinf(m[j]) ? T(0) : m[j];
      po[j] += std::exp(x.data<T>()[i] - mj);
    }
    for (int64_t j = 0; j < o.numel(); ++j) po[j] = (std::isinf(m[j]) ? m[j] : m[j] + std::log(po[j]));
  });
  if (!known) return unsupported_dtype(node, "input", x);
  out[0] = std::move(o);
  return ok_status();
}

// ArgMax / ArgMin along one axis: the first extreme (the last with select_last_index), int64.
template <bool kMax>
Status arg_extreme(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const Tensor& x = *in[0];
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (rank == 0) return make_error(ErrorCode::kInvalidArgument, "{}: input must have rank >= 1", node.describe());
  HEARTH_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", 0), rank));
  if (x.dim(static_cast<size_t>(axis)) == 0) {
    return make_error(ErrorCode::kInvalidArgument, "{}: axis {} is empty", node.describe(), axis);
  }
  const bool keepdims = node.attr_int("keepdims", 1) != 0;
  const bool last = node.attr_int("select_last_index", 0) != 0;
  std::vector<bool> reduced(x.rank(), false);
  reduced[static_cast<size_t>(axis)] = true;
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, DType::kInt64, reduced_shape(x.shape(), reduced, keepdims)));
  int64_t A = 1, B = 1;
  for (int64_t d = 0; d < axis; ++d) A *= x.dim(static_cast<size_t>(d));
  for (int64_t d = axis + 1; d < rank; ++d) B *= x.dim(static_cast<size_t>(d));
  const int64_t Rn = x.dim(static_cast<size_t>(axis));
  const bool known = dispatch_numeric(x.dtype(), [&]<typename T>(Tag<T>) {
    const T* px = x.data<T>();
    int64_t* po = o.data<int64_t>();
    for (int64_t a = 0; a < A; ++a) {
      for (int64_t b = 0; b < B; ++b) {
        const T* p = px + a * Rn * B + b;
        int64_t best = 0;
        for (int64_t r = 1; r < Rn; ++r) {
          const T v = p[r * B], cur = p[best * B];
          const bool better = kMax ? (last ? v >= cur : v > cur) : (last ? v <= cur : v < cur);
          if (better) best = r;
        }
        po[a * B + b] = best;
      }
    }
  });
  if (!known) return unsupported_dtype(node, "input", x);
  out[0] = std::move(o);
  return ok_status();
}

template <template <typename> class R, int64_t kInputSince>
Status reduce_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  return reduce_with<R>(ctx, node, in, out, kInputSince);
}

template <int64_t kInputSince>
Status log_sum_exp_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  return reduce_log_sum_exp(ctx, node, in, out, kInputSince);
}

// CumSum: running sums along the axis (a scalar input), optionally exclusive (each output
// leaves out its own element) and/or reversed; integers wrap.
Status cumsum_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const Tensor& x = *in[0];
  if (in[1]->numel() != 1) return make_error(ErrorCode::kInvalidArgument, "{}: axis must be a scalar", node.describe());
  HEARTH_TRY(require_dtype(node, *in[1], "axis", {DType::kInt64, DType::kInt32}));
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (rank == 0) return make_error(ErrorCode::kInvalidArgument, "{}: input must have rank >= 1", node.describe());
  HEARTH_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, in[1]->int_at(0), rank));
  const bool exclusive = node.attr_int("exclusive", 0) != 0, reverse = node.attr_int("reverse", 0) != 0;
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), x.shape()));
  int64_t A = 1, B = 1;
  for (int64_t d = 0; d < axis; ++d) A *= x.dim(static_cast<size_t>(d));
  for (int64_t d = axis + 1; d < rank; ++d) B *= x.dim(static_cast<size_t>(d));
  const int64_t Rn = x.dim(static_cast<size_t>(axis));
  const bool known = dispatch_types<float, double, int32_t, int64_t, uint32_t, uint64_t>(x.dtype(), [&]<typename T>(Tag<T>) {
    const T* px = x.data<T>();
    T* po = o.data<T>();
    for (int64_t a = 0; a < A; ++a) {
      // Rows of B, walked forward or backward; the output is zero-filled (the first exclusive row).
      T* prev = nullptr;
      for (int64_t step = 0; step < Rn; ++step) {
        const int64_t r = reverse ? Rn - 1 - step : step;
        const T* row = px + (a * Rn + r) * B;
        T* orow = po + (a * Rn + r) * B;
        if (exclusive) {
          if (prev) {
            const T* prow = px + (a * Rn + (reverse ? r + 1 : r - 1)) * B;
            for (int64_t b = 0; b < B; ++b) orow[b] = wrap_add(prev[b], prow[b]);
          }
        } else {
          for (int64_t b = 0; b < B; ++b) orow[b] = prev ? wrap_add(prev[b], row[b]) : row[b];
        }
        prev = orow;
      }
    }
  });
  if (!known) return unsupported_dtype(node, "input", x);
  out[0] = std::move(o);
  return ok_status();
}

}  // namespace

void register_reduce_ops(OpRegistry& r) {
  r.add("ReduceSum", 1, reduce_op<SumR, 13>);
  r.add("ReduceMean", 1, reduce_op<MeanR, 18>);
  r.add("ReduceMax", 1, reduce_op<MaxR, 18>);
  r.add("ReduceMin", 1, reduce_op<MinR, 18>);
  r.add("ReduceProd", 1, reduce_op<ProdR, 18>);
  r.add("ReduceL1", 1, reduce_op<L1R, 18>);
  r.add("ReduceL2", 1, reduce_op<L2R, 18>);
  r.add("ReduceSumSquare", 1, reduce_op<SumSquareR, 18>);
  r.add("ReduceLogSum", 1, reduce_op<LogSumR, 18>);
  r.add("ReduceLogSumExp", 1, log_sum_exp_op<18>);
  r.add("ArgMax", 1, arg_extreme<true>);
  r.add("ArgMin", 1, arg_extreme<false>);
  r.add("CumSum", 11, cumsum_op);
  register_softmax_ops(r);
}

}  // namespace hearth::onnx
