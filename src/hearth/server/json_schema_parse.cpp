// JSON Schema (as sent in response_format) -> engine::JsonSchema. Local "$ref"s ("#/$defs/X",
// "#/definitions/X") are resolved, recursion included. Every keyword is either enforced,
// a pure annotation, or refused by name (skipped only in best-effort mode): a schema is never
// weakened silently.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string_view>

#include "hearth/engine/json_constraint.h"
#include "hearth/server/openai_request.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;
using engine::JsonSchema;
using engine::JsonSchemaNode;
namespace jt = engine::json_type;

constexpr int kMaxDepth = 64;
// Nodes built plus $ref uses: a $ref is resolved once, but every use of it counts, so that a
// small schema cannot stand for a large one.
constexpr size_t kMaxNodes = 4096;

// Keywords the engine enforces (see json_schema.h), and annotations that constrain nothing.
constexpr std::string_view kEnforced[] = {
    "type",  "enum",     "const",    "properties", "required",   "additionalProperties",
    "items", "minItems", "maxItems", "minLength",  "maxLength",  "anyOf",
    "oneOf", "allOf",    "$ref",     "$defs",      "definitions"};
constexpr std::string_view kAnnotations[] = {"title",   "description", "$schema",    "$id",      "$comment", "$anchor",
                                             "default", "examples",    "deprecated", "readOnly", "writeOnly"};

bool listed(std::string_view key, std::span<const std::string_view> list) {
  return std::find(list.begin(), list.end(), key) != list.end();
}

// A short excerpt of a value for an error message (the value may be large).
std::string excerpt(const json& v) {
  std::string t = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (t.size() > 64) t = t.substr(0, 61) + "...";
  return t;
}

class SchemaBuilder {
 public:
  SchemaBuilder(const json& root, bool best_effort, std::vector<std::string>* skipped)
      : root_(root), best_effort_(best_effort), skipped_(skipped) {}

