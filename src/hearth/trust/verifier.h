// ArtifactVerifier: checks a store reference before load. In order:
//   1. the manifest's bytes match its digest, and every config and layer blob re-hashes to
//      its digest with the declared size (DataLoss otherwise);
//   2. a referrer signature (sigstore bundle) verifies with a key the policy trusts for the
//      signed model name, and lists exactly the manifest's files and version
//      (Unauthenticated otherwise, or when unsigned and unsigned models are not allowed);
//   3. the version is within the publisher's bounds and not below the highest version seen
//      for that name from any trusted key (PermissionDenied: rollback).
// Every outcome is written to the audit log.
#pragma once

#include <string>

#include "hearth/core/status.h"
#include "hearth/store/reference.h"
#include "hearth/store/store.h"
#include "hearth/trust/trust_policy.h"
#include "hearth/trust/verified_artifact.h"

namespace hearth::trust {

struct VerifyOptions {
  bool allow_unsigned = false;  // also allowed when the policy says so
  bool record_version = true;   // update the rollback state on success
  // A deliberate downgrade that the operator signed (a fleet rollout with --allow-downgrade, or
  // the controller's rollback of an aborted batch): step 3 is skipped and nothing is recorded.
  bool allow_downgrade = false;
};

class ArtifactVerifier {
 public:
  ArtifactVerifier(const store::Store& store, TrustPolicy policy) : store_(store), policy_(std::move(policy)) {}

  Result<VerifiedArtifact> verify(const store::Reference& ref, const VerifyOptions& opts) const;
  // Steps 2 and 3 only, for a manifest whose signature referrers are in the store but whose
  // config and layers are not yet: pull calls it before downloading any layer blob, so an
  // unsigned, untrusted or rolled-back model costs no download. Records nothing.
  // `what` names the model in messages ("acme/stories:v1").
  Status check_signature_only(const std::string& what, const store::Digest& manifest, const VerifyOptions& opts) const;
  const TrustPolicy& policy() const { return policy_; }

 private:
  Result<VerifiedArtifact> verify_impl(const store::Reference& ref, const VerifyOptions& opts) const;
  // Steps 2 and 3 into `a` (model_name_, version_ and reference_ set by the caller).
  Status check_signatures(const store::Digest& digest, const store::Manifest& m, const VerifyOptions& opts,
                          VerifiedArtifact& a) const;
  const store::Store& store_;
  TrustPolicy policy_;
};

}  // namespace hearth::trust
