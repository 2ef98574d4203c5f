// The JSON adapter for refs.json (see refs.h).
#include "hearth/store/refs.h"

#include <nlohmann/json.hpp>

#include "hearth/store/reference.h"

namespace hearth::store {
namespace {

using json = nlohmann::json;

Status corrupt(std::string_view path, std::string_view what) {
  return make_error(ErrorCode::kDataLoss, "{}: {} (run 'hearth store check')", path, what);
}

}  // namespace

Result<RefsTable> parse_refs(std::string_view text, std::string_view path) {
  RefsTable t;
  if (text.empty()) return t;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt(path, "not a json object");
  if (auto repos = j.find("repositories"); repos != j.end()) {
    if (!repos->is_object()) return corrupt(path, "'repositories' is not an object");
    for (auto& [name, r] : repos->items()) {
      if (!is_valid_name(name)) return corrupt(path, "bad repository name '" + name + "'");
      RepoRefs rr;
      if (!r.is_object()) return corrupt(path, "repository '" + name + "' is not an object");
      if (auto tags = r.find("tags"); tags != r.end() && tags->is_object()) {
        for (auto& [tag, d] : tags->items()) {
          if (!is_valid_tag(tag) || !d.is_string()) return corrupt(path, "bad tag '" + tag + "'");
          auto dg = Digest::parse(d.get<std::string>());
          if (!dg.ok()) return corrupt(path, dg.status().message());
          rr.tags[tag] = *dg;
        }
      }
      if (auto ms = r.find("manifests"); ms != r.end() && ms->is_array()) {
        for (auto& d : *ms) {
          if (!d.is_string()) return corrupt(path, "bad manifest entry");
          auto dg = Digest::parse(d.get<std::string>());
          if (!dg.ok()) return corrupt(path, dg.status().message());
          rr.manifests.insert(*dg);
        }
      }
      t.repos[name] = std::move(rr);
    }
  }
  if (auto refs = j.find("referrers"); refs != j.end()) {
    if (!refs->is_object()) return corrupt(path, "'referrers' is not an object");
    for (auto& [subject, list] : refs->items()) {
      auto s = Digest::parse(subject);
      if (!s.ok() || !list.is_array()) return corrupt(path, "bad referrers entry");
      auto& set = t.referrers[*s];
      for (auto& d : list) {
        if (!d.is_string()) return corrupt(path, "bad referrer");
        auto dg = Digest::parse(d.get<std::string>());
        if (!dg.ok()) return corrupt(path, dg.status().message());
        set.insert(*dg);
      }
    }
  }
  return t;
}

std::string serialize_refs(const RefsTable& t) {
  json j = json::object();
  j["schema"] = 1;
  j["repositories"] = json::object();
  for (const auto& [name, r] : t.repos) {
    json rj = json::object();
    rj["tags"] = json::object();
    for (const auto& [tag, d] : r.tags) rj["tags"][tag] = d.str();
    rj["manifests"] = json::array();
    for (const auto& d : r.manifests) rj["manifests"].push_back(d.str());
    j["repositories"][name] = std::move(rj);
  }
  j["referrers"] = json::object();
  for (const auto& [subject, set] : t.referrers) {
    json list = json::array();
    for (const auto& d : set) list.push_back(d.str());
    j["referrers"][subject.str()] = std::move(list);
  }
  return j.dump(2) + "\n";
}

}  // namespace hearth::store
