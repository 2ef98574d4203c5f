// What `inspect` shows for a store reference: the manifest, the ModelPack config facts, and
// each signature with whether the trust policy accepts it (and why not). Informational only:
// it does not re-hash blobs and does not grant anything; loading goes through resolve_model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/store/model_config.h"
#include "hearth/store/oci_manifest.h"
#include "hearth/store/reference.h"
#include "hearth/store/store.h"
#include "hearth/trust/trust_policy.h"

namespace hearth::trust {

struct SignatureInfo {
  store::Digest manifest;   // the referrer manifest holding the bundle
  std::string key_id;       // from the bundle's publicKey hint
  std::string publisher;    // policy name of the key, empty when the policy does not list it
  std::string algorithm;    // of the trusted key, when known
  std::string signed_name;  // from the statement, when the signature verified
  uint64_t signed_version = 0;
  std::string status;  // "trusted", or why the signature is not accepted
};

// An attestation about the model (e.g. the SLSA provenance of `hearth quantize`), signed as an
// in-toto statement in a sigstore bundle.
struct AttestationInfo {
  store::Digest manifest;      // the referrer manifest holding the bundle
  std::string predicate_type;  // e.g. https://slsa.dev/provenance/v1
  std::string key_id;          // from the bundle's publicKey hint
  std::string publisher;       // policy name of the key, empty when the policy does not list it
  std::string status;          // "verified" (a listed key signed it and its subject is these weights), or why not
  std::string statement_json;  // the signed statement, when the signature verified
};

struct ModelProvenance {
  std::string reference;
  store::Digest manifest;
  std::string manifest_json;
  store::Manifest parsed;
  store::ModelFacts facts;
  uint64_t version = 0;
  std::vector<SignatureInfo> signatures;
  std::vector<AttestationInfo> attestations;
};

Result<ModelProvenance> describe_model(const store::Store& st, const store::Reference& ref, const TrustPolicy& policy);
// A human-readable, multi-line rendering (for `hearth inspect` and `hearth verify -v`).
std::string format_provenance(const ModelProvenance& p);

}  // namespace hearth::trust
