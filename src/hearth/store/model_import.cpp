#include "hearth/store/model_import.h"

#include <chrono>
#include <ctime>
#include <filesystem>

#include "hearth/store/audit_log.h"
#include "hearth/store/model_config.h"

namespace hearth::store {
namespace {

std::string rfc3339_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

Result<ImportResult> import_gguf(Store& store, const std::string& path, const Reference& ref,
                                 const ImportOptions& opts) {
  if (ref.pinned()) {
    return make_error(ErrorCode::kInvalidArgument, "import needs a name:tag, not a digest (got '{}')", ref.to_string());
  }
  HEARTH_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  return import_gguf(store, file, ref, opts);
}

namespace {

Result<ImportResult> import_weights(Store& store, const MappedFile& file, const Reference& ref, const ImportOptions& opts,
                                    bool onnx) {
  if (ref.pinned()) {
    return make_error(ErrorCode::kInvalidArgument, "import needs a name:tag, not a digest (got '{}')", ref.to_string());
  }
  const std::string& path = file.path();
  ImportResult out;
  // The facts, the hash and the stored bytes all come from this one mapping: a file replaced
  // while importing cannot give one file's facts to another file's weights.
  // The parse runs in the parser sandbox: the file is a stranger's.
  HEARTH_ASSIGN_OR_RETURN(out.facts, read_model_facts_confined(file.bytes(), path, onnx));
  HEARTH_ASSIGN_OR_RETURN(FileLock write_lock, store.lock_for_write());
  file.advise_sequential();
  const auto bytes = file.bytes();
  HEARTH_ASSIGN_OR_RETURN(out.weights,
                          store.put_blob(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                         onnx ? kOnnxModelMediaType : kModelWeightMediaType));
  std::string file_name = std::filesystem::path(path).filename().string();
  out.weights.annotations[std::string(kAnnotationTitle)] = file_name;
  out.weights.annotations[std::string(kAnnotationFilepath)] = file_name;
  std::string config = model_config_json(out.facts, {out.weights.digest});
  HEARTH_ASSIGN_OR_RETURN(Descriptor cfg, store.put_blob(config, kModelConfigMediaType));
  Manifest m;
  m.artifact_type = std::string(kModelArtifactType);
  m.config = cfg;
  m.layers.push_back(out.weights);
  m.annotations[std::string(kAnnotationVersion)] = std::to_string(opts.version);
  m.annotations[std::string(kAnnotationCreated)] = opts.created.empty() ? rfc3339_now() : opts.created;
  HEARTH_ASSIGN_OR_RETURN(out.manifest, store.put_manifest(m));
  HEARTH_TRY(store.set_tag(ref.name, ref.tag, out.manifest));
  (void)append_audit(store.home(), {"import", "ok", ref.to_string(), out.manifest.str(), "", "from " + path});
  return out;
}

}  // namespace

Result<ImportResult> import_gguf(Store& store, const MappedFile& file, const Reference& ref, const ImportOptions& opts) {
  return import_weights(store, file, ref, opts, false);
}

Result<ImportResult> import_onnx(Store& store, const MappedFile& file, const Reference& ref, const ImportOptions& opts) {
  return import_weights(store, file, ref, opts, true);
}

}  // namespace hearth::store
