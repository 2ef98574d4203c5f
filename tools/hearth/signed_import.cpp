#include "signed_import.h"

#include <cstdio>

#include "hearth/quantize/provenance.h"
#include "hearth/store/model_import.h"
#include "hearth/store/store.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/sigstore_bundle.h"

namespace hearth::cli {

Status import_signed_output(const std::string& file, const std::string& import_ref, uint64_t version,
                            const std::optional<trust::PrivateKey>& key, const std::string& provenance_bundle) {
  HEARTH_ASSIGN_OR_RETURN(store::Reference ref, store::parse_reference(import_ref));
  HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(store::default_home()));
  store::ImportOptions io;
  io.version = version;
  HEARTH_ASSIGN_OR_RETURN(store::ImportResult r, store::import_gguf(st, file, ref, io));
  std::printf("imported as %s (%s)\n", ref.to_string().c_str(), r.manifest.str().c_str());
  if (!key) {
    std::fprintf(stderr, "note: %s is unsigned and carries no provenance; pass --sign-key KEY to sign both\n",
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

}  // namespace hearth::cli
