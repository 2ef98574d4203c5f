// Signing a stored model: builds the in-toto statement for its manifest, signs it into a
// sigstore bundle, and stores the bundle as an OCI referrer of the model manifest (a manifest
// with artifactType application/vnd.dev.sigstore.bundle.v0.3+json and `subject` = the model).
#pragma once

#include <string>

#include "hearth/core/status.h"
#include "hearth/store/reference.h"
#include "hearth/store/store.h"
#include "hearth/trust/signing_key.h"

namespace hearth::trust {

struct SignResult {
  store::Digest model_manifest;
  store::Digest signature_manifest;
  std::string bundle_json;
};

// `model_name` is the name the signature claims (default: the reference's name).
Result<SignResult> sign_model(store::Store& store, const store::Reference& ref, const PrivateKey& key,
                              std::string model_name = "");

// Stores `bundle_json` as a referrer of `model_manifest` (used by sign and by imports).
Result<store::Digest> store_signature(store::Store& store, const store::Digest& model_manifest,
                                      std::string_view bundle_json);

// Attestations (e.g. the SLSA provenance `hearth quantize` signs) travel with the model as the
// same kind of referrer as signatures (a sigstore bundle), told apart by the annotation
// kAnnotationPredicateType (as GitHub's artifact attestations do). They never count as a
// signature of the model: the verifier skips them, so the annotation cannot add trust.
inline constexpr std::string_view kAnnotationPredicateType = "dev.sigstore.bundle.predicateType";

// True when a referrer manifest is an attestation rather than a model signature.
bool is_attestation(const store::Manifest& referrer);

// Stores a signed in-toto statement (a sigstore bundle) as an attestation of `model_manifest`.
Result<store::Digest> store_attestation(store::Store& store, const store::Digest& model_manifest,
                                        std::string_view bundle_json, std::string_view predicate_type);

}  // namespace hearth::trust
