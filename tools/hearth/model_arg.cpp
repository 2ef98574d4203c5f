#include "model_arg.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "hearth/core/atomic_file.h"
#include "hearth/core/log.h"
#include "hearth/trust/model_resolver.h"

namespace hearth::cli {

std::string config_path() {
  if (const char* c = std::getenv("HEARTH_CONFIG"); c && *c) return c;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/hearth/config.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.config/hearth/config.json";
  return ".hearth-config.json";
}

namespace {

Result<std::string> config_default_model() {
  const std::string path = config_path();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::string();
  HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(path, 1 << 20));
  try {
    auto j = nlohmann::json::parse(text);
    if (j.contains("default_model")) {
      if (!j["default_model"].is_string()) {
        return make_error(ErrorCode::kInvalidArgument, path, ": 'default_model' must be a string");
      }
      return j["default_model"].get<std::string>();
    }
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, path, ": invalid JSON: ", e.what());
  }
  return std::string();
}

}  // namespace

Result<ResolvedModelArg> resolve_model_arg(const std::string& arg, std::string_view purpose, bool allow_unsigned) {
  std::string chosen = arg;
  if (chosen.empty()) {
    if (const char* env = std::getenv("HEARTH_MODEL"); env && *env) chosen = env;
  }
  if (chosen.empty()) {
    HEARTH_ASSIGN_OR_RETURN(chosen, config_default_model());
  }
  if (chosen.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no model given: pass MODEL, set HEARTH_MODEL, or set default_model in ", config_path());
  }
  trust::ResolveOptions ro;
  ro.allow_unsigned = allow_unsigned;
  ro.purpose = std::string(purpose);
  HEARTH_ASSIGN_OR_RETURN(trust::ResolvedModel rm, trust::resolve_model(chosen, ro));
  if (rm.is_local_path()) {
    std::error_code ec;
    if (!std::filesystem::exists(rm.gguf_path(), ec)) {
      return make_error(ErrorCode::kNotFound, rm.gguf_path(), ": no such file");
    }
  }
  ResolvedModelArg out{rm.gguf_path(), rm.describe(), !rm.is_local_path(), {}, {}, false};
  if (const trust::VerifiedArtifact* a = rm.artifact()) {
    out.reference = a->reference();
    out.manifest_digest = a->manifest_digest().str();
    out.is_signed = a->is_signed();
  }
  return out;
}

}  // namespace hearth::cli
