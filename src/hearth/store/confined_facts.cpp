// read_model_facts_confined: the model parse of import, pull and bundle import, run inside the
// parser sandbox (hearth/sandbox): the facts travel back from the confined child as JSON.
#include <nlohmann/json.hpp>

#include "hearth/sandbox/sandbox.h"
#include "hearth/store/model_config.h"

namespace hearth::store {
namespace {

std::string facts_to_json(const ModelFacts& f) {
  nlohmann::json j{{"name", f.name},         {"architecture", f.architecture}, {"parameters", f.parameters},
                   {"quantization", f.quantization}, {"format", f.format},     {"opset", f.opset}};
  if (f.adapter) {
    j["adapter"] = {{"type", f.adapter->type}, {"alpha", f.adapter->alpha}, {"rank", f.adapter->rank}, {"targets", f.adapter->targets}};
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<ModelFacts> facts_from_json(const std::string& text, const std::string& name) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  try {
    if (j.is_discarded() || !j.is_object()) throw std::runtime_error("not an object");
    ModelFacts f;
    f.name = j.at("name").get<std::string>();
    f.architecture = j.at("architecture").get<std::string>();
    f.parameters = j.at("parameters").get<uint64_t>();
    f.quantization = j.at("quantization").get<std::string>();
    f.format = j.at("format").get<std::string>();
    f.opset = j.at("opset").get<int64_t>();
    if (auto a = j.find("adapter"); a != j.end()) {
      ModelFacts::Adapter ad;
      ad.type = a->at("type").get<std::string>();
      ad.alpha = a->at("alpha").get<float>();
      ad.rank = a->at("rank").get<uint64_t>();
      ad.targets = a->at("targets").get<std::vector<std::string>>();
      f.adapter = std::move(ad);
    }
    return f;
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, "{}: the sandboxed parser's facts are malformed: {}", name, e.what());
  }
}

}  // namespace

Result<ModelFacts> read_model_facts_confined(std::span<const std::byte> bytes, const std::string& name, bool onnx) {
  HEARTH_ASSIGN_OR_RETURN(std::string json, sandbox::run_confined("parsing " + name, [&]() -> Result<std::string> {
    HEARTH_ASSIGN_OR_RETURN(ModelFacts f, onnx ? read_onnx_facts(bytes, name) : read_gguf_facts(bytes, name));
    return facts_to_json(f);
  }));
  return facts_from_json(json, name);
}

}  // namespace hearth::store
