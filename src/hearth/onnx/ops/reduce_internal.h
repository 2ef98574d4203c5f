// The registration function of softmax.cpp, called from register_reduce_ops() (op_registry.h
// lists one function per area).
#pragma once

#include "hearth/onnx/op_registry.h"

namespace hearth::onnx {

void register_softmax_ops(OpRegistry& r);  // ops/softmax.cpp: Softmax LogSoftmax Hardmax TopK

}  // namespace hearth::onnx
