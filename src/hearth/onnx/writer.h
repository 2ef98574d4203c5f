// Writing ONNX models hearth makes itself (the sensor autoencoder of `hearth anomaly train`):
// a Model (graph.h) serialized as an ONNX protobuf, IR version 8, the default-domain opset of
// the Model. Only what hearth's own graphs use: nodes with int/float/ints/floats/string
// attributes, float/int64 initializers, tensor inputs and outputs with shapes (a negative dim
// is written as the symbolic dim named in ValueInfo::dim_names, else "N"), metadata.
#pragma once

#include <string>

#include "hearth/core/status.h"
#include "hearth/onnx/graph.h"

namespace hearth::onnx {

Result<std::string> serialize_model(const Model& m);
// serialize_model, written atomically.
Status save_model(const Model& m, const std::string& path);

}  // namespace hearth::onnx
