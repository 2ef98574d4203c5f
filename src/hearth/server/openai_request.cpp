// Request parsing with nlohmann::json. Every field is type-checked; errors name the field
// (as OpenAI's `param`) and the bad value.
#include "hearth/server/openai_request.h"

#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "hearth/tokenizer/utf8.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;
using ordered = nlohmann::ordered_json;

ApiResult<json> parse_body(std::string_view body) {
  // Before nlohmann sees the bytes: its dump() and our schema walk recurse once per level.
  if (json_nesting_depth(body) > kMaxJsonDepth) {
    return bad_request(
        fmt::format("the request body nests arrays and objects more than {} levels deep", kMaxJsonDepth));
  }
  json j = json::parse(sanitize_utf8(body), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_request("the request body is not valid JSON");
  if (!j.is_object()) return bad_request("the request body must be a JSON object");
  return j;
}

// Reads an optional number field within [lo, hi].
std::optional<ApiError> get_number(const json& j, const char* name, double lo, double hi, double& out) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return bad_request(std::string("'") + name + "' must be a number", name);
  double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return bad_request(std::string("'") + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump() +
                           ", not " + it->dump(),
                       name);
  }
  out = v;
  return std::nullopt;
}

std::optional<ApiError> get_int(const json& j, const char* name, int64_t lo, int64_t hi, int64_t& out) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) return bad_request(std::string("'") + name + "' must be an integer", name);
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) {
    return bad_request(fmt::format("'{}' must be between {} and {}, not {}", name, lo, hi, it->dump()), name);
  }
  out = v;
  return std::nullopt;
}

std::optional<ApiError> get_bool(const json& j, const char* name, bool& out) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return bad_request(std::string("'") + name + "' must be a boolean", name);
  out = it->get<bool>();
  return std::nullopt;
}

#define HEARTH_API_TRY(expr)                                    \
  do {                                                          \
    if (auto hearth_api_err_ = (expr)) return *hearth_api_err_; \
  } while (0)

// Flattens OpenAI content (a string, or an array of text parts) into `out`.
std::optional<ApiError> content_text(const json& content, const std::string& where, std::string& out) {
  if (content.is_string()) {
    out = content.get<std::string>();
    return std::nullopt;
  }
  if (!content.is_array()) {
    return bad_request("'" + where + ".content' must be a string or an array of content parts", where + ".content");
  }
  for (size_t k = 0; k < content.size(); ++k) {
    const json& part = content[k];
    const std::string pw = fmt::format("{}.content[{}]", where, k);
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      return bad_request("'" + pw + "' must be an object with a 'type'", pw);
    }
    const std::string type = part["type"].get<std::string>();
    if (type != "text") return bad_request("'" + pw + ".type' " + type + " is not supported (only text)", pw + ".type");
    if (!part.contains("text") || !part["text"].is_string())
      return bad_request("'" + pw + ".text' must be a string", pw + ".text");
    out += part["text"].get<std::string>();
  }
  return std::nullopt;
}

// A function name as OpenAI allows it: 1-64 of [A-Za-z0-9_-] (dots too, which some clients send).
bool valid_function_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

