#include "hearth/registry/model_admission.h"

#include <cstring>

#include "hearth/store/model_config.h"

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

Status parse_weights_confined(const trust::VerifiedArtifact& a, const std::string& name) {
  const auto bytes = a.weights()->bytes();
  const bool gguf = bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0;
  auto facts = store::read_model_facts_confined(bytes, name + " (" + a.weights_digest().str() + ")", !gguf);
  if (!facts.ok()) {
    return Status(facts.status().code(), "refused: the weights do not parse: " + facts.status().message());
  }
  return ok_status();
}

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
  // Signed is not the same as well-formed: the weights are parsed too, in the parser sandbox,
  // before the model gets a tag.
  if (Status parsed = parse_weights_confined(*verified, name); !parsed.ok()) {
    (void)drop_pin_if_untagged(st, name, manifest);
    return parsed;
  }
  if (!tag.empty()) HEARTH_TRY(st.set_tag(name, tag, manifest));
  return verified;
}

}  // namespace hearth::registry
