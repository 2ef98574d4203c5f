// The registration functions of the elementwise op files other than elementwise.cpp, which
// calls them from register_elementwise_ops() (op_registry.h lists one function per area).
#pragma once

#include "hearth/onnx/op_registry.h"

namespace hearth::onnx {

void register_unary_ops(OpRegistry& r);  // ops/unary.cpp: math, activations, Clip, Not
void register_cast_ops(OpRegistry& r);   // ops/cast.cpp: Cast, CastLike, Identity, Dropout

}  // namespace hearth::onnx
