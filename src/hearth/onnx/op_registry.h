// The ONNX operators hearth runs: one function per op_type, registered by each ops/*.cpp file
// through its register_*_ops() function (called explicitly by op_registry.cpp, so nothing
// depends on static-initialization order or on the linker keeping unreferenced objects).
// An op function gets its node (attributes), its inputs (null where an optional input is
// omitted) and fills its outputs; it sees the model's opset, to follow the op's version.
// Ops never write into their inputs' buffers: outputs come from ctx.alloc().
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/core/thread_pool.h"
#include "hearth/onnx/graph.h"
#include "hearth/onnx/tensor.h"

namespace hearth::kernels {
struct KernelTable;
}

namespace hearth::onnx {

// The newest default-domain opset hearth claims to follow.
inline constexpr int64_t kMaxOpset = 21;

struct OpContext {
  ThreadPool& pool;
  BufferPool& buffers;
  const kernels::KernelTable& kt;
  int64_t opset;

  Result<Tensor> alloc(DType dtype, Shape shape) { return buffers.make(dtype, std::move(shape)); }
  // For an op that writes every element of the output: no zero-fill (BufferPool::make_uninit).
  Result<Tensor> alloc_uninit(DType dtype, Shape shape) { return buffers.make_uninit(dtype, std::move(shape)); }
};

using OpInputs = std::span<const Tensor* const>;
// outputs has node.outputs.size() slots; an op fills every slot whose output name is non-empty.
using OpFn = Status (*)(OpContext& ctx, const Node& node, OpInputs inputs, std::vector<Tensor>& outputs);

struct OpDef {
  std::string_view op_type;
  int64_t min_opset;  // the first opset version whose semantics the function follows
  OpFn fn;
};

class OpRegistry {
 public:
  void add(std::string_view op_type, int64_t min_opset, OpFn fn) { defs_.push_back({op_type, min_opset, fn}); }
  // The function for op_type at `opset` (default domain), or null.
  OpFn find(std::string_view op_type, int64_t opset) const;
  std::vector<std::string_view> op_types() const;  // sorted, unique

 private:
  std::vector<OpDef> defs_;
};

const OpRegistry& op_registry();

// Input helpers for op functions: each returns an error naming the node when the input is
// missing or of the wrong type.
Status require_inputs(const Node& node, OpInputs in, size_t min_count, size_t max_count);
Status require_dtype(const Node& node, const Tensor& t, std::string_view what, std::initializer_list<DType> allowed);
// The values of a 1-D (or scalar) integer tensor, e.g. a shape or axes input.
Result<std::vector<int64_t>> int_list(const Node& node, const Tensor& t, std::string_view what);
// An axis in [-rank, rank) made non-negative, or an error naming the node.
Result<int64_t> normalize_axis(const Node& node, int64_t axis, int64_t rank);

// The registration functions of the ops/ files.
void register_elementwise_ops(OpRegistry& r);  // ops/elementwise.cpp
void register_shape_ops(OpRegistry& r);        // ops/shape.cpp
void register_reduce_ops(OpRegistry& r);       // ops/reduce.cpp: reductions, Softmax
void register_conv_ops(OpRegistry& r);         // ops/conv.cpp: Conv, ConvTranspose
void register_nn_ops(OpRegistry& r);           // ops/nn.cpp: pooling, normalization, Pad
void register_resize_ops(OpRegistry& r);       // ops/resize.cpp: Resize, Upsample
void register_matmul_ops(OpRegistry& r);       // ops/matmul.cpp: MatMul, Gemm
void register_rnn_ops(OpRegistry& r);          // ops/rnn.cpp: LSTM

}  // namespace hearth::onnx
