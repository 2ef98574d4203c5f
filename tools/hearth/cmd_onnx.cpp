// `hearth onnx run MODEL.onnx --input NAME=FILE.npy ... [--output-dir DIR] [--threads N] [--json]`:
// runs an ONNX model on hearth's own executor with inputs read from .npy files, and writes each
// output as DIR/<output name>.npy (the name with every character outside [A-Za-z0-9._-] made
// '_'; atomic writes). Prints each output's name, dtype and shape, or one JSON object.
// `hearth onnx info MODEL.onnx [--json]`: the model's inputs and outputs (dims, with the names
// of symbolic ones), opset, producer, metadata, initializers and op counts.
// The loading, checking and running are the onnx library's; this file parses flags and prints.
// It is the one file of the command that sees nlohmann-json; its exceptions are caught here.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "command.h"
#include "model_arg.h"
#include "hearth/onnx/graph.h"
#include "hearth/onnx/loader.h"
#include "hearth/onnx/npy.h"
#include "hearth/onnx/session.h"

namespace hearth::cli {
namespace {

using Json = nlohmann::ordered_json;
using onnx::DType;
using onnx::Tensor;
using onnx::ValueInfo;

struct RunOptions {
  std::string model;
  bool allow_unsigned = false;
  std::vector<std::string> inputs;  // NAME=FILE.npy
  std::string output_dir;
  int threads = 0;
  bool json = false;
};

struct InfoOptions {
  std::string model;
  bool json = false;
};

// A file name for an output: characters outside [A-Za-z0-9._-] become '_', a leading '.' too
// (no hidden files, no "..") and names that collide after that get a numeric suffix.
std::string file_stem(const std::string& name, std::set<std::string>& used) {
  std::string s;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    s += ok ? c : '_';
  }
  if (s.empty()) s = "output";
  if (s[0] == '.') s[0] = '_';
  if (s.size() > 200) s.resize(200);
  std::string stem = s;
  for (int i = 2; !used.insert(stem).second; ++i) stem = fmt::format("{}_{}", s, i);
  return stem;
}

// "[1,3,?,?]" with symbolic names where the model gives them: "[batch,3,height,width]".
std::string dims_string(const ValueInfo& v) {
  if (!v.has_shape) return "(rank unknown)";
  std::string s = "[";
  for (size_t i = 0; i < v.dims.size(); ++i) {
    if (i) s += ',';
    if (v.dims[i] >= 0) {
      s += std::to_string(v.dims[i]);
    } else {
      s += (i < v.dim_names.size() && !v.dim_names[i].empty()) ? v.dim_names[i] : "?";
    }
  }
  return s + "]";
}

Json dims_json(const ValueInfo& v) {
  if (!v.has_shape) return nullptr;
  Json a = Json::array();
  for (size_t i = 0; i < v.dims.size(); ++i) {
    if (v.dims[i] >= 0) {
      a.push_back(v.dims[i]);
    } else {
      a.push_back((i < v.dim_names.size() && !v.dim_names[i].empty()) ? Json(v.dim_names[i]) : Json(nullptr));
    }
  }
  return a;
}

Json value_infos_json(const std::vector<ValueInfo>& vs) {
  Json a = Json::array();
  for (const auto& v : vs) a.push_back({{"name", v.name}, {"dtype", onnx::dtype_name(v.dtype)}, {"dims", dims_json(v)}});
  return a;
}

// Op counts over the graph and its subgraphs (If branches), by op type.
void count_ops(const onnx::Graph& g, std::map<std::string, size_t>& counts, size_t& subgraph_nodes, bool top) {
  for (const auto& n : g.nodes) {
    ++counts[n.domain.empty() ? n.op_type : n.domain + "." + n.op_type];
    if (!top) ++subgraph_nodes;
    for (const auto& [key, attr] : n.attrs) {
      if (const auto* sub = std::get_if<std::shared_ptr<const onnx::Graph>>(&attr.value); sub && *sub) {
        count_ops(**sub, counts, subgraph_nodes, false);
      }
    }
  }
}

Status run_info(const InfoOptions& opt) {
  HEARTH_ASSIGN_OR_RETURN(onnx::Model m, onnx::load_model_file(opt.model));
  std::map<std::string, size_t> ops;
  size_t subgraph_nodes = 0;
  count_ops(m.graph, ops, subgraph_nodes, true);
  size_t init_bytes = 0;
  for (const auto& [name, t] : m.graph.initializers) init_bytes += t.nbytes();
  try {
    if (opt.json) {
      Json j;
      j["model"] = opt.model;
      j["ir_version"] = m.ir_version;
      j["opset"] = m.opset;
      Json other = Json::object();
      for (const auto& [domain, v] : m.other_opsets) other[domain] = v;
      j["other_opsets"] = std::move(other);
      j["producer"] = m.producer;
      j["producer_version"] = m.producer_version;
      Json meta = Json::object();
      for (const auto& [k, v] : m.metadata) meta[k] = v;
      j["metadata"] = std::move(meta);
      j["inputs"] = value_infos_json(m.graph.inputs);
      j["outputs"] = value_infos_json(m.graph.outputs);
      j["nodes"] = m.graph.nodes.size();
      j["subgraph_nodes"] = subgraph_nodes;
      j["initializers"] = m.graph.initializers.size();
      j["initializer_bytes"] = init_bytes;
      Json o = Json::object();
      for (const auto& [op, n] : ops) o[op] = n;
      j["ops"] = std::move(o);
      std::printf("%s\n", j.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
      return ok_status();
    }
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, "{}: cannot render: {}", opt.model, e.what());
  }
  std::printf("model: %s\n", opt.model.c_str());
  std::printf("ir version: %lld, opset: %lld", static_cast<long long>(m.ir_version), static_cast<long long>(m.opset));
  for (const auto& [domain, v] : m.other_opsets) std::printf(", %s: %lld", domain.c_str(), static_cast<long long>(v));
  std::printf("\n");
  if (!m.producer.empty()) std::printf("producer: %s %s\n", m.producer.c_str(), m.producer_version.c_str());
  for (const auto& [k, v] : m.metadata) std::printf("metadata: %s = %s\n", k.c_str(), v.c_str());
  for (const auto& v : m.graph.inputs) {
    std::printf("input:  %s  %s %s\n", v.name.c_str(), std::string(onnx::dtype_name(v.dtype)).c_str(), dims_string(v).c_str());
  }
  for (const auto& v : m.graph.outputs) {
    std::printf("output: %s  %s %s\n", v.name.c_str(), std::string(onnx::dtype_name(v.dtype)).c_str(), dims_string(v).c_str());
  }
  std::printf("nodes: %zu (+%zu in subgraphs), initializers: %zu (%.2f MiB)\n", m.graph.nodes.size(), subgraph_nodes,
              m.graph.initializers.size(), static_cast<double>(init_bytes) / (1024.0 * 1024.0));
  std::printf("ops:");
  for (const auto& [op, n] : ops) std::printf(" %s %zu", op.c_str(), n);
  std::printf("\n");
  return ok_status();
}

Status run_model(const RunOptions& opt) {
  std::vector<std::pair<std::string, Tensor>> feeds;
  for (const std::string& spec : opt.inputs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return make_error(ErrorCode::kInvalidArgument, "--input '{}': expected NAME=FILE.npy", spec);
    }
    HEARTH_ASSIGN_OR_RETURN(Tensor t, onnx::read_npy_file(spec.substr(eq + 1)));
    feeds.emplace_back(spec.substr(0, eq), std::move(t));
  }
  onnx::SessionOptions so;
  so.n_threads = opt.threads;
  HEARTH_ASSIGN_OR_RETURN(onnx::Session session, open_onnx_model(opt.model, "onnx run", opt.allow_unsigned, so));
  const auto t0 = std::chrono::steady_clock::now();
  auto outputs = session.run(feeds);
  const auto t1 = std::chrono::steady_clock::now();
  if (!outputs.ok()) return outputs.status().with_context(opt.model);
  const auto& infos = session.outputs();
  if (!opt.output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opt.output_dir, ec);
    if (ec) return make_error(ErrorCode::kIo, "--output-dir {}: {}", opt.output_dir, ec.message());
  }
  std::set<std::string> used;
  std::vector<std::string> files(outputs->size());
  for (size_t i = 0; i < outputs->size(); ++i) {
    if (opt.output_dir.empty()) continue;
    files[i] = (std::filesystem::path(opt.output_dir) / (file_stem(infos[i].name, used) + ".npy")).string();
    HEARTH_TRY(onnx::write_npy_file(files[i], (*outputs)[i]));
  }
  const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  try {
    if (opt.json) {
      Json j;
      j["model"] = opt.model;
      Json outs = Json::array();
      for (size_t i = 0; i < outputs->size(); ++i) {
        const Tensor& t = (*outputs)[i];
        outs.push_back({{"name", infos[i].name},
                        {"dtype", onnx::dtype_name(t.dtype())},
                        {"shape", t.shape()},
                        {"file", files[i].empty() ? Json(nullptr) : Json(files[i])}});
      }
      j["outputs"] = std::move(outs);
      j["run_ms"] = ms;
      std::printf("%s\n", j.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
      return ok_status();
    }
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, "{}: cannot render: {}", opt.model, e.what());
  }
  for (size_t i = 0; i < outputs->size(); ++i) {
    const Tensor& t = (*outputs)[i];
    std::printf("%s  %s %s%s%s\n", infos[i].name.c_str(), std::string(onnx::dtype_name(t.dtype())).c_str(),
                onnx::shape_string(t.shape()).c_str(), files[i].empty() ? "" : "  -> ", files[i].c_str());
  }
  std::printf("run: %.1f ms\n", ms);
  return ok_status();
}

