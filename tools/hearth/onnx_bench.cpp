#include "onnx_bench.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "hearth/core/process_stats.h"
#include "hearth/onnx/loader.h"
#include "hearth/onnx/npy.h"
#include "hearth/onnx/session.h"

namespace hearth::cli {
namespace {

using onnx::DType;
using onnx::Tensor;

Result<onnx::Shape> parse_dims(const std::string& s, const std::string& flag) {
  onnx::Shape shape;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t x = s.find('x', start);
    const std::string part = s.substr(start, x == std::string::npos ? std::string::npos : x - start);
    if (part.empty() || part.size() > 12 || !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return make_error(ErrorCode::kInvalidArgument, "{}: '{}' is not a shape like 1x3x640x640", flag, s);
    }
    shape.push_back(std::stoll(part));
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return shape;
}

// Seeded values in [-1, 1) for floats, 0 for integers and bools.
Result<Tensor> drawn(DType t, const onnx::Shape& shape, uint32_t seed) {
  HEARTH_ASSIGN_OR_RETURN(Tensor x, Tensor::make(t, shape));
  if (t == DType::kFloat) {
    uint32_t a = seed;
    for (float& v : x.mutable_values<float>()) {
      a = a * 1664525u + 1013904223u;
      v = static_cast<float>(a >> 8) / 8388608.0f - 1.0f;
    }
  }
  return x;
}

struct Timing {
  double mean_ms, median_ms, min_ms;
};

Result<Timing> time_runs(onnx::Session& s, const std::vector<std::pair<std::string, Tensor>>& feeds, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) HEARTH_TRY(s.run(feeds).status());
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    HEARTH_TRY(s.run(feeds).status());
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double v : ms) sum += v;
  return Timing{sum / static_cast<double>(ms.size()), sorted[sorted.size() / 2], sorted.front()};
}

// The profiled runs of one thread count: per op type and the `top` slowest nodes, per inference.
Result<nlohmann::ordered_json> profile_runs(const OnnxBenchOptions& o, int threads,
                                            const std::vector<std::pair<std::string, Tensor>>& feeds, size_t top) {
  HEARTH_ASSIGN_OR_RETURN(onnx::Model m, onnx::load_model_file(o.model));
  onnx::SessionOptions so;
  so.n_threads = threads;
  so.profile = true;
  HEARTH_ASSIGN_OR_RETURN(onnx::Session s, onnx::Session::create(std::move(m), so));
  for (int i = 0; i < o.warmup; ++i) HEARTH_TRY(s.run(feeds).status());
  const std::vector<onnx::NodeProfile> before = s.profile();
  for (int i = 0; i < o.reps; ++i) HEARTH_TRY(s.run(feeds).status());
  std::vector<onnx::NodeProfile> nodes = s.profile();
  for (size_t i = 0; i < nodes.size(); ++i) {  // the timed runs only (not the warm-up)
    if (i < before.size()) {
      nodes[i].seconds -= before[i].seconds;
      nodes[i].calls -= before[i].calls;
    }
  }
  const double runs = o.reps;
  double total = 0;
  std::map<std::string, std::pair<double, int64_t>> by_op;  // op -> (seconds, nodes)
  for (const auto& n : nodes) {
    total += n.seconds;
    auto& [sec, count] = by_op[n.op_type];
    sec += n.seconds;
    ++count;
  }
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> ops(by_op.begin(), by_op.end());
  std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::sort(nodes.begin(), nodes.end(), [](const auto& a, const auto& b) { return a.seconds > b.seconds; });
  if (nodes.size() > top) nodes.resize(top);
  nlohmann::ordered_json j;
  j["threads"] = threads;
  j["node_ms"] = total * 1000.0 / runs;
  j["ops"] = nlohmann::ordered_json::array();
  for (const auto& [op, v] : ops) {
    j["ops"].push_back({{"op", op}, {"nodes", v.second}, {"ms", v.first * 1000.0 / runs}, {"share", total > 0 ? v.first / total : 0.0}});
  }
  j["slowest"] = nlohmann::ordered_json::array();
  for (const auto& n : nodes) {
    j["slowest"].push_back({{"node", n.node}, {"op", n.op_type}, {"inputs", n.inputs}, {"ms", n.seconds * 1000.0 / runs},
                            {"share", total > 0 ? n.seconds / total : 0.0}});
  }
  return j;
}