// An assistant message's tool_calls, rewritten for templates: arguments become JSON objects
// (the transformers convention) when the client sent them as a JSON string, as OpenAI's does.
std::optional<ApiError> template_tool_calls(const json& calls, const std::string& where, ordered& out) {
  if (!calls.is_array()) return bad_request("'" + where + "' must be an array", where);
  if (calls.size() > kMaxToolCallsPerMessage) {
    return bad_request(fmt::format("'{}' has more than {} calls", where, kMaxToolCallsPerMessage), where);
  }
  out = ordered::array();
  for (size_t k = 0; k < calls.size(); ++k) {
    const json& c = calls[k];
    const std::string cw = fmt::format("{}[{}]", where, k);
    if (!c.is_object()) return bad_request("'" + cw + "' must be an object", cw);
    auto fn = c.find("function");
    if (fn == c.end() || !fn->is_object()) return bad_request("'" + cw + ".function' must be an object", cw + ".function");
    auto name = fn->find("name");
    if (name == fn->end() || !name->is_string())
      return bad_request("'" + cw + ".function.name' must be a string", cw + ".function.name");
    ordered call = ordered::object();
    if (auto id = c.find("id"); id != c.end() && id->is_string()) call["id"] = id->get<std::string>();
    call["type"] = "function";
    ordered f = ordered::object();
    f["name"] = name->get<std::string>();
    auto args = fn->find("arguments");
    if (args == fn->end() || args->is_null()) {
      f["arguments"] = ordered::object();
    } else if (args->is_string()) {
      ordered parsed = ordered::parse(args->get<std::string>(), nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded() || json_nesting_depth(args->get_ref<const std::string&>()) > kMaxJsonDepth) {
        f["arguments"] = args->get<std::string>();  // not JSON: the template gets the string
      } else {
        f["arguments"] = std::move(parsed);
      }
    } else if (args->is_object()) {
      f["arguments"] = ordered::parse(args->dump());
    } else {
      return bad_request("'" + cw + ".function.arguments' must be a JSON string or an object",
                         cw + ".function.arguments");
    }
    call["function"] = std::move(f);
    out.push_back(std::move(call));
  }
  return std::nullopt;
}

std::optional<ApiError> parse_messages(const json& j, std::vector<engine::ChatMessage>& out) {
  auto it = j.find("messages");
  if (it == j.end()) return bad_request("'messages' is required", "messages");
  if (!it->is_array() || it->empty()) return bad_request("'messages' must be a non-empty array", "messages");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) return bad_request("'" + where + "' must be an object", where);
    auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      return bad_request("'" + where + ".role' must be a string", where + ".role");
    engine::ChatMessage msg;
    msg.role = role->get<std::string>();
    if (msg.role == "developer") msg.role = "system";
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "tool") {
      return bad_request(
          "'" + where + ".role' must be system, developer, user, assistant or tool, not '" + msg.role + "'",
          where + ".role");
    }
    // What a Jinja template sees: role, content (null stays null), and the tool fields.
    ordered tm = ordered::object();
    tm["role"] = msg.role;
    auto tool_calls = m.find("tool_calls");
    const bool has_calls = msg.role == "assistant" && tool_calls != m.end() && !tool_calls->is_null();
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      if (msg.role != "assistant") return bad_request("'" + where + ".content' is required", where + ".content");
      tm["content"] = nullptr;
    } else {
      HEARTH_API_TRY(content_text(*content, where, msg.content));
      tm["content"] = msg.content;
    }
    if (has_calls) {
      ordered calls;
      HEARTH_API_TRY(template_tool_calls(*tool_calls, where + ".tool_calls", calls));
      tm["tool_calls"] = std::move(calls);
    }
    if (msg.role == "tool") {
      if (auto id = m.find("tool_call_id"); id != m.end() && !id->is_null()) {
        if (!id->is_string()) return bad_request("'" + where + ".tool_call_id' must be a string", where + ".tool_call_id");
        tm["tool_call_id"] = id->get<std::string>();
      }
    }
    if (auto name = m.find("name"); name != m.end() && !name->is_null()) {
      if (!name->is_string()) return bad_request("'" + where + ".name' must be a string", where + ".name");
      tm["name"] = name->get<std::string>();
    }
    msg.json = tm.dump(-1, ' ', false, ordered::error_handler_t::replace);
    out.push_back(std::move(msg));
  }
  return std::nullopt;
}

