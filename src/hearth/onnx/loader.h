// Loading an ONNX model: protobuf parsing (Debian's libprotobuf, code generated from
// libonnx-dev's onnx.proto), then hearth's own checks, since every file is hostile:
//  - sizes, counts, dims and types are checked before anything is allocated;
//  - external data is refused, or confined to the model's own directory;
//  - Constant nodes become initializers;
//  - the graph is validated: every name defined once and before use (nodes are sorted
//    topologically), no cycles, graph outputs defined, attribute types consistent;
//  - opset imports of other domains are accepted as long as no node uses them.
// Whether each op is supported is the Session's check (session.h): it names the node.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "hearth/core/status.h"
#include "hearth/onnx/graph.h"

namespace hearth::onnx {

struct LoadOptions {
  // External tensor data (TensorProto.data_location = EXTERNAL) is read only from files inside
  // this directory (after resolving symlinks); empty refuses external data.
  std::string external_data_dir;
  size_t max_nodes = 1'000'000;     // per model, across all subgraphs
  int max_graph_depth = 8;          // If inside If inside ...
  size_t max_list_length = 1 << 20;  // elements of an ints/floats/strings attribute
};

// Loads PATH; external data may come from PATH's own directory.
Result<Model> load_model_file(const std::string& path);
Result<Model> parse_model(std::span<const std::byte> bytes, const LoadOptions& options);

}  // namespace hearth::onnx
