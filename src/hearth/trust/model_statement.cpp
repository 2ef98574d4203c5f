// The JSON adapter for in-toto statements (see model_statement.h).
#include "hearth/trust/model_statement.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

namespace hearth::trust {
namespace {

using json = nlohmann::json;

Status bad(std::string_view what) { return make_error(ErrorCode::kInvalidArgument, "signed statement: {}", what); }

bool is_plain_file_name(std::string_view n) {
  return !n.empty() && n.size() <= 255 && n != "." && n != ".." && n.find('/') == std::string_view::npos &&
         n.find('\0') == std::string_view::npos && n.find('\\') == std::string_view::npos;
}

}  // namespace

store::Digest ModelStatement::root_digest() const {
  store::Sha256 h;
  for (const auto& r : resources) {
    auto raw = r.digest.raw();
    h.update(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
  }
  return h.finish();
}

Result<ModelStatement> statement_for_manifest(const store::Manifest& m, std::string_view model_name) {
  ModelStatement s;
  s.model_name = std::string(model_name);
  HEARTH_ASSIGN_OR_RETURN(s.version, store::manifest_version(m));
  s.resources.push_back({std::string(kConfigResourceName), m.config.digest});
  if (m.layers.size() > kMaxSignedLayers) {
    return make_error(ErrorCode::kInvalidArgument, "manifest: {} layers, more than the {} a signature may bind",
                      m.layers.size(), kMaxSignedLayers);
  }
  s.has_layout = true;
  s.config = {m.config.media_type, m.config.digest};
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const auto& l = m.layers[i];
    s.layers.push_back({l.media_type, l.digest});
    auto t = l.annotations.find(std::string(store::kAnnotationTitle));
    if (t == l.annotations.end() || !is_plain_file_name(t->second)) {
      return make_error(ErrorCode::kInvalidArgument, "manifest layer {}: needs a plain file name in annotation {}", i,
                        store::kAnnotationTitle);
    }
    s.resources.push_back({t->second, l.digest});
  }
  std::sort(s.resources.begin(), s.resources.end(), [](auto& a, auto& b) { return a.name < b.name; });
  for (size_t i = 1; i < s.resources.size(); ++i) {
    if (s.resources[i].name == s.resources[i - 1].name) {
      return make_error(ErrorCode::kInvalidArgument, "manifest: two files named '{}'", s.resources[i].name);
    }
  }
  return s;
}

std::string serialize_statement(const ModelStatement& s) {
  json j;
  j["_type"] = kInTotoStatementType;
  j["subject"] = json::array({{{"name", s.model_name}, {"digest", {{"sha256", std::string(s.root_digest().hex())}}}}});
  j["predicateType"] = kModelSigningPredicateType;
  json resources = json::array();
  for (const auto& r : s.resources) {
    resources.push_back({{"name", r.name}, {"algorithm", "sha256"}, {"digest", std::string(r.digest.hex())}});
  }
  j["predicate"] = {
      {"serialization",
       {{"method", "files"}, {"hash_type", "sha256"}, {"allow_symlinks", false}, {"ignore_paths", json::array()}}},
      {"resources", resources},
      {"hearth", {{"name", s.model_name}, {"version", s.version}}},
  };
  if (s.has_layout) {
    auto blob = [](const SignedBlob& b) { return json{{"mediaType", b.media_type}, {"digest", b.digest.str()}}; };
    json layers = json::array();
    for (const auto& l : s.layers) layers.push_back(blob(l));
    j["predicate"]["hearth"]["config"] = blob(s.config);
    j["predicate"]["hearth"]["layers"] = std::move(layers);
  }
  return j.dump();
}

Result<ModelStatement> parse_statement(std::string_view text) {
  if (text.size() > kMaxStatementBytes) return bad("too large");
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a json object");
  auto str = [&](const json& o, const char* k) -> std::string {
    auto it = o.find(k);
    return (it != o.end() && it->is_string()) ? it->get<std::string>() : std::string();
  };
  if (str(j, "_type") != kInTotoStatementType) return bad("_type is not " + std::string(kInTotoStatementType));
  if (str(j, "predicateType") != kModelSigningPredicateType) {
    return bad("predicateType '" + str(j, "predicateType") + "' is not " + std::string(kModelSigningPredicateType));
  }
  auto subj = j.find("subject");
  if (subj == j.end() || !subj->is_array() || subj->size() != 1 || !(*subj)[0].is_object()) {
    return bad("expected exactly one subject");
  }
  ModelStatement s;
  s.model_name = str((*subj)[0], "name");
  auto dg = (*subj)[0].find("digest");
  if (dg == (*subj)[0].end() || !dg->is_object()) return bad("subject has no digest");
  std::string root = str(*dg, "sha256");
  auto pred = j.find("predicate");
  if (pred == j.end() || !pred->is_object()) return bad("missing predicate");
  auto res = pred->find("resources");
  if (res == pred->end() || !res->is_array()) return bad("missing predicate.resources");
  for (const auto& r : *res) {
    if (!r.is_object() || str(r, "algorithm") != "sha256") return bad("resource without sha256");
    auto d = store::Digest::parse("sha256:" + str(r, "digest"));
    if (!d.ok()) return bad("resource '" + str(r, "name") + "': " + d.status().message());
    s.resources.push_back({str(r, "name"), *d});
  }
  for (size_t i = 1; i < s.resources.size(); ++i) {
    if (!(s.resources[i - 1].name < s.resources[i].name)) return bad("resources are not sorted and unique");
  }
  if ("sha256:" + root != s.root_digest().str()) {
    return bad("subject digest does not match the listed resources (inconsistent statement)");
  }
  if (auto h = pred->find("hearth"); h != pred->end() && h->is_object()) {
    if (auto v = h->find("version"); v != h->end()) {
      if (!v->is_number_unsigned()) return bad("hearth.version is not a non-negative integer");
      s.version = v->get<uint64_t>();
    }
    if (str(*h, "name") != s.model_name) return bad("hearth.name differs from the subject name");
    auto cfg = h->find("config");
    auto layers = h->find("layers");
    if ((cfg != h->end()) != (layers != h->end())) return bad("hearth.config and hearth.layers come together");
    if (layers != h->end()) {
      auto blob = [&](const json& b, const std::string& what) -> Result<SignedBlob> {
        if (!b.is_object()) return bad(what + " is not an object");
        auto d = store::Digest::parse(str(b, "digest"));
        if (!d.ok()) return bad(what + ": " + d.status().message());
        std::string mt = str(b, "mediaType");
        if (mt.empty() || mt.size() > 255) return bad(what + " has no mediaType");
        return SignedBlob{std::move(mt), *d};
      };
      if (!layers->is_array() || layers->size() > kMaxSignedLayers) return bad("hearth.layers is not a list of layers");
      HEARTH_ASSIGN_OR_RETURN(s.config, blob(*cfg, "hearth.config"));
      for (size_t i = 0; i < layers->size(); ++i) {
        HEARTH_ASSIGN_OR_RETURN(SignedBlob b, blob((*layers)[i], fmt::format("hearth.layers[{}]", i)));
        s.layers.push_back(std::move(b));
      }
      s.has_layout = true;
    }
  }
  return s;
}

Status match_statement(const ModelStatement& signed_statement, const store::Manifest& m) {
  HEARTH_ASSIGN_OR_RETURN(ModelStatement actual, statement_for_manifest(m, signed_statement.model_name));
  std::set<std::pair<std::string, std::string>> want, got;
  for (const auto& r : signed_statement.resources) want.insert({r.name, r.digest.str()});
  for (const auto& r : actual.resources) got.insert({r.name, r.digest.str()});
  for (const auto& g : got) {
    if (!want.count(g)) {
      return make_error(ErrorCode::kUnauthenticated,
                        "file '{}' ({}...) is not covered by the signature (the model was changed after signing)",
                        g.first, g.second.substr(0, 19));
    }
  }
  for (const auto& w : want) {
    if (!got.count(w)) {
      return make_error(ErrorCode::kUnauthenticated, "signed file '{}' is missing from the model", w.first);
    }
  }
  if (!signed_statement.has_layout) {
    return make_error(ErrorCode::kUnauthenticated,
                      "the signature does not bind each layer to its role and position (signed by an older hearth); "
                      "ask the publisher to re-sign with 'hearth sign'");
  }
  auto same = [](const SignedBlob& a, const SignedBlob& b) {
    return a.media_type == b.media_type && a.digest == b.digest;
  };
  if (!same(actual.config, signed_statement.config)) {
    return make_error(ErrorCode::kUnauthenticated, "the manifest's config ({}) is not the config that was signed ({})",
                      actual.config.media_type, signed_statement.config.media_type);
  }
  if (actual.layers.size() != signed_statement.layers.size()) {
    return make_error(ErrorCode::kUnauthenticated, "the manifest has {} layers, the signature {}", actual.layers.size(),
                      signed_statement.layers.size());
  }
  for (size_t i = 0; i < actual.layers.size(); ++i) {
    if (!same(actual.layers[i], signed_statement.layers[i])) {
      return make_error(ErrorCode::kUnauthenticated,
                        "manifest layer {} ({}, {}...) is not the layer signed at that position ({}, {}...): layers "
                        "were relabelled or reordered after signing",
                        i, actual.layers[i].media_type, actual.layers[i].digest.str().substr(0, 19),
                        signed_statement.layers[i].media_type, signed_statement.layers[i].digest.str().substr(0, 19));
    }
  }
  if (actual.version != signed_statement.version) {
    return make_error(ErrorCode::kUnauthenticated, "manifest version {} differs from the signed version {}",
                      actual.version, signed_statement.version);
  }
  return ok_status();
}

}  // namespace hearth::trust
