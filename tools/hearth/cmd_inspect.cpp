// `hearth inspect MODEL [--json]`: a GGUF file's metadata and tensor table, as text or one JSON
// object. Long arrays are abbreviated (type, count, first elements). MODEL resolves as for
// `hearth run` (file path, $HEARTH_MODEL, config default, or a store reference verified against
// the trust policy); for a store reference the manifest digest, the signatures and the
// provenance are shown too. This is the one file of the command that sees nlohmann-json; its
// exceptions are caught here.
#include <fmt/format.h>

#include <cstdarg>
#include <cstring>
#include <map>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "command.h"
#include "hearth/gguf/gguf.h"
#include "hearth/onnx/loader.h"
#include "hearth/sandbox/sandbox.h"
#include "hearth/store/reference.h"
#include "hearth/store/store.h"
#include "hearth/trust/model_description.h"
#include "hearth/trust/trust_policy.h"
#include "model_arg.h"

namespace hearth::cli {
namespace {

using Json = nlohmann::ordered_json;

constexpr uint64_t kArrayHead = 8;     // elements shown of a long array
constexpr size_t kTextStringMax = 96;  // characters shown of a long string in text mode

struct InspectOptions {
  std::string model;
  bool json = false;
  bool allow_unsigned = false;
};

// The store side of a store reference: what was verified, and the provenance (signatures with
// their status, layers, attestations) as describe_model reports it.
struct StoreInfo {
  ResolvedModelArg arg;
  trust::ModelProvenance provenance;
};

Result<trust::ModelProvenance> describe(const ResolvedModelArg& arg) {
  // Described by the digest that was verified, so a concurrent re-tag cannot swap the model.
  HEARTH_ASSIGN_OR_RETURN(store::Reference ref, store::parse_reference(arg.reference));
  HEARTH_ASSIGN_OR_RETURN(store::Digest digest, store::Digest::parse(arg.manifest_digest));
  ref.digest = digest;
  const std::string home = store::default_home();
  HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(home));
  HEARTH_ASSIGN_OR_RETURN(trust::TrustPolicy policy, trust::load_policy(trust::default_policy_path(home)));
  HEARTH_ASSIGN_OR_RETURN(trust::ModelProvenance p, trust::describe_model(st, ref, policy));
  p.reference = arg.reference;
  return p;
}

Json store_json(const StoreInfo& s) {
  const trust::ModelProvenance& p = s.provenance;
  Json sigs = Json::array();
  for (const auto& g : p.signatures) {
    Json e;
    e["key_id"] = g.key_id;
    e["publisher"] = g.publisher.empty() ? Json(nullptr) : Json(g.publisher);
    e["algorithm"] = g.algorithm.empty() ? Json(nullptr) : Json(g.algorithm);
    e["signed_name"] = g.signed_name.empty() ? Json(nullptr) : Json(g.signed_name);
    e["signed_version"] = g.signed_version;
    e["verified"] = g.status == "trusted";
    e["status"] = g.status;
    e["manifest"] = g.manifest.str();
    sigs.push_back(std::move(e));
  }
  Json attestations = Json::array();
  for (const auto& a : p.attestations) {
    Json e;
    e["predicate_type"] = a.predicate_type;
    e["key_id"] = a.key_id;
    e["publisher"] = a.publisher.empty() ? Json(nullptr) : Json(a.publisher);
    e["verified"] = a.status == "verified";
    e["status"] = a.status;
    e["manifest"] = a.manifest.str();
    if (!a.statement_json.empty()) e["statement"] = Json::parse(a.statement_json, nullptr, false);
    attestations.push_back(std::move(e));
  }
  Json layers = Json::array();
  for (const auto& l : p.parsed.layers) {
    auto title = l.annotations.find(std::string(store::kAnnotationTitle));
    layers.push_back({{"title", title != l.annotations.end() ? Json(title->second) : Json(nullptr)},
                      {"digest", l.digest.str()},
                      {"size", l.size},
                      {"media_type", l.media_type}});
  }
  Json prov;
  prov["reference"] = p.reference;
  prov["artifact_type"] = p.parsed.artifact_type;
  prov["version"] = p.version;
  prov["signed"] = s.arg.is_signed;
  if (!p.facts.architecture.empty()) {
    prov["model"] = {{"architecture", p.facts.architecture},
                     {"parameters", p.facts.parameters},
                     {"quantization", p.facts.quantization}};
  }
  if (const auto& a = p.facts.adapter) {
    prov["adapter"] = {{"type", a->type}, {"rank", a->rank}, {"alpha", a->alpha}, {"targets", a->targets}};
  }
  prov["layers"] = std::move(layers);
  prov["attestations"] = std::move(attestations);
  prov["text"] = trust::format_provenance(p);
  Json out;
  out["reference"] = s.arg.reference;
  out["manifest_digest"] = s.arg.manifest_digest;
  out["signatures"] = std::move(sigs);
  out["provenance"] = std::move(prov);
  return out;
}

// Text-mode rendering of a string: quoted, control characters escaped, long ones cut.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    if (out.size() > kTextStringMax) {
      out += fmt::format("...\" ({} bytes)", s.size());
      return out;
    }
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// A float32 as the double with the same shortest decimal form (1e-05, not 9.99999974e-06).
Json float_json(float f) {
  if (!std::isfinite(f)) return f;  // dumped as null
  return std::strtod(fmt::format("{}", f).c_str(), nullptr);
}

