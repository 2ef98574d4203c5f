// ONNX operators: matmul (op_registry.h). Not written yet.
#include "hearth/onnx/op_registry.h"

namespace hearth::onnx {

void register_matmul_ops(OpRegistry& r) { (void)r; }

}  // namespace hearth::onnx