// tools, tool_choice, parallel_tool_calls.
std::optional<ApiError> parse_tools(const json& j, CompletionRequest& r) {
  auto it = j.find("tools");
  const bool has_tools = it != j.end() && !it->is_null();
  if (has_tools) {
    if (!it->is_array()) return bad_request("'tools' must be an array of function tools", "tools");
    if (it->size() > kMaxTools) return bad_request(fmt::format("'tools' has more than {} entries", kMaxTools), "tools");
    ordered list = ordered::array();
    for (size_t i = 0; i < it->size(); ++i) {
      const json& t = (*it)[i];
      const std::string where = fmt::format("tools[{}]", i);
      if (!t.is_object() || t.value("type", json()) != "function") {
        return bad_request("'" + where + "' must be an object with type \"function\"", where + ".type");
      }
      auto fn = t.find("function");
      if (fn == t.end() || !fn->is_object())
        return bad_request("'" + where + ".function' must be an object", where + ".function");
      auto name = fn->find("name");
      if (name == fn->end() || !name->is_string() || !valid_function_name(name->get<std::string>())) {
        return bad_request("'" + where + ".function.name' must be 1 to 64 letters, digits, '_', '-' or '.'",
                           where + ".function.name");
      }
      ToolSpec spec;
      spec.name = name->get<std::string>();
      for (const ToolSpec& prev : r.tools) {
        if (prev.name == spec.name) {
          return bad_request("'" + where + ".function.name': '" + spec.name + "' is declared twice",
                             where + ".function.name");
        }
      }
      if (auto p = fn->find("parameters"); p != fn->end() && !p->is_null()) {
        if (!p->is_object())
          return bad_request("'" + where + ".function.parameters' must be an object", where + ".function.parameters");
        spec.parameters_json = p->dump(-1, ' ', false, json::error_handler_t::replace);
      }
      r.tools.push_back(std::move(spec));
      // The template gets the tool as sent, key order kept.
      list.push_back(ordered::parse(t.dump(-1, ' ', false, json::error_handler_t::replace)));
    }
    if (!r.tools.empty()) r.tools_json = list.dump(-1, ' ', false, ordered::error_handler_t::replace);
  }
  r.tool_choice = r.tools.empty() ? ToolChoice::kNone : ToolChoice::kAuto;
  if (auto c = j.find("tool_choice"); c != j.end() && !c->is_null()) {
    if (c->is_string()) {
      const std::string v = c->get<std::string>();
      if (v == "none") {
        r.tool_choice = ToolChoice::kNone;
      } else if (v == "auto" || v == "required") {
        if (r.tools.empty()) return bad_request("'tool_choice' is '" + v + "' but there are no 'tools'", "tool_choice");
        r.tool_choice = v == "auto" ? ToolChoice::kAuto : ToolChoice::kRequired;
      } else {
        return bad_request("'tool_choice' must be none, auto, required or {\"type\": \"function\", ...}, not '" + v +
                               "'",
                           "tool_choice");
      }
    } else if (c->is_object()) {
      auto fn = c->find("function");
      if (c->value("type", json()) != "function" || fn == c->end() || !fn->is_object() || !fn->contains("name") ||
          !(*fn)["name"].is_string()) {
        return bad_request("'tool_choice' must be {\"type\": \"function\", \"function\": {\"name\": ...}}",
                           "tool_choice");
      }
      r.tool_choice_name = (*fn)["name"].get<std::string>();
      const bool known = std::any_of(r.tools.begin(), r.tools.end(),
                                     [&](const ToolSpec& t) { return t.name == r.tool_choice_name; });
      if (!known) {
        return bad_request("'tool_choice' names the function '" + r.tool_choice_name + "', which 'tools' does not declare",
                           "tool_choice");
      }
      r.tool_choice = ToolChoice::kNamed;
    } else {
      return bad_request("'tool_choice' must be a string or an object", "tool_choice");
    }
  }
  HEARTH_API_TRY(get_bool(j, "parallel_tool_calls", r.parallel_tool_calls));
  return std::nullopt;
}

