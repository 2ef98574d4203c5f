// ONNX operators that rearrange elements (https://onnx.ai/onnx/operators/): Transpose,
// Expand, Tile, Trilu, DepthToSpace, SpaceToDepth. They go through strided_copy.h's loops
// (Transpose with its batched 2-D tile fast path), moving elements by size.
#include <algorithm>
#include <cstring>

#include "hearth/core/checked_math.h"
#include "hearth/onnx/ops/broadcast.h"
#include "hearth/onnx/ops/op_common.h"
#include "hearth/onnx/ops/shape_internal.h"
#include "hearth/onnx/ops/strided_copy.h"

namespace hearth::onnx {
namespace {

// out = x viewed as `in_shape` and transposed by perm; the output has shape out_shape.
Status transpose_into(OpContext& ctx, const Node& node, const Tensor& x, const Shape& in_shape,
                      const std::vector<int64_t>& perm, std::vector<Tensor>& out, Shape out_shape) {
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out_uninit(ctx, node, x.dtype(), std::move(out_shape)));
  if (o.numel() > 0) transpose_copy(ctx.pool, x.raw(), in_shape, perm, o.raw(), dtype_size(x.dtype()));
  out[0] = std::move(o);
  return ok_status();
}

Status transpose_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const Tensor& x = *in[0];
  const size_t rank = x.rank();
  std::vector<int64_t> perm = node.attr_ints("perm");
  if (!node.has("perm")) {
    for (size_t d = rank; d-- > 0;) perm.push_back(static_cast<int64_t>(d));
  }
  std::vector<bool> seen(rank, false);
  bool valid = perm.size() == rank;
  for (size_t d = 0; valid && d < rank; ++d) {
    const int64_t p = perm[d];
    valid = p >= 0 && p < static_cast<int64_t>(rank) && !seen[static_cast<size_t>(p)];
    if (valid) seen[static_cast<size_t>(p)] = true;
  }
  if (!valid) {
    std::string s;
    for (int64_t p : perm) s += (s.empty() ? "" : ",") + std::to_string(p);
    return make_error(ErrorCode::kInvalidArgument, "{}: perm [{}] is not a permutation of the {} axes", node.describe(), s, rank);
  }
  Shape shape(rank);
  bool identity = true;
  for (size_t d = 0; d < rank; ++d) {
    shape[d] = x.dim(static_cast<size_t>(perm[d]));
    identity = identity && perm[d] == static_cast<int64_t>(d);
  }
  if (identity) {
    out[0] = x;
    return ok_status();
  }
  return transpose_into(ctx, node, x, x.shape(), perm, out, std::move(shape));
}

// Expand: x broadcast with `shape` (multidirectionally: a dim of 1 in shape keeps x's dim).
Status expand_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const Tensor& x = *in[0];
  HEARTH_ASSIGN_OR_RETURN(Shape target, int_list(node, *in[1], "shape"));
  for (int64_t d : target) {
    if (d < 0) return make_error(ErrorCode::kInvalidArgument, "{}: shape {} has a negative dim", node.describe(), shape_string(target));
  }
  if (target.size() > kMaxRank) {
    return make_error(ErrorCode::kInvalidArgument, "{}: shape has {} dims, at most {}", node.describe(), target.size(), kMaxRank);
  }
  HEARTH_ASSIGN_OR_RETURN(Shape shape, broadcast_shape(node, {&x.shape(), &target}));
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), shape));
  const std::vector<int64_t> xs = contiguous_strides(x.shape());
  std::vector<int64_t> strides(shape.size(), 0);
  const size_t lead = shape.size() - x.rank();
  for (size_t d = 0; d < x.rank(); ++d) strides[lead + d] = x.dim(d) == 1 ? 0 : xs[d];
  if (o.numel() > 0) strided_copy(ctx.pool, x.raw(), 0, shape, strides, o.raw(), dtype_size(x.dtype()));
  out[0] = std::move(o);
  return ok_status();
}

// Tile: out dim d = x dim d * repeats[d]; out[i] = x[i mod dims].
Status tile_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const Tensor& x = *in[0];
  HEARTH_ASSIGN_OR_RETURN(std::vector<int64_t> reps, int_list(node, *in[1], "repeats"));
  if (reps.size() != x.rank()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: repeats has {} values for an input of rank {}", node.describe(),
                      reps.size(), x.rank());
  }
  Shape shape(x.rank());
  for (size_t d = 0; d < x.rank(); ++d) {
    auto m = checked_mul<int64_t>(x.dim(d), reps[d]);
    if (reps[d] < 0 || !m) return make_error(ErrorCode::kInvalidArgument, "{}: bad repeat {} for axis {}", node.describe(), reps[d], d);
    shape[d] = *m;
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), shape));
  if (o.numel() == 0) {
    out[0] = std::move(o);
    return ok_status();
  }
  const size_t es = dtype_size(x.dtype());
  const size_t r = x.rank();
  if (r == 0) {
    std::memcpy(o.raw(), x.raw(), es);
    out[0] = std::move(o);
    return ok_status();
  }
  // Each output row (all dims but the last) repeats one input row reps[r-1] times.
  const std::vector<int64_t> xs = contiguous_strides(x.shape());
  const int64_t row_in = x.dim(r - 1) * static_cast<int64_t>(es);
  const int64_t row_out = shape[r - 1] * static_cast<int64_t>(es);
  const int64_t rows = o.numel() / shape[r - 1];
  ctx.pool.parallel_for(rows, std::max<int64_t>(1, (int64_t{1} << 15) / row_out), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      int64_t rem = row, off = 0;
      for (size_t d = r - 1; d-- > 0;) {
        off += ((rem % shape[d]) % x.dim(d)) * xs[d];
        rem /= shape[d];
      }
      std::byte* dst = o.raw() + row * row_out;
      for (int64_t k = 0; k < reps[r - 1]; ++k) {
        std::memcpy(dst + k * row_in, x.raw() + off * static_cast<int64_t>(es), static_cast<size_t>(row_in));
      }
    }
  });
  out[0] = std::move(o);
  return ok_status();
}

