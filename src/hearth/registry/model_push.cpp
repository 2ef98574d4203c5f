// push_model (see model_transfer.h).
#include "hearth/core/log.h"
#include "hearth/registry/model_transfer.h"
#include "hearth/store/audit_log.h"
#include "hearth/trust/model_signer.h"

namespace hearth::registry {
namespace {

using store::Digest;

Status push_blobs(const RegistryClient& client, const store::Store& st, const std::string& name,
                  const store::Manifest& m) {
  HEARTH_TRY(client.upload_blob(name, m.config, st.blob_path(m.config.digest)));
  for (const auto& l : m.layers) HEARTH_TRY(client.upload_blob(name, l, st.blob_path(l.digest)));
  return ok_status();
}

// Adds `referrer` to the tag-schema index "sha256-<hex of subject>".
Status update_fallback_index(const RegistryClient& client, const std::string& name, const Digest& subject,
                             const store::Descriptor& referrer) {
  std::string tag = referrers_fallback_tag(subject);
  store::Index index;
  auto existing = client.get_manifest(name, tag);
  if (existing.ok()) {
    HEARTH_ASSIGN_OR_RETURN(index, store::parse_index(existing->bytes));
  } else if (existing.status().code() != ErrorCode::kNotFound) {
    return existing.status();
  }
  for (const auto& d : index.manifests) {
    if (d.digest == referrer.digest) return ok_status();
  }
  index.manifests.push_back(referrer);
  return client.put_manifest(name, tag, store::serialize_index(index), std::string(store::kOciIndexMediaType)).status();
}

}  // namespace

Result<PushResult> push_model(store::Store& st, const store::Reference& ref, const PushOptions& opts) {
  PushResult out;
  RegistryClient client(opts.target, opts.remote);
  HEARTH_ASSIGN_OR_RETURN(out.manifest, st.resolve(ref));
  HEARTH_ASSIGN_OR_RETURN(std::string bytes, st.read_blob(out.manifest, store::kMaxManifestBytes));
  HEARTH_ASSIGN_OR_RETURN(store::Manifest m, store::parse_manifest(bytes));
  for (const auto* d : {&m.config}) HEARTH_TRY(st.verify_blob(d->digest));
  for (const auto& l : m.layers) HEARTH_TRY(st.verify_blob(l.digest));
  HEARTH_TRY(push_blobs(client, st, ref.name, m));
  HEARTH_TRY(client
                 .put_manifest(ref.name, ref.pinned() ? out.manifest.str() : ref.tag, bytes,
                               std::string(store::kOciManifestMediaType))
                 .status());
  HEARTH_ASSIGN_OR_RETURN(std::vector<Digest> referrers, st.referrers(out.manifest));
  for (const auto& r : referrers) {
    HEARTH_ASSIGN_OR_RETURN(std::string rbytes, st.read_blob(r, store::kMaxManifestBytes));
    HEARTH_ASSIGN_OR_RETURN(store::Manifest rm, store::parse_manifest(rbytes));
    HEARTH_TRY(push_blobs(client, st, ref.name, rm));
    HEARTH_ASSIGN_OR_RETURN(bool processed,
                            client.put_manifest(ref.name, r.str(), rbytes, std::string(store::kOciManifestMediaType)));
    if (!processed) {
      store::Descriptor d{std::string(store::kOciManifestMediaType), r, rbytes.size(), rm.artifact_type,
                          rm.annotations};
      HEARTH_TRY(update_fallback_index(client, ref.name, out.manifest, d));
      out.used_referrers_fallback = true;
    }
    ++(trust::is_attestation(rm) ? out.attestations : out.signatures);
  }
  (void)store::append_audit(st.home(), {"push", "ok", ref.to_string(), out.manifest.str(), "",
                                        "to " + opts.target + ", " + std::to_string(out.signatures) + " signatures, " +
                                            std::to_string(out.attestations) + " attestations"});
  return out;
}

}  // namespace hearth::registry
