// ONNX operators: reduce (op_registry.h). Not written yet.
#include "hearth/onnx/op_registry.h"

namespace hearth::onnx {

void register_reduce_ops(OpRegistry& r) { (void)r; }

}  // namespace hearth::onnx
