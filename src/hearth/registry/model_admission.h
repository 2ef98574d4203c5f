// Admitting a model that arrived from outside (a registry or a bundle) into the store's
// references: it is pinned under its name, verified against the trust policy, and only then
// tagged. A refused model loses its pin again (its blobs stay until gc).
#pragma once

#include <string>

#include "hearth/core/status.h"
#include "hearth/store/store.h"
#include "hearth/trust/verified_artifact.h"

namespace hearth::registry {

struct AdmitOptions {
  bool allow_unsigned = false;
  std::string policy_path;  // empty: <home>/trust/policy.json
  // Advance the version lock (the highest version seen of the name) on admission. The fleet
  // agent admits without it and records the version only once the model passed its gates.
  bool record_version = true;
};

// The signature check alone (trust::ArtifactVerifier::check_signature_only), for a manifest
// whose signature referrers are stored but whose layers are not yet downloaded.
Status precheck_signature(const store::Store& st, const std::string& what, const store::Digest& manifest,
                          const AdmitOptions& opts);

// Parses the verified weights (GGUF, else ONNX) in the parser sandbox
// (store::read_model_facts_confined); admit_model refuses a model that does not parse.
Status parse_weights_confined(const trust::VerifiedArtifact& a, const std::string& name);

// `tag` may be empty (pin only).
Result<trust::VerifiedArtifact> admit_model(store::Store& st, const std::string& name, const std::string& tag,
                                            const store::Digest& manifest, const AdmitOptions& opts);

}  // namespace hearth::registry
