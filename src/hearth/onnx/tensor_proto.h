// ONNX TensorProto → Tensor: the one conversion of a serialized tensor, used by the loader
// (initializers, Constant values, tensor attributes) and for standalone .pb tensor files such
// as the ONNX backend tests' test_data_set_*/input_*.pb and output_*.pb. Every count and size
// is checked against the declared shape before anything is copied; external data is read only
// from files inside a given directory.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "hearth/core/status.h"
#include "hearth/onnx/tensor.h"

namespace onnx {
class TensorProto;  // onnx.pb.h, generated: seen only by the module's .cpp files
}

namespace hearth::onnx {

// Parses one serialized TensorProto. External data is refused. If `name` is given, it receives
// the proto's name field ("" if none).
Result<Tensor> parse_tensor_proto(std::span<const std::byte> bytes, std::string* name = nullptr);
// The same for a file (errors name the path).
Result<Tensor> load_tensor_proto_file(const std::string& path, std::string* name = nullptr);

// The conversion of an already parsed proto; `what` names it in errors ("initializer", ...).
// External data is read from files inside external_data_dir; empty refuses external data.
Result<Tensor> tensor_from_proto(const ::onnx::TensorProto& tp, std::string_view what,
                                 const std::string& external_data_dir);

}  // namespace hearth::onnx
