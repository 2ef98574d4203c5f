// Test helpers for the ONNX op tests: build a Node with attributes, run one op through the
// registry with an OpContext of the test's own, and make/read small tensors.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/onnx/op_registry.h"

namespace hearth::onnx::test {

inline Node make_node(std::string op, size_t n_in, size_t n_out = 1) {
  Node n;
  n.name = "n0";
  n.op_type = std::move(op);
  for (size_t i = 0; i < n_in; ++i) n.inputs.push_back("in" + std::to_string(i));
  for (size_t i = 0; i < n_out; ++i) n.outputs.push_back("out" + std::to_string(i));
  return n;
}

template <typename V>
Node& set_attr(Node& n, const std::string& name, V v) {
  n.attrs[name] = Attribute{std::move(v)};
  return n;
}

class OpRunner {
 public:
  explicit OpRunner(int threads = 2) : pool_(threads) {}

  // Runs node (its op_type at `opset`) on the inputs (null = omitted); the outputs or the error.
  Result<std::vector<Tensor>> run(const Node& node, int64_t opset, const std::vector<const Tensor*>& ins) {
    OpFn fn = op_registry().find(node.op_type, opset);
    if (!fn) return make_error(ErrorCode::kNotFound, "no op {} at opset {}", node.op_type, opset);
    OpContext ctx{pool_, buffers_, kernels::active_kernels(), opset};
    std::vector<Tensor> outs(node.outputs.size());
    HEARTH_TRY(fn(ctx, node, ins, outs));
    return outs;
  }
  Result<std::vector<Tensor>> run(const Node& node, int64_t opset, const std::vector<Tensor>& ins) {
    std::vector<const Tensor*> p;
    for (const auto& t : ins) p.push_back(t.empty_value() ? nullptr : &t);
    return run(node, opset, p);
  }
  // The first output, failing the test on an error.
  Tensor run1(const Node& node, int64_t opset, const std::vector<Tensor>& ins) {
    auto r = run(node, opset, ins);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (!r.ok()) return Tensor();
    return std::move(r.value()[0]);
  }
  ThreadPool& pool() { return pool_; }

 private:
  ThreadPool pool_;
  BufferPool buffers_;
};

template <typename T>
Tensor tensor(Shape shape, std::vector<T> values) {
  return Tensor::from_values<T>(std::move(shape), std::span<const T>(values)).value();
}
inline Tensor ftensor(Shape shape, std::vector<float> values) { return tensor<float>(std::move(shape), std::move(values)); }
inline Tensor itensor(Shape shape, std::vector<int64_t> values) { return tensor<int64_t>(std::move(shape), std::move(values)); }
inline Tensor btensor(Shape shape, std::vector<uint8_t> values) {
  Tensor t = Tensor::make(DType::kBool, std::move(shape)).value();
  for (size_t i = 0; i < values.size(); ++i) t.data<uint8_t>()[i] = values[i];
  return t;
}

template <typename T>
std::vector<T> vals(const Tensor& t) {
  auto s = t.values<T>();
  return {s.begin(), s.end()};
}

inline Tensor random_tensor(std::mt19937& rng, Shape shape, float lo = -2.0f, float hi = 2.0f) {
  Tensor t = Tensor::make(DType::kFloat, std::move(shape)).value();
  std::uniform_real_distribution<float> d(lo, hi);
  for (float& v : t.mutable_values<float>()) v = d(rng);
  return t;
}

// Expects an error whose message names the node and contains `part`.
inline void expect_error(const Result<std::vector<Tensor>>& r, const std::string& part) {
  ASSERT_FALSE(r.ok()) << "expected an error containing '" << part << "'";
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("'n0'"), std::string::npos) << m;
  EXPECT_NE(m.find(part), std::string::npos) << m;
}

}  // namespace hearth::onnx::test
