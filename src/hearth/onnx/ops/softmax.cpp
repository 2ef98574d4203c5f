// ONNX operators: Softmax, LogSoftmax, Hardmax and TopK (https://onnx.ai/onnx/operators/).
// Before opset 13 the softmax family coerces the input to 2-D at `axis` (default 1) and works
// on whole rows of prod(dims[axis:]); from 13 it works along the one axis (default -1). Either
// way the layout is [A, R, B]: contiguous rows (B == 1, float rows through the kernel table's
// softmax) or R strided rows of B handled together.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "hearth/kernels/kernel_table.h"
#include "hearth/onnx/ops/dtype_dispatch.h"
#include "hearth/onnx/ops/op_common.h"
#include "hearth/onnx/ops/reduce_internal.h"
#include "hearth/onnx/ops/vec_math.h"

namespace hearth::onnx {
namespace {

enum class Kind { kSoftmax, kLogSoftmax, kHardmax };

struct Layout {
  int64_t a = 1, r = 1, b = 1;
};

Result<Layout> softmax_layout(OpContext& ctx, const Node& node, const Tensor& x) {
  const int64_t rank = static_cast<int64_t>(x.rank());
  Layout l;
  if (ctx.opset < 13) {
    int64_t axis = node.attr_int("axis", 1);
    if (axis < -rank || axis > rank) {
      return make_error(ErrorCode::kInvalidArgument, "{}: axis {} is out of range for rank {}", node.describe(), axis, rank);
    }
    if (axis < 0) axis += rank;
    for (int64_t d = 0; d < rank; ++d) (d < axis ? l.a : l.r) *= x.dim(static_cast<size_t>(d));
    return l;
  }
  if (rank == 0) return l;  // a scalar: one row of one element
  HEARTH_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", -1), rank));
  for (int64_t d = 0; d < rank; ++d) {
    const int64_t n = x.dim(static_cast<size_t>(d));
    if (d < axis) l.a *= n;
    else if (d == axis) l.r = n;
    else l.b *= n;
  }
  return l;
}

// x[i] = exp(x[i]): float in vec_math.h's vector lanes.
template <typename T>
void exp_of(T* x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    exp_array(x, x, n);
  } else {
    for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
  }
}

// One [R, B] block: for each of the B columns, the softmax over its R elements. Columns go in
// tiles of 64 with the running max and sum on the stack (pool threads do not allocate), each
// tile's rows read contiguously.
template <typename T>
void softmax_rows(Kind kind, const T* in, T* out, int64_t R, int64_t B) {
  constexpr int64_t kTile = 64;
  for (int64_t b0 = 0; b0 < B; b0 += kTile) {
    const int64_t nb = std::min(kTile, B - b0);
    T mx[kTile], sum[kTile];
    int64_t arg[kTile];
    for (int64_t j = 0; j < nb; ++j) {
      mx[j] = -std::numeric_limits<T>::infinity();
      sum[j] = T(0);
      arg[j] = 0;
    }
    for (int64_t r = 0; r < R; ++r) {
      const T* row = in + r * B + b0;
      for (int64_t j = 0; j < nb; ++j) {
        if (row[j] > mx[j]) {
          mx[j] = row[j];
          arg[j] = r;
        }
      }
    }
    if (kind == Kind::kHardmax) {
      for (int64_t j = 0; j < nb; ++j) out[arg[j] * B + b0 + j] = T(1);  // the output is zero-filled
      continue;
    }
    for (int64_t r = 0; r < R; ++r) {
      const T* row = in + r * B + b0;
      T* orow = out + r * B + b0;
      T e[kTile];
      for (int64_t j = 0; j < nb; ++j) e[j] = row[j] - mx[j];
      exp_of(e, nb);
      for (int64_t j = 0; j < nb; ++j) sum[j] += e[j];
      if (kind == Kind::kSoftmax) std::memcpy(orow, e, static_cast<size_t>(nb) * sizeof(T));
    }
    T scale[kTile];  // 1 / sum for Softmax, max + log(sum) for LogSoftmax
    for (int64_t j = 0; j < nb; ++j) scale[j] = kind == Kind::kSoftmax ? T(1) / sum[j] : mx[j] + std::log(sum[j]);
    for (int64_t r = 0; r < R; ++r) {
      const T* row = in + r * B + b0;
      T* orow = out + r * B + b0;
      if (kind == Kind::kSoftmax) {
        for (int64_t j = 0; j < nb; ++j) orow[j] *= scale[j];
      } else {
        for (int64_t j = 0; j < nb; ++j) orow[j] = row[j] - scale[j];
      }
    }
  }
}

template <Kind kKind>
Status softmax_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const Tensor& x = *in[0];
  HEARTH_ASSIGN_OR_RETURN(Layout l, softmax_layout(ctx, node, x));
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), x.shape()));
  if (x.numel() == 0) {
    out[0] = std::move(o);
    return ok_status();
  }
  const bool known = dispatch_float(x.dtype(), [&]<typename T>(Tag<T>) {
    const T* px = x.data<T>();
    T* po = o.data<T>();
    const int64_t block = l.r * l.b;
    ctx.pool.parallel_for(l.a, std::max<int64_t>(1, (int64_t{1} << 14) / block), [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) {
        if constexpr (std::is_same_v<T, float> && kKind == Kind::kSoftmax) {
          if (l.b == 1) {  // a contiguous row: the kernel table's (vectorized) softmax
            std::memcpy(po + a * block, px + a * block, static_cast<size_t>(block) * sizeof(float));
            ctx.kt.softmax(po + a * block, l.r);
            continue;
          }
        }
        softmax_rows<T>(kKind, px + a * block, po + a * block, l.r, l.b);
      }
    });
  });
  if (!known) return unsupported_dtype(node, "input", x);
  out[0] = std::move(o);
  return ok_status();
}

