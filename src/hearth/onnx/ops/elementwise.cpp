// ONNX operators: elementwise (op_registry.h). Not written yet.
#include "hearth/onnx/op_registry.h"

namespace hearth::onnx {

void register_elementwise_ops(OpRegistry& r) { (void)r; }

}  // namespace hearth::onnx
