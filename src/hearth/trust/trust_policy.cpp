// The JSON adapter for trust policies (see trust_policy.h).
#include "hearth/trust/trust_policy.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "hearth/core/atomic_file.h"
#include "hearth/store/reference.h"

namespace hearth::trust {
namespace {

using json = nlohmann::json;

Status bad(const std::string& path, std::string_view what) {
  return make_error(ErrorCode::kInvalidArgument, "{}: {}", path, what);
}

}  // namespace

bool Publisher::may_publish(std::string_view model_name) const {
  for (const auto& p : models) {
    if (store::name_matches(p, model_name)) return true;
  }
  return false;
}

const Publisher* TrustPolicy::find_by_key_id(std::string_view key_id) const {
  for (const auto& p : publishers) {
    if (p.key.key_id() == key_id) return &p;
  }
  return nullptr;
}

std::string default_policy_path(const std::string& home) { return home + "/trust/policy.json"; }

Result<TrustPolicy> load_policy(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    TrustPolicy p;
    return p;
  }
  HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(path, 4 << 20));
  return parse_policy(text, path);
}

Result<TrustPolicy> parse_policy(std::string_view text, const std::string& path) {
  json j = json::parse(text, nullptr, false, /*ignore_comments=*/true);
  if (j.is_discarded() || !j.is_object()) return bad(path, "not a json object");
  TrustPolicy p;
  p.path = path;
  for (auto& [k, v] : j.items()) {
    if (k == "allow_unsigned") {
      if (!v.is_boolean()) return bad(path, "'allow_unsigned' must be true or false");
      p.allow_unsigned = v.get<bool>();
    } else if (k == "local_paths") {
      if (!v.is_string() || (v != "allow" && v != "deny"))
        return bad(path, "'local_paths' must be \"allow\" or \"deny\"");
      p.local_paths_allowed = v == "allow";
    } else if (k == "publishers") {
      if (!v.is_array()) return bad(path, "'publishers' must be an array");
    } else if (k != "version" && k != "comment") {
      return bad(path, "unknown setting '" + k + "'");
    }
  }
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (auto pubs = j.find("publishers"); pubs != j.end()) {
    for (size_t i = 0; i < pubs->size(); ++i) {
      const json& e = (*pubs)[i];
      std::string where = fmt::format("publishers[{}]", i);
      if (!e.is_object()) return bad(path, where + " is not an object");
      Publisher pub;
      if (auto n = e.find("name"); n != e.end() && n->is_string()) pub.name = n->get<std::string>();
      auto key = e.find("key");
      if (key == e.end() || !key->is_string()) return bad(path, where + ": missing 'key' (a public key file)");
      pub.key_path = key->get<std::string>();
      std::filesystem::path kp(pub.key_path);
      if (kp.is_relative()) kp = dir / kp;
      auto loaded = PublicKey::load(kp.string());
      if (!loaded.ok()) return loaded.status().with_context(path + ": " + where);
      pub.key = *loaded;
      if (pub.name.empty()) pub.name = pub.key.key_id().substr(0, 16);
      auto models = e.find("models");
      if (models == e.end() || !models->is_array() || models->empty()) {
        return bad(path, where + ": 'models' must list the name patterns this key may publish, e.g. [\"acme/*\"]");
      }
      for (const auto& m : *models) {
        if (!m.is_string()) return bad(path, where + ": model patterns must be strings");
        pub.models.push_back(m.get<std::string>());
      }
      for (const char* f : {"min_version", "max_version"}) {
        if (auto v = e.find(f); v != e.end()) {
          if (!v->is_number_unsigned()) return bad(path, where + ": '" + f + "' must be a non-negative integer");
          (std::string_view(f) == "min_version" ? pub.min_version : pub.max_version) = v->get<uint64_t>();
        }
      }
      p.publishers.push_back(std::move(pub));
    }
  }
  return p;
}

std::string serialize_policy(const TrustPolicy& p) {
  json j;
  j["allow_unsigned"] = p.allow_unsigned;
  j["local_paths"] = p.local_paths_allowed ? "allow" : "deny";
  j["publishers"] = json::array();
  for (const auto& pub : p.publishers) {
    json e = {{"name", pub.name}, {"key", pub.key_path}, {"models", pub.models}};
    if (pub.min_version) e["min_version"] = pub.min_version;
    if (pub.max_version) e["max_version"] = pub.max_version;
    j["publishers"].push_back(e);
  }
  return j.dump(2) + "\n";
}

}  // namespace hearth::trust