// TopK: the k largest (or smallest) along axis, sorted; equal values keep the lower index
// first (the spec). K is an input from opset 10 and the attribute 'k' before.
Status topk_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  const Tensor& x = *in[0];
  int64_t k = 0;
  if (ctx.opset < 10) {
    HEARTH_TRY(require_inputs(node, in, 1, 1));
    k = node.attr_int("k", -1);
  } else {
    HEARTH_TRY(require_inputs(node, in, 2, 2));
    if (in[1]->numel() != 1) return make_error(ErrorCode::kInvalidArgument, "{}: K must have one element", node.describe());
    HEARTH_TRY(require_dtype(node, *in[1], "K", {DType::kInt64}));
    k = in[1]->int_at(0);
  }
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (rank == 0) return make_error(ErrorCode::kInvalidArgument, "{}: input must have rank >= 1", node.describe());
  HEARTH_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(node, node.attr_int("axis", -1), rank));
  const int64_t R = x.dim(static_cast<size_t>(axis));
  if (k < 0 || k > R) {
    return make_error(ErrorCode::kInvalidArgument, "{}: K = {} is outside [0, {}] (axis {})", node.describe(), k, R, axis);
  }
  const bool largest = node.attr_int("largest", 1) != 0;
  Shape shape = x.shape();
  shape[static_cast<size_t>(axis)] = k;
  HEARTH_ASSIGN_OR_RETURN(Tensor values, alloc_out(ctx, node, x.dtype(), shape));
  HEARTH_ASSIGN_OR_RETURN(Tensor indices, alloc_out(ctx, node, DType::kInt64, shape));
  int64_t A = 1, B = 1;
  for (int64_t d = 0; d < axis; ++d) A *= x.dim(static_cast<size_t>(d));
  for (int64_t d = axis + 1; d < rank; ++d) B *= x.dim(static_cast<size_t>(d));
  const bool known = dispatch_numeric(x.dtype(), [&]<typename T>(Tag<T>) {
    const T* px = x.data<T>();
    T* pv = values.data<T>();
    int64_t* pi = indices.data<int64_t>();
    std::vector<int64_t> order(static_cast<size_t>(R));
    for (int64_t a = 0; a < A; ++a) {
      for (int64_t b = 0; b < B; ++b) {
        const T* p = px + a * R * B + b;
        std::iota(order.begin(), order.end(), 0);
        auto before = [&](int64_t i, int64_t j) {
          const T vi = p[i * B], vj = p[j * B];
          if (vi != vj) return largest ? vi > vj : vi < vj;
          return i < j;
        };
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
        for (int64_t j = 0; j < k; ++j) {
          const int64_t dst = (a * k + j) * B + b;
          pv[dst] = p[order[static_cast<size_t>(j)] * B];
          pi[dst] = order[static_cast<size_t>(j)];
        }
      }
    }
  });
  if (!known) return unsupported_dtype(node, "input", x);
  out[0] = std::move(values);
  if (out.size() > 1) out[1] = std::move(indices);
  return ok_status();
}

}  // namespace

void register_softmax_ops(OpRegistry& r) {
  r.add("Softmax", 1, softmax_op<Kind::kSoftmax>);
  r.add("LogSoftmax", 1, softmax_op<Kind::kLogSoftmax>);
  r.add("Hardmax", 1, softmax_op<Kind::kHardmax>);
  r.add("TopK", 1, topk_op);
}

}  // namespace hearth::onnx
