// ONNX operators: conv (op_registry.h). Not written yet.
#include "hearth/onnx/op_registry.h"

namespace hearth::onnx {

void register_conv_ops(OpRegistry& r) { (void)r; }

}  // namespace hearth::onnx
