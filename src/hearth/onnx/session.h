// Session: hearth's own executor for a loaded ONNX model.
//  - create(): resolves every node's op for the model's opset (an unsupported op or opset is
//    an error naming the node), folds constants (nodes whose inputs are all initializers run
//    once, at creation), fuses Conv + BatchNormalization + activation where the weights are
//    constant, and plans each value's last use;
//  - run(): checks the feeds against the declared inputs (names, types, ranks, static dims),
//    runs the nodes in their topological order on the kernel table and thread pool, and hands
//    each intermediate buffer back to a pool after its last use, so later nodes reuse it.
// Shapes are computed as the graph runs, so dynamic dimensions need nothing special.
#pragma once

#include <map>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/onnx/graph.h"
#include "hearth/onnx/tensor.h"

namespace hearth::onnx {

struct SessionOptions {
  int n_threads = 0;  // 0: every core
  bool fold_constants = true;
  bool fuse = true;
  // No intermediate tensor may be larger than this (hostile graphs: ConstantOfShape, Expand,
  // Tile, Resize, ... can ask for anything).
  size_t max_tensor_bytes = size_t{4} << 30;
  // Time every node's run (Session::profile); off by default (a clock read per node).
  bool profile = false;
};

struct SessionStats {
  size_t nodes = 0;          // top-level nodes left to run after folding and fusion
  size_t folded = 0;         // nodes folded into constants at creation
  size_t fused = 0;          // BatchNormalization / activation nodes fused into a Conv
  size_t buffers_reused = 0; // allocations served from the pool (cumulative over runs)
};

// One node's share of the runs since the session was created (SessionOptions::profile).
struct NodeProfile {
  std::string node;     // the node's name (or its op and index when it has none)
  std::string op_type;  // after fusion: a Conv that absorbed a Relu is still "Conv"
  std::string inputs;   // its input shapes at the last run, e.g. "[1,24,64,64] [24,1,5,5] [24]"
  int64_t calls = 0;
  double seconds = 0;
};

class Session {
 public:
  static Result<Session> create(Model model, const SessionOptions& options = {});
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  const Model& model() const;
  const std::vector<ValueInfo>& inputs() const;
  const std::vector<ValueInfo>& outputs() const;

  // Runs the model; returns the graph's outputs in declaration order.
  Result<std::vector<Tensor>> run(const std::vector<std::pair<std::string, Tensor>>& feeds);

  SessionStats stats() const;
  // Every node that ran, in first-run order (subgraph nodes included); empty unless profiling.
  std::vector<NodeProfile> profile() const;

 private:
  struct Impl;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Loads PATH (load_model_file) and creates its session; errors carry the path.
Result<Session> open_session(const std::string& path, const SessionOptions& options = {});
// Parses a model held in memory (a store blob's verified mapping) and creates its session;
// errors carry `what`. External data is refused: there is no directory to confine it to.
Result<Session> open_session(std::span<const std::byte> bytes, const std::string& what,
                             const SessionOptions& options = {});

// Graph passes, exposed for tests (session.cpp applies them in create()).
// Folds Conv + BatchNormalization and a following Relu / Clip / LeakyRelu into the Conv (as
// the internal attributes hearth.activation / hearth.alpha / hearth.beta), and a Relu into the
// Add before it (hearth.activation = "relu"). Returns the count.
size_t fuse_conv_bn_activation(Graph& g, int64_t opset);

}  // namespace hearth::onnx
