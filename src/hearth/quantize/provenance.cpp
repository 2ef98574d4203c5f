// Provenance statements (see provenance.h). nlohmann/json is seen only by this file.
#include "hearth/quantize/provenance.h"

#include <ctime>
#include <filesystem>
#include <variant>

#include <nlohmann/json.hpp>

#include "hearth/core/atomic_file.h"
#include "hearth/core/sha256.h"

namespace hearth::quantize {
namespace {

using nlohmann::ordered_json;

std::string rfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

ordered_json descriptor(const FileDigest& d, std::string_view role) {
  return ordered_json{{"name", d.name}, {"digest", {{"sha256", d.sha256}}}, {"annotations", {{"role", role}}}};
}

}  // namespace

std::string build_provenance_json(const BuildProvenance& p) {
  ordered_json params = ordered_json::object();
  for (const BuildParameter& bp : p.parameters) {
    std::visit([&](const auto& v) { params[bp.key] = v; }, bp.value);
  }
  ordered_json deps = ordered_json::array();
  for (const BuildDependency& d : p.dependencies) deps.push_back(descriptor(d.file, d.role));
  ordered_json st = {
      {"_type", kInTotoStatementV1},
      {"subject", ordered_json::array({{{"name", p.output.name}, {"digest", {{"sha256", p.output.sha256}}}}})},
      {"predicateType", kSlsaProvenanceV1},
      {"predicate",
       {{"buildDefinition",
         {{"buildType", p.build_type}, {"externalParameters", params}, {"resolvedDependencies", deps}}},
        {"runDetails",
         {{"builder", {{"id", kHearthBuilderId}, {"version", {{"hearth", p.hearth_version}}}}},
          {"metadata", {{"startedOn", rfc3339(p.started_unix)}, {"finishedOn", rfc3339(p.finished_unix)}}}}}}},
  };
  return st.dump(2) + "\n";
}

std::string provenance_json(const QuantizeProvenance& p) {
  BuildProvenance b;
  b.build_type = kQuantizeBuildType;
  b.output = p.output;
  b.parameters = {{"recipe", p.recipe},
                  {"file_type", static_cast<int64_t>(p.file_type)},
                  {"pure", p.pure},
                  {"allow_requantize", p.allow_requantize}};
  if (!p.output_tensor_type.empty()) b.parameters.push_back({"output_tensor_type", p.output_tensor_type});
  if (!p.token_embedding_type.empty()) b.parameters.push_back({"token_embedding_type", p.token_embedding_type});
  if (p.imatrix) b.parameters.push_back({"imatrix", p.imatrix->name});
  b.dependencies.push_back({p.input, "input-model"});
  if (p.imatrix) b.dependencies.push_back({*p.imatrix, "imatrix"});
  b.hearth_version = p.hearth_version;
  b.started_unix = p.started_unix;
  b.finished_unix = p.finished_unix;
  return build_provenance_json(b);
}

std::string provenance_path_for(const std::string& output_path) { return output_path + ".provenance.json"; }

Status write_build_provenance(const std::string& statement_path, const std::string& output_path, BuildProvenance p) {
  namespace fs = std::filesystem;
  HEARTH_ASSIGN_OR_RETURN(p.output.sha256, sha256_file_hex(output_path));
  p.output.name = fs::path(output_path).filename().string();
  for (BuildDependency& d : p.dependencies) {
    if (!d.file.sha256.empty()) continue;
    HEARTH_ASSIGN_OR_RETURN(d.file.sha256, sha256_file_hex(d.file.name));
    d.file.name = fs::path(d.file.name).filename().string();
  }
  return write_file_atomic(statement_path, build_provenance_json(p));
}

Status write_provenance(const std::string& statement_path, const std::string& output_path,
                        const std::string& input_path, const std::string& imatrix_path, QuantizeProvenance p) {
  namespace fs = std::filesystem;
  HEARTH_ASSIGN_OR_RETURN(p.output.sha256, sha256_file_hex(output_path));
  p.output.name = fs::path(output_path).filename().string();
  if (p.input.sha256.empty()) {
    HEARTH_ASSIGN_OR_RETURN(p.input.sha256, sha256_file_hex(input_path));
  }
  if (p.input.name.empty()) p.input.name = fs::path(input_path).filename().string();
  if (!imatrix_path.empty()) {
    FileDigest d;
    HEARTH_ASSIGN_OR_RETURN(d.sha256, sha256_file_hex(imatrix_path));
    d.name = fs::path(imatrix_path).filename().string();
    p.imatrix = d;
  }
  return write_file_atomic(statement_path, provenance_json(p));
}

}  // namespace hearth::quantize
