// The ONNX model as hearth holds it once loaded and validated: no protobuf types beyond the
// loader. Constant nodes are already initializers, every node's inputs are defined before it
// (nodes are in a topological order), and subgraphs (If's branches) are Graphs of their own.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "hearth/onnx/tensor.h"

namespace hearth::onnx {

struct Graph;

struct Attribute {
  // One of: int, float, string, tensor, graph, ints, floats, strings.
  std::variant<int64_t, float, std::string, Tensor, std::shared_ptr<const Graph>, std::vector<int64_t>,
               std::vector<float>, std::vector<std::string>>
      value;
};

struct Node {
  std::string name;  // may be empty in the file; the loader names it "<op_type>#<index>"
  std::string op_type;
  std::string domain;                // "" for the default (ai.onnx) domain
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an omitted optional output
  std::map<std::string, Attribute, std::less<>> attrs;

  bool has(std::string_view attr) const { return attrs.find(attr) != attrs.end(); }
  // Typed getters: the value if present with that type, else `fallback` (a wrong type is
  // refused by the loader, which checks each attribute's declared type against its value).
  int64_t attr_int(std::string_view a, int64_t fallback) const;
  float attr_float(std::string_view a, float fallback) const;
  std::string attr_string(std::string_view a, std::string fallback) const;
  std::vector<int64_t> attr_ints(std::string_view a, std::vector<int64_t> fallback = {}) const;
  std::vector<float> attr_floats(std::string_view a, std::vector<float> fallback = {}) const;
  const Tensor* attr_tensor(std::string_view a) const;
  const Graph* attr_graph(std::string_view a) const;
  // "node 'conv1' (Conv)", for error messages.
  std::string describe() const;
};

// A declared graph input or output: its element type and dims; a dim < 0 is dynamic
// (symbolic or unknown), and an empty `dims` with has_shape false means the rank is unknown.
struct ValueInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  bool has_shape = false;
  std::vector<int64_t> dims;
  std::vector<std::string> dim_names;  // the symbolic names of dynamic dims ("" if none)
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;  // topologically sorted
  std::map<std::string, Tensor, std::less<>> initializers;
  std::vector<ValueInfo> inputs;   // excluding inputs that are initializers
  std::vector<ValueInfo> outputs;
  // Names this graph reads from enclosing scopes (subgraphs only), in first-use order.
  std::vector<std::string> outer_refs;
};

struct Model {
  int64_t ir_version = 0;
  int64_t opset = 0;  // the default domain's opset version
  std::map<std::string, int64_t, std::less<>> other_opsets;  // other domains imported (unused by any node)
  std::string producer;
  std::string producer_version;
  std::map<std::string, std::string, std::less<>> metadata;
  Graph graph;
};

}  // namespace hearth::onnx