// Element i of a numeric array, as JSON.
Json numeric_element(const gguf::ArrayValue& a, uint64_t i) {
  using gguf::ValueType;
  switch (a.elem_type) {
    case ValueType::UINT8: return gguf::array_element<uint8_t>(a, i);
    case ValueType::INT8: return gguf::array_element<int8_t>(a, i);
    case ValueType::UINT16: return gguf::array_element<uint16_t>(a, i);
    case ValueType::INT16: return gguf::array_element<int16_t>(a, i);
    case ValueType::UINT32: return gguf::array_element<uint32_t>(a, i);
    case ValueType::INT32: return gguf::array_element<int32_t>(a, i);
    case ValueType::FLOAT32: return float_json(gguf::array_element<float>(a, i));
    case ValueType::BOOL: return gguf::array_element<uint8_t>(a, i) != 0;
    case ValueType::UINT64: return gguf::array_element<uint64_t>(a, i);
    case ValueType::INT64: return gguf::array_element<int64_t>(a, i);
    case ValueType::FLOAT64: return gguf::array_element<double>(a, i);
    case ValueType::STRING:
    case ValueType::ARRAY: break;
  }
  return nullptr;
}

// The first elements of an array (nested arrays are not decoded: empty).
Json array_head(const gguf::ArrayValue& a) {
  Json head = Json::array();
  if (a.elem_type == gguf::ValueType::ARRAY) return head;
  uint64_t n = std::min(a.count, kArrayHead);
  for (uint64_t i = 0; i < n; ++i) {
    if (a.elem_type == gguf::ValueType::STRING) {
      head.push_back(std::string(a.strings[i]));
    } else {
      head.push_back(numeric_element(a, i));
    }
  }
  return head;
}

Json scalar_json(const gguf::Value& v) {
  return std::visit(
      [](const auto& x) -> Json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, gguf::ArrayValue>) {
          return nullptr;
        } else if constexpr (std::is_same_v<T, std::string_view>) {
          return std::string(x);
        } else if constexpr (std::is_same_v<T, float>) {
          return float_json(x);
        } else {
          return x;
        }
      },
      v);
}

Json shape_json(const gguf::TensorInfo& t) {
  Json shape = Json::array();
  for (uint32_t d = 0; d < t.n_dims; ++d) shape.push_back(t.ne[d]);
  return shape;
}

