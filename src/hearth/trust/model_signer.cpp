#include "hearth/trust/model_signer.h"

#include "hearth/store/audit_log.h"
#include "hearth/trust/model_statement.h"
#include "hearth/trust/sigstore_bundle.h"

namespace hearth::trust {

namespace {

Result<store::Digest> store_referrer(store::Store& st, const store::Digest& model_manifest,
                                     std::string_view bundle_json, store::Annotations annotations) {
  HEARTH_ASSIGN_OR_RETURN(store::FileLock lock, st.lock_for_write());
  HEARTH_ASSIGN_OR_RETURN(store::Descriptor bundle, st.put_blob(bundle_json, store::kSigstoreBundleMediaType));
  HEARTH_ASSIGN_OR_RETURN(store::Descriptor empty, st.put_blob(store::kEmptyJson, store::kOciEmptyMediaType));
  HEARTH_ASSIGN_OR_RETURN(uint64_t subject_size, st.blob_size(model_manifest));
  store::Manifest m;
  m.artifact_type = std::string(store::kSigstoreBundleMediaType);
  m.config = empty;
  m.layers.push_back(bundle);
  m.subject = store::Descriptor{std::string(store::kOciManifestMediaType), model_manifest, subject_size, {}, {}};
  m.annotations = std::move(annotations);
  HEARTH_ASSIGN_OR_RETURN(store::Digest digest, st.put_manifest(m));
  HEARTH_TRY(st.add_referrer(model_manifest, digest));
  return digest;
}

}  // namespace

Result<store::Digest> store_signature(store::Store& st, const store::Digest& model_manifest,
                                      std::string_view bundle_json) {
  return store_referrer(st, model_manifest, bundle_json, {});
}

bool is_attestation(const store::Manifest& referrer) {
  auto it = referrer.annotations.find(std::string(kAnnotationPredicateType));
  return it != referrer.annotations.end() && it->second != kModelSigningPredicateType;
}

Result<store::Digest> store_attestation(store::Store& st, const store::Digest& model_manifest,
                                        std::string_view bundle_json, std::string_view predicate_type) {
  if (predicate_type.empty() || predicate_type == kModelSigningPredicateType) {
    return make_error(ErrorCode::kInvalidArgument,
                      "an attestation needs a predicate type other than the model signature's");
  }
  return store_referrer(st, model_manifest, bundle_json,
                        {{std::string(kAnnotationPredicateType), std::string(predicate_type)}});
}

Result<SignResult> sign_model(store::Store& st, const store::Reference& ref, const PrivateKey& key,
                              std::string model_name) {
  SignResult out;
  HEARTH_ASSIGN_OR_RETURN(out.model_manifest, st.resolve(ref));
  HEARTH_ASSIGN_OR_RETURN(store::Manifest m, st.read_manifest(out.model_manifest));
  // Sign only what is intact.
  HEARTH_TRY(st.verify_blob(m.config.digest));
  for (const auto& l : m.layers) HEARTH_TRY(st.verify_blob(l.digest));
  HEARTH_ASSIGN_OR_RETURN(ModelStatement s, statement_for_manifest(m, model_name.empty() ? ref.name : model_name));
  HEARTH_ASSIGN_OR_RETURN(SignatureBundle b, sign_statement(s, key));
  out.bundle_json = serialize_bundle(b);
  HEARTH_ASSIGN_OR_RETURN(out.signature_manifest, store_signature(st, out.model_manifest, out.bundle_json));
  (void)store::append_audit(st.home(), {"sign", "ok", ref.to_string(), out.model_manifest.str(),
                                        key.public_key().key_id(), "version " + std::to_string(s.version)});
  return out;
}

}  // namespace hearth::trust