void print_profile(const nlohmann::ordered_json& p) {
  std::printf("  profile, threads %d: %.3f ms per inference in the nodes\n", p["threads"].get<int>(), p["node_ms"].get<double>());
  for (const auto& op : p["ops"]) {
    std::printf("    %-22s %4lld nodes %9.3f ms %5.1f %%\n", op["op"].get<std::string>().c_str(),
                static_cast<long long>(op["nodes"].get<int64_t>()), op["ms"].get<double>(), 100.0 * op["share"].get<double>());
  }
  std::printf("    slowest nodes:\n");
  for (const auto& n : p["slowest"]) {
    std::printf("    %9.3f ms %5.1f %%  %s %s  %s\n", n["ms"].get<double>(), 100.0 * n["share"].get<double>(),
                n["op"].get<std::string>().c_str(), n["node"].get<std::string>().c_str(), n["inputs"].get<std::string>().c_str());
  }
}

}  // namespace

Status run_onnx_bench(const OnnxBenchOptions& o) {
  if (o.reps < 1 || o.warmup < 0) return make_error(ErrorCode::kInvalidArgument, "--reps must be at least 1");
  HEARTH_ASSIGN_OR_RETURN(onnx::Model probe, onnx::load_model_file(o.model));
  std::map<std::string, Tensor> given;
  for (const auto& a : o.inputs) {
    const auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) return make_error(ErrorCode::kInvalidArgument, "--input '{}': expected NAME=FILE.npy", a);
    HEARTH_ASSIGN_OR_RETURN(Tensor t, onnx::read_npy_file(a.substr(eq + 1)));
    given[a.substr(0, eq)] = std::move(t);
  }
  std::map<std::string, onnx::Shape> shapes;
  for (const auto& a : o.shapes) {
    const auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) return make_error(ErrorCode::kInvalidArgument, "--shape '{}': expected NAME=1x3x640x640", a);
    HEARTH_ASSIGN_OR_RETURN(shapes[a.substr(0, eq)], parse_dims(a.substr(eq + 1), "--shape"));
  }
  std::vector<std::pair<std::string, Tensor>> feeds;
  uint32_t seed = 1;
  for (const auto& in : probe.graph.inputs) {
    if (auto g = given.find(in.name); g != given.end()) {
      feeds.emplace_back(in.name, g->second);
      continue;
    }
    onnx::Shape shape;
    if (auto s = shapes.find(in.name); s != shapes.end()) {
      shape = s->second;
    } else {
      for (size_t d = 0; d < in.dims.size(); ++d) {
        if (in.dims[d] < 0) {
          return make_error(ErrorCode::kInvalidArgument, "input '{}' has a dynamic dimension {}: give --shape {}=... or --input {}=FILE.npy", in.name,
                            in.dim_names[d].empty() ? std::to_string(d) : in.dim_names[d], in.name, in.name);
        }
        shape.push_back(in.dims[d]);
      }
    }
    HEARTH_ASSIGN_OR_RETURN(Tensor t, drawn(in.dtype, shape, seed++));
    feeds.emplace_back(in.name, std::move(t));
  }
  const int n = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<int> counts{1};
  if (n > 1) counts.push_back(n);
  nlohmann::ordered_json j;
  j["model"] = o.model;
  j["inputs"] = nlohmann::ordered_json::object();
  for (const auto& [name, t] : feeds) j["inputs"][name] = onnx::shape_string(t.shape());
  j["results"] = nlohmann::ordered_json::array();
  if (!o.json) std::printf("%s\n", o.model.c_str());
  for (int threads : counts) {
    HEARTH_ASSIGN_OR_RETURN(onnx::Model m, onnx::load_model_file(o.model));
    onnx::SessionOptions so;
    so.n_threads = threads;
    HEARTH_ASSIGN_OR_RETURN(onnx::Session s, onnx::Session::create(std::move(m), so));
    HEARTH_ASSIGN_OR_RETURN(Timing t, time_runs(s, feeds, o.warmup, o.reps));
    const double per_s = 1000.0 / t.mean_ms;
    if (o.json) {
      j["results"].push_back({{"threads", threads}, {"mean_ms", t.mean_ms}, {"median_ms", t.median_ms}, {"min_ms", t.min_ms}, {"per_second", per_s}});
    } else {
      std::printf("  threads %d: %.3f ms mean, %.3f ms median, %.3f ms min, %.1f inferences/s (%d runs)\n", threads, t.mean_ms, t.median_ms,
                  t.min_ms, per_s, o.reps);
    }
  }
  if (o.profile) {
    j["profile"] = nlohmann::ordered_json::array();
    for (int threads : counts) {
      HEARTH_ASSIGN_OR_RETURN(nlohmann::ordered_json p, profile_runs(o, threads, feeds, 15));
      if (!o.json) print_profile(p);
      j["profile"].push_back(std::move(p));
    }
  }
  j["peak_rss_mib"] = static_cast<double>(peak_rss_bytes()) / 1048576.0;
  if (o.json) std::printf("%s\n", j.dump(2).c_str());
  return ok_status();
}

}  // namespace hearth::cli
