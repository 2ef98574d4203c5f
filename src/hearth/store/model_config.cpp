#include "hearth/store/model_config.h"

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "hearth/onnx/loader.h"

namespace hearth::store {

std::string param_size_string(uint64_t p) {
  struct Scale {
    double div;
    char letter;
  };
  static constexpr Scale kScales[] = {{1e15, 'Q'}, {1e12, 'T'}, {1e9, 'B'}, {1e6, 'M'}, {1e3, 'K'}};
  for (const auto& s : kScales) {
    if (static_cast<double>(p) >= s.div) {
      char buf[32];
      double v = static_cast<double>(p) / s.div;
      if (v >= 100 || v == static_cast<double>(static_cast<uint64_t>(v))) {
        std::snprintf(buf, sizeof buf, "%.0f%c", v, s.letter);
      } else {
        std::snprintf(buf, sizeof buf, "%.1f%c", v, s.letter);
      }
      return buf;
    }
  }
  return std::to_string(p);
}

std::string model_config_json(const ModelFacts& facts, const std::vector<Digest>& layer_digests) {
  nlohmann::json j;
  j["descriptor"] = nlohmann::json::object();
  if (!facts.name.empty()) j["descriptor"]["name"] = facts.name;
  if (!facts.architecture.empty()) j["descriptor"]["family"] = facts.architecture;
  auto& c = j["config"];
  c = nlohmann::json::object();
  if (!facts.architecture.empty()) c["architecture"] = facts.architecture;
  c["format"] = facts.format;
  if (facts.opset > 0) j["org.hearth.onnx"] = {{"opset", facts.opset}};
  if (facts.parameters > 0) c["paramSize"] = param_size_string(facts.parameters);
  if (!facts.quantization.empty()) c["quantization"] = facts.quantization;
  j["modelfs"]["type"] = "layers";
  j["modelfs"]["diff_ids"] = nlohmann::json::array();
  for (const auto& d : layer_digests) j["modelfs"]["diff_ids"].push_back(d.str());
  // hearth's exact count beside the spec's rounded paramSize.
  if (facts.parameters > 0) j["org.hearth.parameters"] = facts.parameters;
  if (facts.adapter) {
    j["org.hearth.adapter"] = {{"type", facts.adapter->type},
                               {"alpha", facts.adapter->alpha},
                               {"rank", facts.adapter->rank},
                               {"targets", facts.adapter->targets}};
  }
  return j.dump(2);
}

Result<ModelFacts> parse_model_config(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "model config: not a json object");
  }
  ModelFacts f;
  auto str = [](const nlohmann::json& o, const char* k) -> std::string {
    if (!o.is_object()) return {};
    auto it = o.find(k);
    return (it != o.end() && it->is_string()) ? it->get<std::string>() : std::string();
  };
  if (auto d = j.find("descriptor"); d != j.end()) f.name = str(*d, "name");
  if (auto c = j.find("config"); c != j.end()) {
    f.architecture = str(*c, "architecture");
    f.quantization = str(*c, "quantization");
    if (std::string fmt = str(*c, "format"); !fmt.empty()) f.format = fmt;
  }
  if (auto p = j.find("org.hearth.parameters"); p != j.end() && p->is_number_unsigned()) {
    f.parameters = p->get<uint64_t>();
  }
  if (auto a = j.find("org.hearth.adapter"); a != j.end() && a->is_object()) {
    ModelFacts::Adapter ad;
    ad.type = str(*a, "type");
    if (auto v = a->find("alpha"); v != a->end() && v->is_number()) ad.alpha = v->get<float>();
    if (auto v = a->find("rank"); v != a->end() && v->is_number_unsigned()) ad.rank = v->get<uint64_t>();
    if (auto v = a->find("targets"); v != a->end() && v->is_array()) {
      for (const auto& t : *v) {
        if (t.is_string()) ad.targets.push_back(t.get<std::string>());
      }
    }
    f.adapter = std::move(ad);
  }
  return f;
}

}  // namespace hearth::store

namespace hearth::store {

Result<ModelFacts> read_onnx_facts(std::span<const std::byte> bytes, const std::string& name) {
  auto m = onnx::parse_model(bytes, onnx::LoadOptions{});
  if (!m.ok()) return m.status().with_context(name);
  ModelFacts f;
  f.format = "onnx";
  f.architecture = "onnx";
  f.name = m->graph.name;
  f.opset = m->opset;
  std::map<std::string, uint64_t> by_type;
  for (const auto& [n, t] : m->graph.initializers) {
    f.parameters += static_cast<uint64_t>(t.numel());
    by_type[std::string(onnx::dtype_name(t.dtype()))] += static_cast<uint64_t>(t.numel());
  }
  uint64_t best = 0;
  for (const auto& [type, count] : by_type) {
    if (count > best) {
      best = count;
      f.quantization = type;
    }
  }
  return f;
}

}  // namespace hearth::store
