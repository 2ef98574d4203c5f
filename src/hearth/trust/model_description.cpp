#include "hearth/trust/model_description.h"

#include <nlohmann/json.hpp>

#include "hearth/trust/model_signer.h"
#include "hearth/trust/model_statement.h"
#include "hearth/trust/sigstore_bundle.h"

namespace hearth::trust {
namespace {

// Checks an attestation bundle: a key the policy lists signed it, and one of the statement's
// subjects is a weight layer of the model (by sha256).
void check_attestation(const std::string& bundle_json, const TrustPolicy& policy, const store::Manifest& model,
                       AttestationInfo& info) {
  auto bundle = parse_bundle(bundle_json);
  if (!bundle.ok()) {
    info.status = bundle.status().message();
    return;
  }
  info.key_id = bundle->key_hint;
  const Publisher* pub = policy.find_by_key_id(info.key_id);
  if (pub == nullptr) {
    info.status = "key not in the trust policy";
    return;
  }
  info.publisher = pub->name;
  auto statement = open_in_toto(*bundle, pub->key);
  if (!statement.ok()) {
    info.status = statement.status().message();
    return;
  }
  info.statement_json = *statement;
  try {
    auto j = nlohmann::json::parse(*statement);
    if (j.value("predicateType", std::string()) != info.predicate_type) {
      info.status = "the signed statement's predicateType is not " + info.predicate_type;
      return;
    }
    for (const auto& subject : j.at("subject")) {
      const std::string sha = subject.at("digest").value("sha256", std::string());
      for (const auto& l : model.layers) {
        if (store::is_weight_media_type(l.media_type) && std::string(l.digest.hex()) == sha) {
          info.status = "verified";
          return;
        }
      }
    }
    info.status = "its subject is not this model's weights";
  } catch (const std::exception& e) {
    info.status = std::string("the signed statement is not an in-toto statement: ") + e.what();
  }
}

}  // namespace

Result<ModelProvenance> describe_model(const store::Store& st, const store::Reference& ref, const TrustPolicy& policy) {
  ModelProvenance p;
  p.reference = ref.to_string();
  HEARTH_ASSIGN_OR_RETURN(p.manifest, st.resolve(ref));
  HEARTH_ASSIGN_OR_RETURN(p.manifest_json, st.read_blob(p.manifest, store::kMaxManifestBytes));
  HEARTH_ASSIGN_OR_RETURN(p.parsed, store::parse_manifest(p.manifest_json));
  p.version = store::manifest_version(p.parsed).value_or(0);
  if (p.parsed.config.media_type == store::kModelConfigMediaType) {
    if (auto cfg = st.read_blob(p.parsed.config.digest, 1 << 20); cfg.ok()) {
      p.facts = store::parse_model_config(*cfg).value_or(store::ModelFacts{});
    }
  }
  HEARTH_ASSIGN_OR_RETURN(std::vector<store::Digest> referrers, st.referrers(p.manifest));
  for (const auto& r : referrers) {
    SignatureInfo info;
    info.manifest = r;
    auto sm = st.read_manifest(r);
    if (!sm.ok() || sm->artifact_type != store::kSigstoreBundleMediaType || sm->layers.empty()) continue;
    if (is_attestation(*sm)) {
      AttestationInfo a;
      a.manifest = r;
      a.predicate_type = sm->annotations.at(std::string(kAnnotationPredicateType));
      auto json = st.read_blob(sm->layers[0].digest, kMaxBundleBytes);
      if (json.ok()) {
        check_attestation(*json, policy, p.parsed, a);
      } else {
        a.status = json.status().message();
      }
      p.attestations.push_back(std::move(a));
      continue;
    }
    auto bundle_json = st.read_blob(sm->layers[0].digest, kMaxBundleBytes);
    if (!bundle_json.ok()) {
      info.status = bundle_json.status().message();
      p.signatures.push_back(info);
      continue;
    }
    auto bundle = parse_bundle(*bundle_json);
    if (!bundle.ok()) {
      info.status = bundle.status().message();
      p.signatures.push_back(info);
      continue;
    }
    info.key_id = bundle->key_hint;
    const Publisher* pub = policy.find_by_key_id(info.key_id);
    if (pub == nullptr) {
      info.status = "key not in the trust policy";
    } else {
      info.publisher = pub->name;
      info.algorithm = std::string(key_algorithm_name(pub->key.algorithm()));
      auto statement = open_bundle(*bundle, pub->key);
      if (!statement.ok()) {
        info.status = statement.status().message();
      } else {
        info.signed_name = statement->model_name;
        info.signed_version = statement->version;
        Status match = match_statement(*statement, p.parsed);
        if (!match.ok())
          info.status = match.message();
        else if (!pub->may_publish(statement->model_name))
          info.status = "publisher not trusted for this name";
        else
          info.status = "trusted";
      }
    }
    p.signatures.push_back(std::move(info));
  }
  return p;
}

std::string format_provenance(const ModelProvenance& p) {
  std::string out;
  out += "reference:    " + p.reference + "\n";
  out += "manifest:     " + p.manifest.str() + "\n";
  out += "artifactType: " + p.parsed.artifact_type + "\n";
  out += "version:      " + std::to_string(p.version) + "\n";
  if (const auto& a = p.facts.adapter) {
    std::string targets;
    for (const auto& t : a->targets) targets += (targets.empty() ? "" : ",") + t;
    out += "adapter:      " + (a->type == "lora" ? std::string("LoRA") : a->type) + " for " +
           (p.facts.architecture.empty() ? std::string("?") : p.facts.architecture) + ", rank " +
           std::to_string(a->rank) + ", alpha " + fmt::format("{}", a->alpha) + ", targets " + targets + ", " +
           store::param_size_string(p.facts.parameters) + " parameters\n";
  } else if (!p.facts.architecture.empty()) {
    out += "model:        " + p.facts.architecture + ", " + store::param_size_string(p.facts.parameters) +
           " parameters, " + p.facts.quantization + "\n";
  }
  for (const auto& l : p.parsed.layers) {
    auto title = l.annotations.find(std::string(store::kAnnotationTitle));
    out += "layer:        " + (title != l.annotations.end() ? title->second : std::string("?")) + " " + l.digest.str() +
           " (" + std::to_string(l.size) + " bytes, " + l.media_type + ")\n";
  }
  if (p.signatures.empty()) out += "signatures:   none\n";
  for (const auto& s : p.signatures) {
    out += "signature:    key " + s.key_id.substr(0, 16) + (s.publisher.empty() ? "" : " (" + s.publisher + ")") +
           (s.signed_name.empty() ? "" : ", signed '" + s.signed_name + "' v" + std::to_string(s.signed_version)) +
           ": " + s.status + "\n";
  }
  for (const auto& a : p.attestations) {
    out += "attestation:  " + a.predicate_type + ", key " + a.key_id.substr(0, 16) +
           (a.publisher.empty() ? "" : " (" + a.publisher + ")") + ": " + a.status + "\n";
  }
  return out;
}

}  // namespace hearth::trust