std::optional<ApiError> parse_response_format(const json& j, engine::GenerationParams& gen,
                                              std::vector<std::string>* skipped) {
  auto it = j.find("response_format");
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_object() || !it->contains("type") || !(*it)["type"].is_string()) {
    return bad_request("'response_format' must be an object with a 'type'", "response_format");
  }
  const std::string type = (*it)["type"].get<std::string>();
  if (type == "text") return std::nullopt;
  if (type == "json_object") {
    gen.json_schema = std::make_shared<engine::JsonSchema>(engine::JsonSchema::any_object());
    return std::nullopt;
  }
  if (type != "json_schema") {
    return bad_request("'response_format.type' must be text, json_object or json_schema, not '" + type + "'",
                       "response_format.type");
  }
  auto js = it->find("json_schema");
  if (js == it->end() || !js->is_object()) {
    return bad_request("'response_format.json_schema' must be an object", "response_format.json_schema");
  }
  auto schema = js->find("schema");
  if (schema == js->end()) {
    gen.json_schema = std::make_shared<engine::JsonSchema>();  // any JSON value
    return std::nullopt;
  }
  bool best_effort = false;
  HEARTH_API_TRY(get_bool(j, "hearth_schema_best_effort", best_effort));
  // The body's depth was checked before parsing, so this dump cannot recurse deeply.
  auto parsed = parse_json_schema(schema->dump(-1, ' ', false, json::error_handler_t::replace), best_effort, skipped);
  if (auto* e = std::get_if<ApiError>(&parsed)) {
    e->param = "response_format.json_schema.schema";
    return *e;
  }
  gen.json_schema = std::make_shared<engine::JsonSchema>(std::get<engine::JsonSchema>(std::move(parsed)));
  return std::nullopt;
}

// A list of {"id": int, "scale": number}; `where` is the field's name in errors ("lora", or ""
// for a whole body).
std::optional<ApiError> parse_lora_list(const json& list, const std::string& where, std::vector<LoraScale>& out) {
  const std::string name = where.empty() ? "the request body" : "'" + where + "'";
  if (!list.is_array()) return bad_request(name + " must be an array of {\"id\", \"scale\"} objects", where);
  if (list.size() > kMaxLoraEntries) {
    return bad_request(fmt::format("{} has {} entries, at most {}", name, list.size(), kMaxLoraEntries), where);
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const json& e = list[i];
    const std::string at = fmt::format("{}[{}]", where, i);
    if (!e.is_object()) return bad_request("'" + at + "' must be an object with \"id\" and \"scale\"", at);
    auto id = e.find("id");
    if (id == e.end() || !id->is_number_integer() || id->get<int64_t>() < 0) {
      return bad_request("'" + at + ".id' must be a non-negative integer", at + ".id");
    }
    auto scale = e.find("scale");
    if (scale == e.end() || !scale->is_number())
      return bad_request("'" + at + ".scale' must be a number", at + ".scale");
    const double v = scale->get<double>();
    if (!std::isfinite(v) || std::fabs(v) > kMaxLoraScale) {
      return bad_request(
          fmt::format("'{}.scale' must be between {} and {}, not {}", at, -kMaxLoraScale, kMaxLoraScale, scale->dump()),
          at + ".scale");
    }
    for (const LoraScale& prev : out) {
      if (prev.id == id->get<int64_t>()) {
        return bad_request(fmt::format("'{}.id': adapter {} is listed twice", at, prev.id), at + ".id");
      }
    }
    out.push_back({id->get<int64_t>(), static_cast<float>(v)});
  }
  return std::nullopt;
}

