#include "model_arg.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "hearth/core/atomic_file.h"
#include "hearth/core/log.h"
#include "hearth/store/audit_log.h"
#include "hearth/store/store.h"
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
        return make_error(ErrorCode::kInvalidArgument, "{}: 'default_model' must be a string", path);
      }
      return j["default_model"].get<std::string>();
    }
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInvalidArgument, "{}: invalid JSON: {}", path, e.what());
  }
  return std::string();
}

}  // namespace

Result<std::string> chosen_model_arg(const std::string& arg) {
  if (!arg.empty()) return arg;
  if (const char* env = std::getenv("HEARTH_MODEL"); env && *env) return std::string(env);
  return config_default_model();
}

Result<ResolvedModelArg> resolve_model_arg(const std::string& arg, std::string_view purpose, bool allow_unsigned) {
  HEARTH_ASSIGN_OR_RETURN(std::string chosen, chosen_model_arg(arg));
  if (chosen.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no model given: pass MODEL, set HEARTH_MODEL, or set default_model in {}", config_path());
  }
  trust::ResolveOptions ro;
  ro.allow_unsigned = allow_unsigned;
  ro.purpose = std::string(purpose);
  HEARTH_ASSIGN_OR_RETURN(trust::ResolvedModel rm, trust::resolve_model(chosen, ro));
  ResolvedModelArg out;
  out.path = rm.gguf_path();
  out.display = rm.describe();
  out.verified = !rm.is_local_path();
  out.purpose = std::string(purpose);
  if (const trust::VerifiedArtifact* a = rm.artifact()) {
    out.reference = a->reference();
    out.manifest_digest = a->manifest_digest().str();
    out.weights_digest = a->weights_digest().str();
    out.is_signed = a->is_signed();
    out.publisher_key_id = a->publisher_key_id();
    out.mapping = a->weights();
  }
  if (rm.is_local_path()) {
    std::error_code ec;
    if (!std::filesystem::exists(rm.gguf_path(), ec)) {
      Status s = make_error(ErrorCode::kNotFound, "{}: no such file", rm.gguf_path());
      record_load(out, s);
      return s;
    }
  }
  return out;
}

Result<std::shared_ptr<const MappedFile>> map_model(const ResolvedModelArg& arg) {
  if (arg.mapping != nullptr) return arg.mapping;
  if (arg.verified) {
    return make_error(ErrorCode::kInternal, "{}: a store model without its verified mapping", arg.display);
  }
  HEARTH_ASSIGN_OR_RETURN(MappedFile map, MappedFile::open(arg.path));
  return std::make_shared<const MappedFile>(std::move(map));
}

Result<std::unique_ptr<model::Model>> load_model(const ResolvedModelArg& arg, const model::LoadOptions& options) {
  auto loaded = [&]() -> Result<std::unique_ptr<model::Model>> {
    HEARTH_ASSIGN_OR_RETURN(auto map, map_model(arg));
    auto m = model::Model::load(map, options);
    if (!m.ok()) {
      // A LoRA adapter given as the model fails for want of the model's tensors: say what it is.
      auto f = gguf::parse_gguf(map->bytes(), arg.path);
      if (f.ok() && f->get_string("general.type").value_or("") == "adapter") {
        const std::string name = arg.reference.empty() ? arg.path : arg.reference;
        return make_error(ErrorCode::kInvalidArgument,
                          "{} is a LoRA adapter, not a model: run its base model with --lora {}", name, name);
      }
    }
    return m;
  }();
  record_load(arg, loaded.status());
  return loaded;
}

Result<std::unique_ptr<MappedGguf>> open_gguf(const ResolvedModelArg& arg) {
  auto opened = [&]() -> Result<std::unique_ptr<MappedGguf>> {
    auto out = std::make_unique<MappedGguf>();
    HEARTH_ASSIGN_OR_RETURN(out->map, map_model(arg));
    try {
      HEARTH_ASSIGN_OR_RETURN(out->file, gguf::parse_gguf(out->map->bytes(), out->map->path()));
    } catch (const std::bad_alloc&) {
      return make_error(ErrorCode::kResourceExhausted, "{}: out of memory while opening gguf", arg.path);
    }
    return out;
  }();
  record_load(arg, opened.status());
  return opened;
}

void record_load(const ResolvedModelArg& arg, const Status& outcome) {
  store::AuditEvent e;
  e.event = arg.purpose.empty() ? "load" : arg.purpose;
  e.ref = arg.reference.empty() ? arg.path : arg.reference;
  e.digest = arg.manifest_digest;
  e.publisher = arg.publisher_key_id;
  if (outcome.ok()) {
    e.outcome = "ok";
    e.detail = !arg.verified ? "local file, unverified" : arg.is_signed ? "loaded, verified" : "loaded, unsigned";
  } else {
    e.outcome = std::string(error_code_name(outcome.code()));
    e.detail = "load failed: " + outcome.message();
  }
  if (Status s = store::append_audit(store::default_home(), e); !s.ok()) {
    log::warn("cannot write the audit log: {}", s.message());
  }
}

Result<onnx::Session> open_onnx_model(const std::string& arg, std::string_view purpose, bool allow_unsigned,
                                      const onnx::SessionOptions& options) {
  if (arg.empty()) return make_error(ErrorCode::kInvalidArgument, "no ONNX model given");
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg r, resolve_model_arg(arg, purpose, allow_unsigned));
  auto session = r.mapping != nullptr ? onnx::open_session(r.mapping->bytes(), r.display, options)
                                      : onnx::open_session(r.path, options);
  record_load(r, session.status());
  return session;
}

}  // namespace hearth::cli
