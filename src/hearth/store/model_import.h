// Importing a local GGUF file as a ModelPack artifact: weight layer + config with the file's
// facts + manifest (artifactType application/vnd.cncf.model.manifest.v1+json) + tag.
#pragma once

#include <cstdint>
#include <string>

#include "hearth/core/status.h"
#include "hearth/store/digest.h"
#include "hearth/store/model_config.h"
#include "hearth/store/reference.h"
#include "hearth/store/store.h"

namespace hearth::store {

struct ImportOptions {
  uint64_t version = 1;  // the org.hearth.version annotation (monotonic per name)
  std::string created;   // RFC 3339; empty: now
};

struct ImportResult {
  Digest manifest;
  Descriptor weights;
  ModelFacts facts;
};

Result<ImportResult> import_gguf(Store& store, const std::string& path, const Reference& ref,
                                 const ImportOptions& opts);
// As above, from a file already mapped: its facts, hash and stored bytes all come from it.
Result<ImportResult> import_gguf(Store& store, const MappedFile& file, const Reference& ref, const ImportOptions& opts);
// An ONNX model (a vision, audio or sensor model), as one layer of kOnnxModelMediaType with a
// config of format "onnx"; checked by the onnx loader first (external data is refused).
Result<ImportResult> import_onnx(Store& store, const MappedFile& file, const Reference& ref, const ImportOptions& opts);

}  // namespace hearth::store