std::optional<ApiError> parse_sampling(const json& j, bool chat, const RequestLimits& limits, CompletionRequest& r) {
  auto& sc = r.gen.sampler;
  sc.temperature = 1.0f;
  sc.top_p = 1.0f;
  sc.top_k = 40;
  sc.min_p = 0.05f;
  double d = sc.temperature;
  HEARTH_API_TRY(get_number(j, "temperature", 0.0, 2.0, d));
  sc.temperature = static_cast<float>(d);
  d = sc.top_p;
  HEARTH_API_TRY(get_number(j, "top_p", 0.0, 1.0, d));
  if (d <= 0.0) return bad_request("'top_p' must be greater than 0", "top_p");
  sc.top_p = static_cast<float>(d);
  d = sc.min_p;
  HEARTH_API_TRY(get_number(j, "min_p", 0.0, 1.0, d));
  sc.min_p = static_cast<float>(d);
  int64_t k = sc.top_k;
  HEARTH_API_TRY(get_int(j, "top_k", 0, 1 << 30, k));
  sc.top_k = static_cast<int32_t>(k);
  d = 0.0;
  HEARTH_API_TRY(get_number(j, "presence_penalty", -2.0, 2.0, d));
  sc.presence_penalty = static_cast<float>(d);
  d = 0.0;
  HEARTH_API_TRY(get_number(j, "frequency_penalty", -2.0, 2.0, d));
  sc.frequency_penalty = static_cast<float>(d);
  d = 1.0;
  HEARTH_API_TRY(get_number(j, "repeat_penalty", 0.0, 10.0, d));
  if (d <= 0.0) return bad_request("'repeat_penalty' must be greater than 0", "repeat_penalty");
  sc.repeat_penalty = static_cast<float>(d);
  int64_t seed = -1;
  HEARTH_API_TRY(get_int(j, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), seed));
  if (j.contains("seed") && !j["seed"].is_null()) {
    sc.seed = static_cast<uint32_t>(static_cast<uint64_t>(seed));
    if (sc.seed == sampling::kRandomSeed) sc.seed -= 1;  // kRandomSeed means no seed
  }
  if (auto it = j.find("logit_bias"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad_request("'logit_bias' must be an object of token id -> bias", "logit_bias");
    for (const auto& [key, value] : it->items()) {
      char* end = nullptr;
      long id = std::strtol(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || id < 0 || id > std::numeric_limits<int32_t>::max()) {
        return bad_request("'logit_bias' keys must be token ids, not '" + key + "'", "logit_bias");
      }
      if (!value.is_number() || value.get<double>() < -100.0 || value.get<double>() > 100.0) {
        return bad_request("'logit_bias' values must be numbers in [-100, 100]", "logit_bias");
      }
      const double b = value.get<double>();
      // As in OpenAI's API, -100 bans the token.
      sc.logit_bias[static_cast<int32_t>(id)] =
          b <= -100.0 ? -std::numeric_limits<float>::infinity() : static_cast<float>(b);
    }
  }
  // max_tokens (both APIs) / max_completion_tokens (chat).
  int64_t max_tokens = -1;
  HEARTH_API_TRY(get_int(j, "max_tokens", 1, std::numeric_limits<int32_t>::max(), max_tokens));
  if (chat) HEARTH_API_TRY(get_int(j, "max_completion_tokens", 1, std::numeric_limits<int32_t>::max(), max_tokens));
  if (!chat && !j.contains("max_tokens")) max_tokens = 16;  // the completions API's default
  if (limits.max_tokens >= 0 && (max_tokens < 0 || max_tokens > limits.max_tokens)) max_tokens = limits.max_tokens;
  r.gen.max_tokens = max_tokens;
  int64_t n = 1;
  HEARTH_API_TRY(get_int(j, "n", 1, limits.max_n, n));
  r.gen.n_choices = static_cast<int>(n);
  if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
    const std::string what =
        fmt::format("'stop' must be a string or an array of up to {} strings of at most {} bytes each", kMaxStopStrings,
                    kMaxStopBytes);
    if (!it->is_string() && !(it->is_array() && it->size() <= kMaxStopStrings)) return bad_request(what, "stop");
    for (const json& s : it->is_string() ? json::array({*it}) : *it) {
      if (!s.is_string() || s.get_ref<const std::string&>().size() > kMaxStopBytes) return bad_request(what, "stop");
      r.gen.stop.push_back(s.get<std::string>());
    }
  }
  // Logprobs: chat has logprobs (bool) + top_logprobs (0..20); completions has logprobs (0..5).
  if (chat) {
    HEARTH_API_TRY(get_bool(j, "logprobs", r.logprobs));
    int64_t top = 0;
    HEARTH_API_TRY(get_int(j, "top_logprobs", 0, 20, top));
    if (j.contains("top_logprobs") && !j["top_logprobs"].is_null() && !r.logprobs) {
      return bad_request("'top_logprobs' requires 'logprobs' to be true", "top_logprobs");
    }
    r.gen.top_logprobs = r.logprobs ? static_cast<int>(top) : -1;
  } else {
    int64_t lp = -1;
    HEARTH_API_TRY(get_int(j, "logprobs", 0, 5, lp));
    r.logprobs = lp >= 0;
    r.gen.top_logprobs = static_cast<int>(lp);
  }
  HEARTH_API_TRY(get_bool(j, "ignore_eos", r.gen.ignore_eos));
  if (auto it = j.find("lora"); it != j.end() && !it->is_null()) {
    r.lora.emplace();
    HEARTH_API_TRY(parse_lora_list(*it, "lora", *r.lora));
  }
  HEARTH_API_TRY(get_bool(j, "stream", r.stream));
  if (auto it = j.find("stream_options"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad_request("'stream_options' must be an object", "stream_options");
    HEARTH_API_TRY(get_bool(*it, "include_usage", r.include_usage));
  }
  return parse_response_format(j, r.gen, &r.skipped_schema_keywords);
}

}  // namespace