void report(const Status& s) { set_exit_code(s.ok() ? 0 : report_error(s)); }

void setup(CLI::App& app) {
  auto* onnx_cmd = app.add_subcommand("onnx", "run or describe an ONNX model (vision, audio, sensor models)");
  onnx_cmd->require_subcommand(1);
  {
    auto opt = std::make_shared<RunOptions>();
    auto* sub = onnx_cmd->add_subcommand("run", "run an ONNX model on .npy inputs and write its outputs as .npy");
    sub->add_option("model", opt->model, "ONNX model: a file, or a store reference (verified against the trust policy)")->required();
    sub->add_flag("--allow-unsigned", opt->allow_unsigned, "accept an unsigned store model (never excuses tampering)");
    sub->add_option("-i,--input", opt->inputs, "NAME=FILE.npy for each model input (repeat the flag)");
    sub->add_option("-o,--output-dir", opt->output_dir,
                    "write each output as DIR/<output name>.npy (created if missing; without it nothing is written)");
    sub->add_option("-t,--threads", opt->threads, "threads (default: every core)")->check(CLI::Range(0, 1024));
    sub->add_flag("--json", opt->json, "print one JSON object");
    sub->callback([opt] { report(run_model(*opt)); });
  }
  {
    auto opt = std::make_shared<InfoOptions>();
    auto* sub = onnx_cmd->add_subcommand("info", "show an ONNX model's inputs, outputs, opset, metadata and op counts");
    sub->add_option("model", opt->model, "ONNX model file")->required();
    sub->add_flag("--json", opt->json, "print one JSON object");
    sub->callback([opt] { report(run_info(*opt)); });
  }
}

CommandRegistrar reg(100, setup);

}  // namespace
}  // namespace hearth::cli
