#include "hearth/trust/verifier.h"

#include "hearth/core/log.h"
#include "hearth/store/audit_log.h"
#include "hearth/store/reference.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/sigstore_bundle.h"
#include "hearth/trust/version_lock.h"

namespace hearth::trust {
namespace {

using store::Digest;
using store::Manifest;

struct Accepted {
  const Publisher* publisher = nullptr;
  ModelStatement statement;
};

// Checks one referrer; returns the accepted signature or why it was not accepted.
// `requested_name`: the name the model was asked for (its reference's name); the publisher
// must be trusted for it as well as for the name it signed, so that a model signed by one
// publisher cannot stand in under a name that the policy reserves for another.
Result<Accepted> check_signature(const store::Store& st, const TrustPolicy& policy, const Digest& referrer,
                                 const Manifest& model, std::string_view requested_name) {
  HEARTH_ASSIGN_OR_RETURN(Manifest sig_manifest, st.read_manifest(referrer));
  if (sig_manifest.artifact_type != store::kSigstoreBundleMediaType || sig_manifest.layers.empty() ||
      is_attestation(sig_manifest)) {
    return make_error(ErrorCode::kNotFound, "referrer {} is not a signature", referrer.str());
  }
  HEARTH_ASSIGN_OR_RETURN(std::string bundle_json, st.read_blob(sig_manifest.layers[0].digest, kMaxBundleBytes));
  HEARTH_ASSIGN_OR_RETURN(SignatureBundle bundle, parse_bundle(bundle_json));
  const Publisher* pub = policy.find_by_key_id(bundle.key_hint);
  if (pub == nullptr) {
    return make_error(ErrorCode::kUnauthenticated,
                      "signed by key {} which the trust policy does not list (add it with 'hearth trust add KEY.pub "
                      "--models PATTERN')",
                      bundle.key_hint.substr(0, 16));
  }
  HEARTH_ASSIGN_OR_RETURN(ModelStatement statement, open_bundle(bundle, pub->key));
  HEARTH_TRY(match_statement(statement, model));
  if (!pub->may_publish(statement.model_name)) {
    return make_error(ErrorCode::kUnauthenticated, "publisher '{}' (key {}) is not trusted for model name '{}'",
                      pub->name, pub->key.key_id().substr(0, 16), statement.model_name);
  }
  if (!requested_name.empty() && requested_name != statement.model_name && !pub->may_publish(requested_name)) {
    return make_error(ErrorCode::kUnauthenticated,
                      "signed by publisher '{}' as '{}', but asked for as '{}', a name the policy does not trust "
                      "'{}' for",
                      pub->name, statement.model_name, requested_name, pub->name);
  }
  if (statement.version < pub->min_version || (pub->max_version != 0 && statement.version > pub->max_version)) {
    return make_error(ErrorCode::kPermissionDenied,
                      "version {} of '{}' is outside the versions the policy accepts from '{}'", statement.version,
                      statement.model_name, pub->name);
  }
  return Accepted{pub, std::move(statement)};
}

}  // namespace

Result<VerifiedArtifact> ArtifactVerifier::verify(const store::Reference& ref, const VerifyOptions& opts) const {
  auto r = verify_impl(ref, opts);
  store::AuditEvent e;
  e.ref = ref.to_string();
  if (r.ok()) {
    e.event = "verify";
    e.outcome = "ok";
    e.digest = r->manifest_digest().str();
    e.publisher = r->publisher_key_id();
    e.detail = r->is_signed()                  ? "signed by " + r->publisher() + " version " + std::to_string(r->version())
               : !r->local_source().empty() ? "imported locally from " + r->local_source() + " by this host"
                                            : "unsigned, allowed by operator";
  } else {
    e.event = "refuse";
    e.outcome = std::string(error_code_name(r.status().code()));
    e.detail = r.status().message();
  }
  (void)store::append_audit(store_.home(), e);
  return r;
}

Result<VerifiedArtifact> ArtifactVerifier::verify_impl(const store::Reference& ref, const VerifyOptions& opts) const {
  HEARTH_ASSIGN_OR_RETURN(Digest digest, store_.resolve(ref));
  HEARTH_ASSIGN_OR_RETURN(Manifest m, store_.read_manifest(digest));
  const store::Descriptor* weights = nullptr;
  for (const auto& l : m.layers) {
    if (store::is_weight_media_type(l.media_type)) {
      weights = &l;
      break;
    }
  }
  if (weights == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "'{}' has no weight layer ({} or {})", ref.to_string(),
                      store::kModelWeightMediaType, store::kOnnxModelMediaType);
  }
  // 1. Integrity of every blob.
  std::vector<const store::Descriptor*> blobs = {&m.config};
  for (const auto& l : m.layers) blobs.push_back(&l);
  for (const auto* d : blobs) {
    auto size = store_.blob_size(d->digest);
    if (!size.ok()) return size.status().with_context("'" + ref.to_string() + "'");
    if (*size != d->size) {
      return make_error(ErrorCode::kDataLoss, "'{}': blob {} has {} bytes, the manifest says {}", ref.to_string(),
                        d->digest.str(), *size, d->size);
    }
    if (d == weights) continue;  // hashed below, through the mapping the engine will use
    Status intact = store_.verify_blob(d->digest);
    if (!intact.ok()) return intact.with_context("'" + ref.to_string() + "' refused");
  }
  VerifiedArtifact a;
  auto mapped = store_.map_verified_blob(weights->digest, weights->size);
  if (!mapped.ok()) return mapped.status().with_context("'" + ref.to_string() + "' refused");
  a.weights_ = std::make_shared<const MappedFile>(std::move(*mapped));
  a.gguf_path_ = store_.blob_path(weights->digest);
  a.gguf_size_ = weights->size;
  a.manifest_digest_ = digest;
  a.weights_digest_ = weights->digest;
  a.reference_ = ref.to_string();
  a.model_name_ = ref.name;
  HEARTH_ASSIGN_OR_RETURN(a.version_, store::manifest_version(m));

