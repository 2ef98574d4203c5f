// Provenance statements (see provenance.h). nlohmann/json is seen only by this file.
#include "hearth/quantize/provenance.h"

#include <ctime>
#include <filesystem>

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

std::string provenance_json(const QuantizeProvenance& p) {
  ordered_json params = {
      {"recipe", p.recipe}, {"file_type", p.file_type}, {"pure", p.pure}, {"allow_requantize", p.allow_requantize}};
  if (!p.output_tensor_type.empty()) params["output_tensor_type"] = p.output_tensor_type;
  if (!p.token_embedding_type.empty()) params["token_embedding_type"] = p.token_embedding_type;
  if (p.imatrix) params["imatrix"] = p.imatrix->name;
  ordered_json deps = ordered_json::array({descriptor(p.input, "input-model")});
  if (p.imatrix) deps.push_back(descriptor(*p.imatrix, "imatrix"));
  ordered_json st = {
      {"_type", kInTotoStatementV1},
      {"subject", ordered_json::array({{{"name", p.output.name}, {"digest", {{"sha256", p.output.sha256}}}}})},
      {"predicateType", kSlsaProvenanceV1},
      {"predicate",
       {{"buildDefinition",
         {{"buildType", kQuantizeBuildType}, {"externalParameters", params}, {"resolvedDependencies", deps}}},
        {"runDetails",
         {{"builder", {{"id", kHearthBuilderId}, {"version", {{"hearth", p.hearth_version}}}}},
          {"metadata", {{"startedOn", rfc3339(p.started_unix)}, {"finishedOn", rfc3339(p.finished_unix)}}}}}}},
  };
  return st.dump(2) + "\n";
}

std::string provenance_path_for(const std::string& output_path) { return output_path + ".provenance.json"; }

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
