// The registration functions of the shape op files other than shape.cpp, which calls them
// from register_shape_ops() (op_registry.h lists one function per area).
#pragma once

#include "hearth/onnx/op_registry.h"

namespace hearth::onnx {

void register_slice_ops(OpRegistry& r);   // ops/slice.cpp: Slice Concat Split Gather GatherElements
void register_layout_ops(OpRegistry& r);  // ops/layout.cpp: Transpose Expand Tile Trilu DepthToSpace SpaceToDepth
void register_scatter_ops(OpRegistry& r);  // ops/scatter.cpp: GatherND ScatterND ScatterElements Scatter

}  // namespace hearth::onnx