  HEARTH_TRY(check_signatures(digest, m, opts, a));
  return a;
}

Status ArtifactVerifier::check_signatures(const Digest& digest, const Manifest& m, const VerifyOptions& opts,
                                          VerifiedArtifact& a) const {
  // 2. Signatures.
  HEARTH_ASSIGN_OR_RETURN(std::vector<Digest> referrers, store_.referrers(digest));
  std::optional<Accepted> accepted;
  Status first_refusal;
  for (const auto& r : referrers) {
    auto got = check_signature(store_, policy_, r, m, a.model_name_);
    if (got.ok()) {
      accepted = std::move(*got);
      break;
    }
    if (got.status().code() == ErrorCode::kNotFound) continue;  // another kind of referrer
    if (got.status().code() == ErrorCode::kDataLoss) return got.status();
    a.notes_.push_back(got.status().message());
    if (first_refusal.ok()) first_refusal = got.status();
  }
  if (!accepted) {
    // An unsigned model that this host imported from a local file is the operator's local
    // choice, as that file would be: allowed unless the policy denies local paths.
    if (first_refusal.ok()) {
      if (std::optional<std::string> source = store_.local_import_source(digest)) {
        if (!policy_.local_paths_allowed) {
          return make_error(ErrorCode::kPermissionDenied,
                            "'{}' refused: it was imported locally from {} by this host and is not signed, and the "
                            "policy denies local models (\"local_paths\": \"deny\"); sign it (hearth sign, or "
                            "hearth import --sign-key KEY)",
                            a.reference_, *source);
        }
        a.local_source_ = *source;
        a.notes_.push_back("imported locally from " + *source + " by this host (unsigned)");
        return ok_status();
      }
    }
    if (opts.allow_unsigned || policy_.allow_unsigned) {
      a.notes_.push_back(first_refusal.ok() ? "unsigned; loaded because unsigned models are allowed"
                                            : "no trusted signature (" + first_refusal.message() +
                                                  "); loaded because unsigned models are allowed");
      return ok_status();
    }
    if (!first_refusal.ok()) {
      return make_error(first_refusal.code(), "'{}' refused: {}", a.reference_, first_refusal.message());
    }
    return make_error(ErrorCode::kUnauthenticated,
                      "'{}' refused: the model is not signed (sign it with 'hearth sign', or pass --allow-unsigned for "
                      "a local experiment)",
                      a.reference_);
  }
  a.model_name_ = accepted->statement.model_name;
  a.publisher_ = accepted->publisher->name;
  a.publisher_key_id_ = accepted->publisher->key.key_id();
  // 3. Rollback protection.
  VersionLock lock(store_.home());
  if (opts.allow_downgrade) {
    a.notes_.push_back("version lock not checked: a downgrade the operator signed");
  } else if (opts.record_version) {
    HEARTH_TRY(lock.check_and_record(a.model_name_, a.publisher_key_id_, a.version_));
  } else {
    HEARTH_TRY(lock.check(a.model_name_, a.version_));
  }
  return ok_status();
}

Status ArtifactVerifier::check_signature_only(const std::string& what, const Digest& manifest,
                                              const VerifyOptions& opts) const {
  HEARTH_ASSIGN_OR_RETURN(Manifest m, store_.read_manifest(manifest));
  VerifiedArtifact a;
  a.reference_ = what;
  if (auto ref = store::parse_reference(what); ref.ok()) a.model_name_ = ref->name;
  HEARTH_ASSIGN_OR_RETURN(a.version_, store::manifest_version(m));
  VerifyOptions checking = opts;
  checking.record_version = false;
  return check_signatures(manifest, m, checking, a);
}

}  // namespace hearth::trust
