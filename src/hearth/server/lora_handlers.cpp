// The LoRA adapter routes (llama.cpp server compatible): GET and POST /lora-adapters, and the
// adapter set of a request (its "lora" field or the global scales).
#include <nlohmann/json.hpp>

#include "hearth/server/serving.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;

// Scales for every adapter id: `scales` applied over zeros; an unknown id is an error naming it.
ApiResult<std::vector<float>> resolve_scales(const LoraTable& t, const std::vector<LoraScale>& scales,
                                             const std::string& where) {
  std::vector<float> out(t.adapters.size(), 0.0f);
  for (size_t i = 0; i < scales.size(); ++i) {
    const LoraScale& s = scales[i];
    if (s.id < 0 || static_cast<size_t>(s.id) >= t.adapters.size()) {
      const std::string at = fmt::format("{}[{}].id", where, i);
      return bad_request(
          t.adapters.empty()
              ? fmt::format("'{}': unknown LoRA adapter id {}; this server has no adapters (--lora)", at, s.id)
              : fmt::format("'{}': unknown LoRA adapter id {}; this server's ids are 0 to {}", at, s.id,
                            t.adapters.size() - 1),
          at);
    }
    out[static_cast<size_t>(s.id)] = s.scale;
  }
  return out;
}

}  // namespace

HttpResponse handle_lora_list(const Serving& sv) {
  const LoraTable& t = sv.lora;
  json list = json::array();
  std::lock_guard lock(t.mu);
  for (size_t i = 0; i < t.adapters.size(); ++i) {
    list.push_back({{"id", i}, {"path", t.paths[i]}, {"scale", t.scales[i]}});
  }
  return json_text_response(list.dump(-1, ' ', false, json::error_handler_t::replace));
}

HttpResponse handle_lora_set(Serving& sv, const HttpRequest& req) {
  auto parsed = parse_lora_scales(req.body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return error_response(*e);
  auto scales = resolve_scales(sv.lora, std::get<std::vector<LoraScale>>(parsed), "");
  if (auto* e = std::get_if<ApiError>(&scales)) return error_response(*e);
  {
    std::lock_guard lock(sv.lora.mu);
    sv.lora.scales = std::move(std::get<std::vector<float>>(scales));
  }
  return json_text_response(R"({"success":true})");
}

ApiResult<std::vector<model::LoraUse>> lora_for_request(const Serving& sv,
                                                        const std::optional<std::vector<LoraScale>>& scales) {
  const LoraTable& t = sv.lora;
  std::vector<float> s;
  if (scales) {
    auto r = resolve_scales(t, *scales, "lora");
    if (auto* e = std::get_if<ApiError>(&r)) return *e;
    s = std::move(std::get<std::vector<float>>(r));
  } else {
    std::lock_guard lock(t.mu);
    s = t.scales;
  }
  std::vector<model::LoraUse> out;
  for (size_t i = 0; i < t.adapters.size(); ++i) {
    if (s[i] != 0.0f) out.push_back({t.adapters[i], s[i]});
  }
  return out;
}

}  // namespace hearth::server
