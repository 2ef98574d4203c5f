#include "signed_import.h"

#include <cstdio>

#include "hearth/core/atomic_file.h"
#include "hearth/quantize/provenance.h"
#include "hearth/store/model_import.h"
#include "hearth/store/store.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/sigstore_bundle.h"

namespace hearth::cli {

namespace {

Status import_signed_output(const std::string& file, const std::string& import_ref, uint64_t version,
                            const std::optional<trust::PrivateKey>& key, const std::string& provenance_bundle) {
  HEARTH_ASSIGN_OR_RETURN(store::Reference ref, store::parse_reference(import_ref));
  HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(store::default_home()));
  store::ImportOptions io;
  io.version = version;
  HEARTH_ASSIGN_OR_RETURN(store::ImportResult r, store::import_gguf(st, file, ref, io));
  HEARTH_TRY(st.record_local_import(r.manifest, file));  // written here by this host's operator
  std::printf("imported as %s (%s)\n", ref.to_string().c_str(), r.manifest.str().c_str());
  if (!key) {
    std::fprintf(stderr,
                 "note: %s is unsigned and carries no provenance (it runs on this host as a local import); pass "
                 "--sign-key KEY to sign both\n",
                 ref.to_string().c_str());
    return ok_status();
  }
  HEARTH_TRY(trust::sign_model(st, ref, *key).status());
  std::printf("signed %s with key %s\n", ref.to_string().c_str(), key->public_key().key_id().substr(0, 16).c_str());
  if (!provenance_bundle.empty()) {
    HEARTH_ASSIGN_OR_RETURN(store::Digest a,
                            trust::store_attestation(st, r.manifest, provenance_bundle, quantize::kSlsaProvenanceV1));
    std::printf("provenance attestation: %s\n", a.str().c_str());
  }
  return ok_status();
}

}  // namespace

Result<std::optional<trust::PrivateKey>> load_signing_flags(const std::string& sign_key, bool no_provenance,
                                                            const std::string& import_ref) {
  std::optional<trust::PrivateKey> key;
  if (!sign_key.empty()) {
    if (no_provenance) {
      return make_error(ErrorCode::kInvalidArgument, "--sign-key signs the provenance statement; drop --no-provenance");
    }
    HEARTH_ASSIGN_OR_RETURN(key, trust::PrivateKey::load(sign_key));
  }
  if (!import_ref.empty()) {
    HEARTH_ASSIGN_OR_RETURN(store::Reference ref, store::parse_reference(import_ref));
    if (ref.pinned()) {
      return make_error(ErrorCode::kInvalidArgument, "--import needs a name:tag, not a digest (got '{}')", import_ref);
    }
  }
  return key;
}

Status sign_and_import_output(const std::string& file, const std::optional<trust::PrivateKey>& key,
                              const std::string& import_ref, uint64_t version) {
  std::string bundle_json;
  if (key) {
    HEARTH_ASSIGN_OR_RETURN(std::string statement, read_file(quantize::provenance_path_for(file), 16 << 20));
    HEARTH_ASSIGN_OR_RETURN(trust::SignatureBundle b, trust::sign_in_toto(statement, *key));
    bundle_json = trust::serialize_bundle(b);
    const std::string path = file + ".provenance.sigstore.json";
    HEARTH_TRY(write_file_atomic(path, bundle_json));
    std::printf("signed provenance: %s (key %s)\n", path.c_str(), key->public_key().key_id().substr(0, 16).c_str());
  }
  if (import_ref.empty()) return ok_status();
  return import_signed_output(file, import_ref, version, key, bundle_json);
}

}  // namespace hearth::cli