// Trilu: keeps the upper (j - i >= k) or lower (j - i <= k) triangle of the last two dims.
Status trilu_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 2));
  const Tensor& x = *in[0];
  if (x.rank() < 2) return make_error(ErrorCode::kInvalidArgument, "{}: input must have rank >= 2", node.describe());
  int64_t k = 0;
  if (const Tensor* t = opt_input(in, 1)) {
    if (t->numel() != 1) return make_error(ErrorCode::kInvalidArgument, "{}: k must be a scalar", node.describe());
    HEARTH_TRY(require_dtype(node, *t, "k", {DType::kInt64}));
    k = t->int_at(0);
  }
  const bool upper = node.attr_int("upper", 1) != 0;
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, x.dtype(), x.shape()));
  const int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
  const int64_t es = static_cast<int64_t>(dtype_size(x.dtype()));
  // Beyond [-rows-1, cols+1] every k keeps the same elements (and i + k cannot overflow).
  const int64_t kk = std::clamp<int64_t>(k, -rows - 1, cols + 1);
  const int64_t mats = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
  for (int64_t m = 0; m < mats; ++m) {
    for (int64_t i = 0; i < rows; ++i) {
      // The kept columns [j0, j1) of row i (the output is zero-filled).
      int64_t j0 = 0, j1 = cols;
      if (upper) j0 = std::clamp<int64_t>(i + kk, 0, cols);
      else j1 = std::clamp<int64_t>(i + kk + 1, 0, cols);
      if (j1 > j0) {
        const int64_t off = ((m * rows + i) * cols + j0) * es;
        std::memcpy(o.raw() + off, x.raw() + off, static_cast<size_t>((j1 - j0) * es));
      }
    }
  }
  out[0] = std::move(o);
  return ok_status();
}

// DepthToSpace / SpaceToDepth: a reshape to 6-D, a transpose, a reshape back (the spec's
// definitions).
Status depth_space(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out, bool to_space) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const Tensor& x = *in[0];
  if (x.rank() != 4) return make_error(ErrorCode::kInvalidArgument, "{}: input must be 4-D, is {}", node.describe(), shape_string(x.shape()));
  const int64_t b = node.attr_int("blocksize", 0);
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  if (b <= 0 || b > (int64_t{1} << 16)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: blocksize {} must be in [1, 65536]", node.describe(), b);
  }
  if (to_space) {
    if (c % (b * b) != 0) {
      return make_error(ErrorCode::kInvalidArgument, "{}: channels {} are not a multiple of blocksize^2 {}", node.describe(), c, b * b);
    }
    const int64_t cb = c / (b * b);
    const bool crd = node.attr_string("mode", "DCR") == "CRD";
    if (crd) return transpose_into(ctx, node, x, {n, cb, b, b, h, w}, {0, 1, 4, 2, 5, 3}, out, {n, cb, h * b, w * b});
    return transpose_into(ctx, node, x, {n, b, b, cb, h, w}, {0, 3, 4, 1, 5, 2}, out, {n, cb, h * b, w * b});
  }
  if (h % b != 0 || w % b != 0) {
    return make_error(ErrorCode::kInvalidArgument, "{}: height {} and width {} must be multiples of blocksize {}", node.describe(),
                      h, w, b);
  }
  return transpose_into(ctx, node, x, {n, c, h / b, b, w / b, b}, {0, 3, 5, 1, 2, 4}, out, {n, c * b * b, h / b, w / b});
}

Status depth_to_space(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  return depth_space(ctx, node, in, out, true);
}
Status space_to_depth(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  return depth_space(ctx, node, in, out, false);
}

}  // namespace

void register_layout_ops(OpRegistry& r) {
  r.add("Transpose", 1, transpose_op);
  r.add("Expand", 8, expand_op);
  r.add("Tile", 6, tile_op);
  r.add("Trilu", 14, trilu_op);
  r.add("DepthToSpace", 1, depth_to_space);
  r.add("SpaceToDepth", 1, space_to_depth);
}

}  // namespace hearth::onnx
