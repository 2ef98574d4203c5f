// The JSON adapter for OCI documents (see oci_manifest.h).
#include "hearth/store/oci_manifest.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace hearth::store {
namespace {

using json = nlohmann::json;

Status bad(std::string_view what) { return make_error(ErrorCode::kInvalidArgument, "oci document: {}", what); }

Result<std::string> get_string(const json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return bad(std::string("missing '") + key + "'");
    return std::string();
  }
  if (!it->is_string()) return bad(std::string("'") + key + "' is not a string");
  return it->get<std::string>();
}

Result<Annotations> get_annotations(const json& j) {
  Annotations out;
  auto it = j.find("annotations");
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_object()) return bad("'annotations' is not an object");
  for (auto& [k, v] : it->items()) {
    if (!v.is_string()) return bad("annotation '" + k + "' is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

Result<Descriptor> parse_descriptor(const json& j, std::string_view where) {
  if (!j.is_object()) return bad(std::string(where) + " is not an object");
  Descriptor d;
  HEARTH_ASSIGN_OR_RETURN(d.media_type, get_string(j, "mediaType", true));
  HEARTH_ASSIGN_OR_RETURN(std::string digest, get_string(j, "digest", true));
  auto parsed = Digest::parse(digest);
  if (!parsed.ok()) return parsed.status().with_context(std::string("oci document: ") + std::string(where));
  d.digest = *parsed;
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer()) return bad(std::string(where) + ": missing integer 'size'");
  int64_t s = size->get<int64_t>();
  if (s < 0) return bad(std::string(where) + ": negative size");
  d.size = static_cast<uint64_t>(s);
  HEARTH_ASSIGN_OR_RETURN(d.artifact_type, get_string(j, "artifactType", false));
  HEARTH_ASSIGN_OR_RETURN(d.annotations, get_annotations(j));
  return d;
}

json descriptor_json(const Descriptor& d) {
  json j = json::object();
  j["mediaType"] = d.media_type;
  j["digest"] = d.digest.str();
  j["size"] = d.size;
  if (!d.artifact_type.empty()) j["artifactType"] = d.artifact_type;
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  return j;
}

Result<json> parse_json(std::string_view text) {
  if (text.size() > kMaxManifestBytes) {
    return make_error(ErrorCode::kOutOfRange, "oci document: {} bytes exceeds the cap of {}", text.size(),
                      kMaxManifestBytes);
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("not valid json");
  if (!j.is_object()) return bad("top level is not an object");
  auto sv = j.find("schemaVersion");
  if (sv == j.end() || !sv->is_number_integer() || sv->get<int64_t>() != 2) {
    return bad("'schemaVersion' must be 2");
  }
  return j;
}

}  // namespace

Result<Manifest> parse_manifest(std::string_view text) {
  HEARTH_ASSIGN_OR_RETURN(json j, parse_json(text));
  Manifest m;
  HEARTH_ASSIGN_OR_RETURN(m.media_type, get_string(j, "mediaType", false));
  if (!m.media_type.empty() && m.media_type != kOciManifestMediaType) {
    return bad("unsupported manifest media type '" + m.media_type + "'");
  }
  m.media_type = kOciManifestMediaType;
  HEARTH_ASSIGN_OR_RETURN(m.artifact_type, get_string(j, "artifactType", false));
  auto cfg = j.find("config");
  if (cfg == j.end()) return bad("missing 'config'");
  HEARTH_ASSIGN_OR_RETURN(m.config, parse_descriptor(*cfg, "config"));
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) return bad("missing 'layers' array");
  for (size_t i = 0; i < layers->size(); ++i) {
    HEARTH_ASSIGN_OR_RETURN(Descriptor d, parse_descriptor((*layers)[i], fmt::format("layers[{}]", i)));
    m.layers.push_back(std::move(d));
  }
  if (auto s = j.find("subject"); s != j.end() && !s->is_null()) {
    HEARTH_ASSIGN_OR_RETURN(Descriptor d, parse_descriptor(*s, "subject"));
    m.subject = std::move(d);
  }
  HEARTH_ASSIGN_OR_RETURN(m.annotations, get_annotations(j));
  return m;
}

std::string serialize_manifest(const Manifest& m) {
  json j = json::object();
  j["schemaVersion"] = 2;
  j["mediaType"] = m.media_type;
  if (!m.artifact_type.empty()) j["artifactType"] = m.artifact_type;
  j["config"] = descriptor_json(m.config);
  j["layers"] = json::array();
  for (const auto& l : m.layers) j["layers"].push_back(descriptor_json(l));
  if (m.subject) j["subject"] = descriptor_json(*m.subject);
  if (!m.annotations.empty()) j["annotations"] = m.annotations;
  return j.dump();
}

Result<Index> parse_index(std::string_view text) {
  HEARTH_ASSIGN_OR_RETURN(json j, parse_json(text));
  Index idx;
  HEARTH_ASSIGN_OR_RETURN(idx.media_type, get_string(j, "mediaType", false));
  if (!idx.media_type.empty() && idx.media_type != kOciIndexMediaType) {
    return bad("unsupported index media type '" + idx.media_type + "'");
  }
  idx.media_type = kOciIndexMediaType;
  auto ms = j.find("manifests");
  if (ms == j.end() || !ms->is_array()) return bad("missing 'manifests' array");
  for (size_t i = 0; i < ms->size(); ++i) {
    HEARTH_ASSIGN_OR_RETURN(Descriptor d, parse_descriptor((*ms)[i], fmt::format("manifests[{}]", i)));
    idx.manifests.push_back(std::move(d));
  }
  HEARTH_ASSIGN_OR_RETURN(idx.annotations, get_annotations(j));
  return idx;
}

std::string serialize_index(const Index& idx) {
  json j = json::object();
  j["schemaVersion"] = 2;
  j["mediaType"] = idx.media_type;
  j["manifests"] = json::array();
  for (const auto& d : idx.manifests) j["manifests"].push_back(descriptor_json(d));
  if (!idx.annotations.empty()) j["annotations"] = idx.annotations;
  return j.dump();
}

Descriptor empty_config_descriptor() {
  Descriptor d;
  d.media_type = kOciEmptyMediaType;
  d.digest = sha256_of(kEmptyJson);
  d.size = kEmptyJson.size();
  return d;
}

Result<uint64_t> manifest_version(const Manifest& m) {
  auto it = m.annotations.find(std::string(kAnnotationVersion));
  if (it == m.annotations.end()) return uint64_t{0};
  uint64_t v = 0;
  const std::string& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "manifest annotation {} = '{}' is not a non-negative integer",
                      kAnnotationVersion, s.substr(0, 40));
  }
  return v;
}

}  // namespace hearth::store