int json_nesting_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::string sanitize_utf8(std::string_view text) {
  if (tokenizer::is_valid_utf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  size_t i = 0;
  while (i < text.size()) {
    auto seq = tokenizer::next_utf8_sequence(text.substr(i));
    if (seq.kind == tokenizer::Utf8Sequence::kComplete) {
      out.append(text.substr(i, seq.length));
    } else {
      tokenizer::append_utf8(out, tokenizer::kReplacementChar);
    }
    i += std::max<size_t>(seq.length, 1);
  }
  return out;
}

ApiResult<CompletionRequest> parse_completion_request(std::string_view body, bool chat, const RequestLimits& limits) {
  auto parsed = parse_body(body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  const json& j = std::get<json>(parsed);
  CompletionRequest r;
  r.chat = chat;
  if (auto it = j.find("model"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return bad_request("'model' must be a string", "model");
    r.model = it->get<std::string>();
  }
  if (chat) {
    HEARTH_API_TRY(parse_messages(j, r.messages));
    HEARTH_API_TRY(parse_tools(j, r));
  } else {
    auto it = j.find("prompt");
    if (it == j.end() || it->is_null()) return bad_request("'prompt' is required", "prompt");
    const json* p = &*it;
    if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) p = &(*p)[0];
    if (p->is_string()) {
      r.prompt = p->get<std::string>();
    } else if (p->is_array() && !p->empty() &&
               std::all_of(p->begin(), p->end(), [](const json& t) { return t.is_number_integer(); })) {
      r.prompt_is_tokens = true;
      for (const json& t : *p) {
        int64_t id = t.get<int64_t>();
        if (id < 0 || id > std::numeric_limits<int32_t>::max())
          return bad_request("'prompt' has a bad token id", "prompt");
        r.prompt_tokens.push_back(static_cast<int32_t>(id));
      }
    } else {
      return bad_request("'prompt' must be a string, an array of token ids, or an array with one of these", "prompt");
    }
  }
  HEARTH_API_TRY(parse_sampling(j, chat, limits, r));
  return r;
}

ApiResult<EmbeddingRequest> parse_embedding_request(std::string_view body) {
  auto parsed = parse_body(body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  const json& j = std::get<json>(parsed);
  EmbeddingRequest r;
  if (auto it = j.find("model"); it != j.end() && it->is_string()) r.model = it->get<std::string>();
  auto it = j.find("input");
  if (it == j.end()) return bad_request("'input' is required", "input");
  auto token_array = [](const json& a) {
    return a.is_array() && !a.empty() &&
           std::all_of(a.begin(), a.end(), [](const json& t) { return t.is_number_integer(); });
  };
  auto add_tokens = [&](const json& a) -> std::optional<ApiError> {
    std::vector<int32_t> ids;
    for (const json& t : a) {
      int64_t id = t.get<int64_t>();
      if (id < 0 || id > std::numeric_limits<int32_t>::max()) return bad_request("'input' has a bad token id", "input");
      ids.push_back(static_cast<int32_t>(id));
    }
    r.token_inputs.push_back(std::move(ids));
    return std::nullopt;
  };
  if (it->is_string()) {
    r.texts.push_back(it->get<std::string>());
  } else if (token_array(*it)) {
    HEARTH_API_TRY(add_tokens(*it));
  } else if (it->is_array() && !it->empty()) {
    for (const json& x : *it) {
      if (x.is_string()) {
        if (!r.token_inputs.empty()) return bad_request("'input' must not mix strings and token arrays", "input");
        r.texts.push_back(x.get<std::string>());
      } else if (token_array(x)) {
        if (!r.texts.empty()) return bad_request("'input' must not mix strings and token arrays", "input");
        HEARTH_API_TRY(add_tokens(x));
      } else {
        return bad_request("'input' items must be strings or arrays of token ids", "input");
      }
    }
  } else {
    return bad_request("'input' must be a string, an array of strings, or token arrays", "input");
  }
  if (r.texts.size() + r.token_inputs.size() > kMaxEmbeddingInputs) {
    return bad_request(fmt::format("'input' has more than {} items", kMaxEmbeddingInputs), "input");
  }
  for (const auto& t : r.texts) {
    if (t.empty()) return bad_request("'input' must not contain empty strings", "input");
  }
  if (auto f = j.find("encoding_format"); f != j.end() && !f->is_null()) {
    if (!f->is_string() || (*f != "float" && *f != "base64")) {
      return bad_request("'encoding_format' must be float or base64", "encoding_format");
    }
    r.base64 = *f == "base64";
  }
  return r;
}

ApiResult<TokenizeRequest> parse_tokenize_request(std::string_view body) {
  auto parsed = parse_body(body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  const json& j = std::get<json>(parsed);
  TokenizeRequest r;
  auto it = j.find("content");
  if (it == j.end() || !it->is_string()) return bad_request("'content' must be a string", "content");
  r.content = it->get<std::string>();
  HEARTH_API_TRY(get_bool(j, "add_special", r.add_special));
  HEARTH_API_TRY(get_bool(j, "with_pieces", r.with_pieces));
  return r;
}

ApiResult<std::vector<int32_t>> parse_detokenize_request(std::string_view body) {
  auto parsed = parse_body(body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  const json& j = std::get<json>(parsed);
  auto it = j.find("tokens");
  if (it == j.end() || !it->is_array()) return bad_request("'tokens' must be an array of token ids", "tokens");
  std::vector<int32_t> ids;
  for (const json& t : *it) {
    if (!t.is_number_integer()) return bad_request("'tokens' must be an array of token ids", "tokens");
    int64_t id = t.get<int64_t>();
    if (id < 0 || id > std::numeric_limits<int32_t>::max()) return bad_request("'tokens' has a bad token id", "tokens");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

ApiResult<std::vector<LoraScale>> parse_lora_scales(std::string_view body) {
  if (json_nesting_depth(body) > kMaxJsonDepth) {
    return bad_request(
        fmt::format("the request body nests arrays and objects more than {} levels deep", kMaxJsonDepth));
  }
  json j = json::parse(sanitize_utf8(body), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_request("the request body is not valid JSON");
  std::vector<LoraScale> out;
  HEARTH_API_TRY(parse_lora_list(j, "", out));
  return out;
}

}  // namespace hearth::server