std::string shape_text(const gguf::TensorInfo& t) {
  std::string s = "[";
  for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
  return s + "]";
}

Json to_json(const MappedGguf& model) {
  const gguf::GgufFile& f = model.file;
  Json out;
  out["file"] = model.map->path();
  out["file_size"] = model.map->size();
  out["version"] = f.version();
  out["alignment"] = f.alignment();
  out["data_offset"] = f.data_offset();
  Json meta = Json::object();
  for (const auto& kv : f.metadata()) {
    Json e;
    e["type"] = std::string(gguf::value_type_name(kv.type));
    if (kv.type == gguf::ValueType::ARRAY) {
      const auto& a = std::get<gguf::ArrayValue>(kv.value);
      e["elem_type"] = std::string(gguf::value_type_name(a.elem_type));
      e["count"] = a.count;
      e["head"] = array_head(a);
    } else {
      e["value"] = scalar_json(kv.value);
    }
    meta[std::string(kv.key)] = std::move(e);
  }
  out["metadata"] = std::move(meta);
  Json tensors = Json::array();
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  for (const auto& t : f.tensors()) {
    tensors.push_back({{"name", std::string(t.name)},
                       {"type", std::string(type_name(t.type))},
                       {"shape", shape_json(t)},
                       {"n_elements", t.n_elements},
                       {"bytes", t.n_bytes},
                       {"offset", t.offset}});
    n_elements += t.n_elements;
    n_bytes += t.n_bytes;
  }
  out["tensors"] = std::move(tensors);
  out["totals"] = {
      {"n_kv", f.metadata().size()}, {"n_tensors", f.tensors().size()}, {"n_elements", n_elements}, {"bytes", n_bytes}};
  return out;
}

std::string value_text(const gguf::KeyValue& kv) {
  if (kv.type == gguf::ValueType::STRING) return quoted(std::get<std::string_view>(kv.value));
  if (kv.type != gguf::ValueType::ARRAY) return scalar_json(kv.value).dump();
  const auto& a = std::get<gguf::ArrayValue>(kv.value);
  std::string s = fmt::format("[{} x {}]", gguf::value_type_name(a.elem_type), a.count);
  if (a.elem_type == gguf::ValueType::ARRAY || a.count == 0) return s;
  s += " [";
  uint64_t n = std::min(a.count, kArrayHead);
  for (uint64_t i = 0; i < n; ++i) {
    if (i) s += ", ";
    s += a.elem_type == gguf::ValueType::STRING ? quoted(a.strings[i]) : numeric_element(a, i).dump();
  }
  return s + (a.count > n ? ", ...]" : "]");
}

