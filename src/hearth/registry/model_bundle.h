// Air-gapped transfer: `hearth bundle export REF FILE` writes an OCI image-layout tarball
// (oci-layout, index.json, blobs/sha256/<hex>) holding the model, its config and weights, and
// its signature referrers; `bundle import FILE` reads it with no network, checks every blob's
// digest as it streams, and admits each model only after trust verification.
#pragma once

#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/registry/model_admission.h"
#include "hearth/store/reference.h"
#include "hearth/store/store.h"

namespace hearth::registry {

struct BundleExport {
  store::Digest manifest;
  size_t blobs = 0;
  size_t signatures = 0;
  size_t attestations = 0;
};

Result<BundleExport> export_bundle(const store::Store& st, const store::Reference& ref, const std::string& file);

struct BundleImport {
  std::vector<std::string> admitted;  // "name:tag (summary)"
  size_t blobs = 0;
};

Result<BundleImport> import_bundle(store::Store& st, const std::string& file, const AdmitOptions& opts);

}  // namespace hearth::registry
