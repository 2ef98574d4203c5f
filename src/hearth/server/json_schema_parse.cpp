// JSON Schema (as sent in response_format) -> engine::JsonSchema. Local "$ref"s ("#/$defs/X",
// "#/definitions/X") are resolved, recursion included.
#include <map>
#include <nlohmann/json.hpp>

#include "hearth/server/openai_request.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;
using engine::JsonSchema;
using engine::JsonSchemaNode;
namespace jt = engine::json_type;

constexpr int kMaxDepth = 64;
constexpr size_t kMaxNodes = 4096;

class SchemaBuilder {
 public:
  explicit SchemaBuilder(const json& root) : root_(root) {}

  ApiResult<int> build(const json& s, int depth) {
    if (depth > kMaxDepth) return bad_request("the schema is nested too deeply");
    if (out.nodes.size() > kMaxNodes) return bad_request("the schema has too many nodes");
    if (s.is_boolean()) {
      if (s.get<bool>()) return 0;
      return bad_request("a 'false' schema matches nothing");
    }
    if (!s.is_object()) return bad_request("a schema must be an object, not " + s.dump());
    if (auto r = s.find("$ref"); r != s.end()) {
      if (!r->is_string()) return bad_request("'$ref' must be a string");
      const std::string ref = r->get<std::string>();
      if (auto it = refs_.find(ref); it != refs_.end()) return it->second;
      if (ref.empty() || ref[0] != '#') return bad_request("only local $refs ('#/...') are supported, not '" + ref + "'");
      json::json_pointer ptr;
      try {
        ptr = json::json_pointer(ref.substr(1));
      } catch (const json::exception&) {
        return bad_request("bad $ref '" + ref + "'");
      }
      if (!root_.contains(ptr)) return bad_request("$ref '" + ref + "' points nowhere");
      const int idx = static_cast<int>(out.nodes.size());
      out.nodes.emplace_back();
      refs_[ref] = idx;
      auto target = build(root_.at(ptr), depth + 1);
      if (auto* e = std::get_if<ApiError>(&target)) return *e;
      out.nodes[static_cast<size_t>(idx)].any_of = {std::get<int>(target)};
      return idx;
    }
    JsonSchemaNode n;
    bool typed = false;
    if (auto t = s.find("type"); t != s.end()) {
      n.types = 0;
      typed = true;
      auto add = [&](const json& name) -> std::optional<ApiError> {
        if (!name.is_string()) return bad_request("'type' must be a string or an array of strings");
        const std::string v = name.get<std::string>();
        if (v == "null") n.types |= jt::kNull;
        else if (v == "boolean") n.types |= jt::kBoolean;
        else if (v == "integer") n.types |= jt::kInteger;
        else if (v == "number") n.types |= jt::kNumber | jt::kInteger;
        else if (v == "string") n.types |= jt::kString;
        else if (v == "array") n.types |= jt::kArray;
        else if (v == "object") n.types |= jt::kObject;
        else return bad_request("unknown schema type '" + v + "'");
        return std::nullopt;
      };
      if (t->is_array()) {
        for (const json& x : *t) {
          if (auto e = add(x)) return *e;
        }
      } else if (auto e = add(*t)) {
        return *e;
      }
    }
    if (auto c = s.find("const"); c != s.end()) n.literals.push_back(c->dump(-1, ' ', false, json::error_handler_t::replace));
    if (auto e = s.find("enum"); e != s.end()) {
      if (!e->is_array() || e->empty()) return bad_request("'enum' must be a non-empty array");
      for (const json& v : *e) n.literals.push_back(v.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    for (const char* key : {"anyOf", "oneOf", "allOf"}) {
      auto a = s.find(key);
      if (a == s.end()) continue;
      if (!a->is_array() || a->empty()) return bad_request(std::string("'") + key + "' must be a non-empty array");
      if (std::string(key) == "allOf" && a->size() != 1) return bad_request("'allOf' with more than one schema is not supported");
      for (const json& alt : *a) {
        auto r = build(alt, depth + 1);
        if (auto* e = std::get_if<ApiError>(&r)) return *e;
        n.any_of.push_back(std::get<int>(r));
      }
    }
    if (auto p = s.find("properties"); p != s.end()) {
      if (!p->is_object()) return bad_request("'properties' must be an object");
      if (!typed) n.types = jt::kObject;
      n.additional_properties = false;  // only the listed keys, unless additionalProperties says otherwise
      for (const auto& [key, sub] : p->items()) {
        auto r = build(sub, depth + 1);
        if (auto* e = std::get_if<ApiError>(&r)) return *e;
        n.properties.emplace_back(key, std::get<int>(r));
      }
    }
    if (auto r = s.find("required"); r != s.end()) {
      if (!r->is_array()) return bad_request("'required' must be an array of strings");
      for (const json& k : *r) {
        if (!k.is_string()) return bad_request("'required' must be an array of strings");
        n.required.push_back(k.get<std::string>());
      }
    }
    if (auto a = s.find("additionalProperties"); a != s.end()) {
      if (a->is_boolean()) {
        n.additional_properties = a->get<bool>();
      } else {
        auto r = build(*a, depth + 1);
        if (auto* e = std::get_if<ApiError>(&r)) return *e;
        n.additional_properties = true;
        n.additional_schema = std::get<int>(r);
      }
    }
    if (auto it = s.find("items"); it != s.end()) {
      if (!typed) n.types = jt::kArray;
      auto r = build(*it, depth + 1);
      if (auto* e = std::get_if<ApiError>(&r)) return *e;
      n.items = std::get<int>(r);
    }
    auto get_count = [&](const char* key, int64_t& v) -> std::optional<ApiError> {
      auto it = s.find(key);
      if (it == s.end()) return std::nullopt;
      if (!it->is_number_integer() || it->get<int64_t>() < 0) return bad_request(std::string("'") + key + "' must be a non-negative integer");
      v = it->get<int64_t>();
      return std::nullopt;
    };
    for (auto [key, ptr] : {std::pair{"minItems", &n.min_items}, std::pair{"maxItems", &n.max_items},
                            std::pair{"minLength", &n.min_length}, std::pair{"maxLength", &n.max_length}}) {
      if (auto e = get_count(key, *ptr)) return *e;
    }
    if (n.max_items >= 0 && n.max_items < n.min_items) return bad_request("'maxItems' is below 'minItems'");
    if (n.max_length >= 0 && n.max_length < n.min_length) return bad_request("'maxLength' is below 'minLength'");
    out.nodes.push_back(std::move(n));
    return static_cast<int>(out.nodes.size() - 1);
  }

  JsonSchema out;

 private:
  const json& root_;
  std::map<std::string, int> refs_;
};

}  // namespace

ApiResult<engine::JsonSchema> parse_json_schema(std::string_view schema_json) {
  json root = json::parse(schema_json, nullptr, false);
  if (root.is_discarded()) return bad_request("the schema is not valid JSON");
  SchemaBuilder b(root);
  auto r = b.build(root, 0);
  if (auto* e = std::get_if<ApiError>(&r)) return *e;
  b.out.root = std::get<int>(r);
  return std::move(b.out);
}

}  // namespace hearth::server