  ApiResult<int> build(const json& s, int depth, const std::string& where) {
    if (depth > kMaxDepth) {
      return bad_request(fmt::format("the schema nests more than {} levels deep (at {})", kMaxDepth, where));
    }
    if (out.nodes.size() + ref_uses_ > kMaxNodes) {
      return bad_request(fmt::format(
          "the schema expands to more than {} nodes ($ref uses included), hearth's budget per schema", kMaxNodes));
    }
    if (s.is_boolean()) {
      if (s.get<bool>()) return 0;
      return bad_request("a 'false' schema matches nothing (at " + where + ")");
    }
    if (!s.is_object()) return bad_request("a schema must be an object, not " + excerpt(s) + " (at " + where + ")");
    for (const auto& [key, value] : s.items()) {
      if (listed(key, kEnforced) || listed(key, kAnnotations)) continue;
      if (auto e = unenforced(key, "", where, "remove it")) return *e;
    }
    if (auto r = s.find("$ref"); r != s.end()) {
      if (!r->is_string()) return bad_request("'$ref' must be a string");
      const std::string ref = r->get<std::string>();
      for (const auto& [key, value] : s.items()) {
        // Only the $ref is followed: a constraint beside it would be dropped.
        if (key == "$ref" || key == "$defs" || key == "definitions" || !listed(key, kEnforced)) continue;
        if (auto e = unenforced(key, " beside '$ref'", where, "move it into the referenced schema")) return *e;
      }
      ++ref_uses_;
      if (auto it = refs_.find(ref); it != refs_.end()) return it->second;
      if (ref.empty() || ref[0] != '#')
        return bad_request("only local $refs ('#/...') are supported, not '" + ref + "'");
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
      auto target = build(root_.at(ptr), depth + 1, ref);
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
        if (v == "null")
          n.types |= jt::kNull;
        else if (v == "boolean")
          n.types |= jt::kBoolean;
        else if (v == "integer")
          n.types |= jt::kInteger;
        else if (v == "number")
          n.types |= jt::kNumber | jt::kInteger;
        else if (v == "string")
          n.types |= jt::kString;
        else if (v == "array")
          n.types |= jt::kArray;
        else if (v == "object")
          n.types |= jt::kObject;
        else
          return bad_request("unknown schema type '" + v + "'");
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
    if (auto c = s.find("const"); c != s.end())
      n.literals.push_back(c->dump(-1, ' ', false, json::error_handler_t::replace));
    if (auto e = s.find("enum"); e != s.end()) {
      if (!e->is_array() || e->empty()) return bad_request("'enum' must be a non-empty array");
      for (const json& v : *e) n.literals.push_back(v.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    const bool is_union = s.contains("anyOf") || s.contains("oneOf") || s.contains("allOf");
    if (is_union) {
      // A union node stands for its alternatives alone (json_schema.h): a constraint beside the
      // union would be dropped, so it is refused like any other keyword hearth cannot enforce.
      int unions = 0;
      for (const auto& [key, value] : s.items()) {
        if (key == "anyOf" || key == "oneOf" || key == "allOf") {
          if (++unions > 1)
            return bad_request("anyOf, oneOf and allOf in one schema are not supported (at " + where + ")");
          continue;
        }
        if (key == "$defs" || key == "definitions" || !listed(key, kEnforced)) continue;
        if (auto e = unenforced(key, " beside anyOf/oneOf/allOf", where, "move it into each alternative")) return *e;
      }
    }
    for (const char* key : {"anyOf", "oneOf", "allOf"}) {
      auto a = s.find(key);
      if (a == s.end()) continue;
      if (!a->is_array() || a->empty()) return bad_request(std::string("'") + key + "' must be a non-empty array");
      if (std::string(key) == "allOf" && a->size() != 1)
        return bad_request("'allOf' with more than one schema is not supported");
      for (size_t i = 0; i < a->size(); ++i) {
        auto r = build((*a)[i], depth + 1, fmt::format("{}/{}/{}", where, key, i));
        if (auto* e = std::get_if<ApiError>(&r)) return *e;
        n.any_of.push_back(std::get<int>(r));
      }
    }
    if (auto p = s.find("properties"); p != s.end()) {
      if (!p->is_object()) return bad_request("'properties' must be an object");
      if (!typed) n.types = jt::kObject;
      n.additional_properties = false;  // only the listed keys, unless additionalProperties says otherwise
      for (const auto& [key, sub] : p->items()) {
        auto r = build(sub, depth + 1, where + "/properties/" + key);
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
        auto r = build(*a, depth + 1, where + "/additionalProperties");
        if (auto* e = std::get_if<ApiError>(&r)) return *e;
        n.additional_properties = true;
        n.additional_schema = std::get<int>(r);
      }
    }
    if (auto it = s.find("items"); it != s.end()) {
      if (!typed) n.types = jt::kArray;
      auto r = build(*it, depth + 1, where + "/items");
      if (auto* e = std::get_if<ApiError>(&r)) return *e;
      n.items = std::get<int>(r);
    }
    auto get_count = [&](const char* key, int64_t& v) -> std::optional<ApiError> {
      auto it = s.find(key);
      if (it == s.end()) return std::nullopt;
      if (!it->is_number_integer() || it->get<int64_t>() < 0)
        return bad_request(std::string("'") + key + "' must be a non-negative integer");
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
  // A keyword hearth cannot enforce here: an error naming it, or (best effort) noted and skipped.
  std::optional<ApiError> unenforced(const std::string& key, std::string_view beside, const std::string& where,
                                     std::string_view fix) {
    if (!best_effort_) {
      return bad_request("the schema keyword '" + key + "'" + std::string(beside) + " (at " + where +
                         ") is not enforced by hearth; " + std::string(fix) +
                         ", or send \"hearth_schema_best_effort\": true to have it skipped");
    }
    if (skipped_ && std::find(skipped_->begin(), skipped_->end(), key) == skipped_->end()) skipped_->push_back(key);
    return std::nullopt;
  }

  const json& root_;
  bool best_effort_;
  std::vector<std::string>* skipped_;
  std::map<std::string, int> refs_;
  size_t ref_uses_ = 0;
};

}  // namespace

ApiResult<engine::JsonSchema> parse_json_schema(std::string_view schema_json, bool best_effort,
                                                std::vector<std::string>* skipped) {
  if (json_nesting_depth(schema_json) > kMaxJsonDepth) {
    return bad_request(fmt::format("the schema nests arrays and objects more than {} levels deep", kMaxJsonDepth));
  }
  json root = json::parse(schema_json, nullptr, false);
  if (root.is_discarded()) return bad_request("the schema is not valid JSON");
  SchemaBuilder b(root, best_effort, skipped);
  auto r = b.build(root, 0, "#");
  if (auto* e = std::get_if<ApiError>(&r)) return *e;
  b.out.root = std::get<int>(r);
  // The matcher's own checks (alternatives per value, unions that match nothing): a schema
  // it would refuse, or could only run over its work budget, is refused here with a 400.
  auto schema = std::make_shared<const engine::JsonSchema>(b.out);
  if (auto c = engine::JsonConstraint::create(schema); !c.ok()) return bad_request(c.status().message());
  return std::move(b.out);
}

}  // namespace hearth::server
