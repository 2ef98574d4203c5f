// ONNX operators: Cast and CastLike between every element type hearth holds (conversions in
// dtype_dispatch.h: float -> integer truncates toward zero and saturates, anything -> bool is
// "!= 0", float16/bfloat16 round to nearest even), and the ops that pass their input through:
// Identity and inference-mode Dropout (views sharing the input's buffer, no copy).
#include <cstring>

#include "hearth/onnx/ops/dtype_dispatch.h"
#include "hearth/onnx/ops/elementwise_internal.h"
#include "hearth/onnx/ops/op_common.h"

namespace hearth::onnx {
namespace {

Status cast_to(OpContext& ctx, const Node& node, const Tensor& x, DType to, std::vector<Tensor>& out) {
  if (to == x.dtype()) {  // nothing to convert: the same bytes
    out[0] = x;
    return ok_status();
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor o, alloc_out(ctx, node, to, x.shape()));
  bool known_to = true;
  const bool known_from = dispatch_all(x.dtype(), [&]<typename S>(Tag<S>) {
    known_to = dispatch_all(to, [&]<typename D>(Tag<D>) {
      const S* ps = x.data<S>();
      D* pd = o.data<D>();
      ctx.pool.parallel_for(x.numel(), 1 << 14, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) pd[i] = convert<D>(ps[i]);
      });
    });
  });
  if (!known_from) return unsupported_dtype(node, "input", x);
  if (!known_to) {
    return make_error(ErrorCode::kUnimplemented, "{}: casting to {} is not supported", node.describe(), dtype_name(to));
  }
  out[0] = std::move(o);
  return ok_status();
}

Status cast(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  if (!node.has("to")) return make_error(ErrorCode::kInvalidArgument, "{}: attribute 'to' is required", node.describe());
  const int64_t to_num = node.attr_int("to", 0);
  const DType to = dtype_from_onnx(to_num);
  if (to == DType::kUndefined) {
    return make_error(ErrorCode::kUnimplemented, "{}: cast to data type {} ({}) is not supported", node.describe(), to_num,
                      dtype_name(static_cast<DType>(to_num)));
  }
  return cast_to(ctx, node, *in[0], to, out);
}

Status cast_like(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  return cast_to(ctx, node, *in[0], in[1]->dtype(), out);
}

Status identity(OpContext&, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  out[0] = *in[0];
  return ok_status();
}

// Dropout at inference: the output is the input and the mask all true (bool from opset 10,
// the input's type before). Training mode (opset 12's input) is refused unless the ratio is 0,
// where it is the identity too.
Status dropout(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, ctx.opset >= 12 ? 3 : 1));
  const Tensor& x = *in[0];
  if (const Tensor* training = opt_input(in, 2); training && training->numel() > 0 && training->double_at(0) != 0) {
    const Tensor* ratio = opt_input(in, 1);
    const double r = ratio && ratio->numel() > 0 ? ratio->double_at(0) : 0.5;
    if (r != 0) {
      return make_error(ErrorCode::kUnimplemented, "{}: training-mode dropout (ratio {}) is not supported",
                        node.describe(), r);
    }
  }
  out[0] = x;
  if (out.size() > 1 && !node.outputs[1].empty()) {
    const DType mask_type = ctx.opset >= 10 ? DType::kBool : x.dtype();
    HEARTH_ASSIGN_OR_RETURN(Tensor m, alloc_out(ctx, node, mask_type, x.shape()));
    const bool known = dispatch_all(mask_type, [&]<typename T>(Tag<T>) {
      const T one = convert<T>(1.0);
      T* p = m.data<T>();
      for (int64_t i = 0; i < m.numel(); ++i) p[i] = one;
    });
    if (!known) return unsupported_dtype(node, "input", x);
    out[1] = std::move(m);
  }
  return ok_status();
}

}  // namespace

void register_cast_ops(OpRegistry& r) {
  r.add("Cast", 6, cast);
  r.add("CastLike", 15, cast_like);
  r.add("Identity", 1, identity);
  r.add("Dropout", 1, dropout);
}

}  // namespace hearth::onnx