// printf into a string (the rendering runs in the parser sandbox, which may not write to stdout).
__attribute__((format(printf, 2, 3))) void appendf(std::string& out, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  char small[512];
  va_list copy;
  va_copy(copy, ap);
  const int n = std::vsnprintf(small, sizeof small, format, copy);
  va_end(copy);
  if (n > 0 && static_cast<size_t>(n) < sizeof small) {
    out.append(small, static_cast<size_t>(n));
  } else if (n > 0) {
    std::string big(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(big.data(), big.size(), format, ap);
    out.append(big.data(), static_cast<size_t>(n));
  }
  va_end(ap);
}

std::string render_text(const MappedGguf& model) {
  std::string out;
  const gguf::GgufFile& f = model.file;
  appendf(out, "%s: gguf v%u, %zu bytes, alignment %u, data at offset %llu\n", model.map->path().c_str(), f.version(),
              model.map->size(), f.alignment(), static_cast<unsigned long long>(f.data_offset()));
  size_t key_width = 0;
  for (const auto& kv : f.metadata()) key_width = std::max(key_width, kv.key.size());
  appendf(out, "\nmetadata (%zu keys):\n", f.metadata().size());
  for (const auto& kv : f.metadata()) {
    std::string line =
        fmt::format("  {:<{}}  {:<7}  {}", kv.key, key_width, gguf::value_type_name(kv.type), value_text(kv));
    appendf(out, "%s\n", line.c_str());
  }
  appendf(out, "\ntensors (%zu):\n", f.tensors().size());
  size_t name_width = 4;
  for (const auto& t : f.tensors()) name_width = std::max(name_width, t.name.size());
  if (!f.tensors().empty()) {
    appendf(out, "%s\n", fmt::format("  {:<{}}  {:<5}  {:<22}  {:>12}  {:>12}", "name", name_width, "type", "shape",
                                    "bytes", "offset")
                            .c_str());
  }
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  for (const auto& t : f.tensors()) {
    appendf(out, "%s\n", fmt::format("  {:<{}}  {:<5}  {:<22}  {:>12}  {:>12}", t.name, name_width, type_name(t.type),
                                    shape_text(t), t.n_bytes, t.offset)
                            .c_str());
    n_elements += t.n_elements;
    n_bytes += t.n_bytes;
  }
  appendf(out, "\ntotals: %zu keys, %zu tensors, %llu parameters, %llu bytes of tensor data\n", f.metadata().size(),
              f.tensors().size(), static_cast<unsigned long long>(n_elements),
              static_cast<unsigned long long>(n_bytes));
  return out;
}

// A store model that verification refused as unsigned or untrusted: its facts, signatures and
// attestations from the store, without loading it (nothing of it runs), and why it is refused.
// Tampering and rollback still refuse: their errors are not kUnauthenticated.
Status show_unverified(const InspectOptions& opt, const Status& refusal) {
  HEARTH_ASSIGN_OR_RETURN(store::Reference ref, store::parse_reference(opt.model));
  const std::string home = store::default_home();
  HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(home));
  HEARTH_ASSIGN_OR_RETURN(trust::TrustPolicy policy, trust::load_policy(trust::default_policy_path(home)));
  HEARTH_ASSIGN_OR_RETURN(trust::ModelProvenance p, trust::describe_model(st, ref, policy));
  p.reference = ref.to_string();
  ResolvedModelArg arg;
  arg.reference = p.reference;
  arg.manifest_digest = p.manifest.str();
  arg.display = p.reference + " (NOT VERIFIED, not loaded)";
  const StoreInfo info{arg, std::move(p)};
  if (opt.json) {
    Json j = store_json(info);
    j["verified"] = false;
    j["refusal"] = refusal.message();
    std::printf("%s\n", j.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
  } else {
    std::printf("store model: %s\n%s\nnot verified: %s\n", info.arg.display.c_str(),
                trust::format_provenance(info.provenance).c_str(), refusal.message().c_str());
  }
  return ok_status();
}

// An ONNX model's summary (from the bytes; inside the parser sandbox). `extra`: the store's
// side, merged into the JSON.
Result<std::string> render_onnx(std::span<const std::byte> bytes, const std::string& display, bool json, const Json* extra) {
  auto m = onnx::parse_model(bytes, onnx::LoadOptions{});
  if (!m.ok()) return m.status().with_context(display);
  auto values = [](const std::vector<onnx::ValueInfo>& vs) {
    Json a = Json::array();
    for (const auto& v : vs) {
      Json dims = Json::array();
      for (size_t i = 0; i < v.dims.size(); ++i) {
        if (v.dims[i] >= 0) dims.push_back(v.dims[i]);
        else dims.push_back(v.dim_names[i].empty() ? Json("?") : Json(v.dim_names[i]));
      }
      a.push_back({{"name", v.name}, {"dtype", std::string(onnx::dtype_name(v.dtype))}, {"dims", dims}});
    }
    return a;
  };
  std::map<std::string, int> ops;
  for (const auto& n : m->graph.nodes) ++ops[n.op_type];
  Json j{{"format", "onnx"}, {"opset", m->opset}, {"producer", m->producer}, {"inputs", values(m->graph.inputs)},
         {"outputs", values(m->graph.outputs)}, {"initializers", m->graph.initializers.size()}, {"ops", ops}};
  if (extra) {
    for (auto it = extra->begin(); it != extra->end(); ++it) j[it.key()] = *it;
  }
  if (json) return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  std::string out;
  appendf(out, "ONNX model, opset %lld, producer %s, %zu initializers, %zu nodes\n", static_cast<long long>(m->opset),
          m->producer.c_str(), m->graph.initializers.size(), m->graph.nodes.size());
  for (const char* side : {"inputs", "outputs"}) {
    appendf(out, "%s:\n", side);
    for (const auto& v : j[side]) {
      appendf(out, "  %s  %s %s\n", v["name"].get<std::string>().c_str(), v["dtype"].get<std::string>().c_str(),
              v["dims"].dump().c_str());
    }
  }
  return out;
}

Status run(const InspectOptions& opt) {
  auto resolved = resolve_model_arg(opt.model, "inspect", opt.allow_unsigned);
  if (!resolved.ok() && resolved.status().code() == ErrorCode::kUnauthenticated &&
      store::parse_reference(opt.model).ok()) {
    return show_unverified(opt, resolved.status());
  }
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, std::move(resolved));
  std::optional<StoreInfo> store_info;
  std::optional<Json> extra;
  if (!arg.reference.empty()) {
    HEARTH_ASSIGN_OR_RETURN(trust::ModelProvenance p, describe(arg));
    store_info = StoreInfo{arg, std::move(p)};
    try {
      extra = store_json(*store_info);
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kInternal, "{}: cannot render: {}", arg.display, e.what());
    }
  }
  // The file is opened here and parsed only inside the parser sandbox (hearth/sandbox: no
  // network, no processes, no files opened, no writes); the rendered text comes back from it.
  auto map = map_model(arg);
  if (!map.ok()) {
    record_load(arg, map.status());
    return map.status();
  }
  const std::shared_ptr<const MappedFile> mapped = *map;
  // An ONNX store model (the weights are not GGUF): its graph's summary from the verified bytes.
  const bool onnx_model = arg.mapping && mapped->size() >= 4 && std::memcmp(mapped->bytes().data(), "GGUF", 4) != 0;
  auto rendered = sandbox::run_confined("parsing " + arg.display, [&]() -> Result<std::string> {
    if (onnx_model) return render_onnx(mapped->bytes(), arg.display, opt.json, extra ? &*extra : nullptr);
    MappedGguf model;
    model.map = mapped;
    HEARTH_ASSIGN_OR_RETURN(model.file, gguf::parse_gguf(mapped->bytes(), mapped->path()));
    if (!opt.json) return render_text(model);
    Json j = to_json(model);
    if (extra) {
      for (auto it = extra->begin(); it != extra->end(); ++it) j[it.key()] = *it;
    }
    return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  });
  if (!onnx_model) record_load(arg, rendered.status());
  if (!rendered.ok()) return rendered.status();
  if (store_info && !opt.json) {
    std::printf("store model: %s\n%s\n", store_info->arg.display.c_str(), trust::format_provenance(store_info->provenance).c_str());
  }
  std::fwrite(rendered->data(), 1, rendered->size(), stdout);
  return ok_status();
}

void setup(CLI::App& app) {
  auto opt = std::make_shared<InspectOptions>();
  auto* sub =
      app.add_subcommand("inspect", "show a model's metadata and tensors (and, from the store, its provenance)");
  sub->add_option("model", opt->model,
                  "GGUF file or store reference (default: $HEARTH_MODEL, then default_model in the config)");
  sub->add_flag("--json", opt->json, "print one JSON object");
  sub->add_flag("--allow-unsigned", opt->allow_unsigned, "inspect an unsigned store model (never excuses tampering)");
  sub->callback([opt] {
    Status s = run(*opt);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(200, setup);

}  // namespace
}  // namespace hearth::cli
