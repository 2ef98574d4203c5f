#include "hearth/registry/model_admission.h"

#include "hearth/trust/trust_policy.h"
#include "hearth/trust/verifier.h"

namespace hearth::registry {
namespace {

Status drop_pin_if_untagged(store::Store& st, const std::string& name, const store::Digest& d) {
  return st.update_refs([&](store::RefsTable& t) {
    auto it = t.repos.find(name);
    if (it == t.repos.end()) return ok_status();
    for (const auto& [tag, td] : it->second.tags) {
      if (td == d) return ok_status();
    }
    it->second.manifests.erase(d);
    if (it->second.manifests.empty() && it->second.tags.empty()) t.repos.erase(it);
    return ok_status();
  });
}

}  // namespace

Status precheck_signature(const store::Store& st, const std::string& what, const store::Digest& manifest,
                          const AdmitOptions& opts) {
  std::string policy_path = opts.policy_path.empty() ? trust::default_policy_path(st.home()) : opts.policy_path;
  HEARTH_ASSIGN_OR_RETURN(trust::TrustPolicy policy, trust::load_policy(policy_path));
  trust::ArtifactVerifier verifier(st, std::move(policy));
  trust::VerifyOptions vo;
  vo.allow_unsigned = opts.allow_unsigned;
  return verifier.check_signature_only(what, manifest, vo);
}

Result<trust::VerifiedArtifact> admit_model(store::Store& st, const std::string& name, const std::string& tag,
                                            const store::Digest& manifest, const AdmitOptions& opts) {
  HEARTH_TRY(st.update_refs([&](store::RefsTable& t) {
    t.repos[name].manifests.insert(manifest);
    return ok_status();
  }));
  std::string policy_path = opts.policy_path.empty() ? trust::default_policy_path(st.home()) : opts.policy_path;
  HEARTH_ASSIGN_OR_RETURN(trust::TrustPolicy policy, trust::load_policy(policy_path));
  trust::ArtifactVerifier verifier(st, std::move(policy));
  trust::VerifyOptions vo;
  vo.allow_unsigned = opts.allow_unsigned;
  vo.record_version = opts.record_version;
  auto verified = verifier.verify(store::Reference{name, "", manifest}, vo);
  if (!verified.ok()) {
    (void)drop_pin_if_untagged(st, name, manifest);
    return verified.status();
  }
  if (!tag.empty()) HEARTH_TRY(st.set_tag(name, tag, manifest));
  return verified;
}

}  // namespace hearth::registry
