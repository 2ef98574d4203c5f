// The JSON adapter for sigstore bundles (see sigstore_bundle.h).
#include "hearth/trust/sigstore_bundle.h"

#include <nlohmann/json.hpp>

#include "hearth/core/base64.h"
#include "hearth/store/oci_manifest.h"

namespace hearth::trust {
namespace {

using json = nlohmann::json;

Status bad(std::string_view what) { return make_error(ErrorCode::kInvalidArgument, "signature bundle: {}", what); }

}  // namespace

std::string serialize_bundle(const SignatureBundle& b) {
  json sigs = json::array();
  for (const auto& s : b.envelope.signatures) sigs.push_back({{"sig", base64_encode(s.sig)}, {"keyid", s.keyid}});
  json j = {
      {"mediaType", store::kSigstoreBundleMediaType},
      {"verificationMaterial", {{"publicKey", {{"hint", b.key_hint}}}, {"tlogEntries", json::array()}}},
      {"dsseEnvelope",
       {{"payload", base64_encode(b.envelope.payload)},
        {"payloadType", b.envelope.payload_type},
        {"signatures", sigs}}},
  };
  return j.dump();
}

Result<SignatureBundle> parse_bundle(std::string_view text) {
  if (text.size() > kMaxBundleBytes) return bad("too large");
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a json object");
  auto str = [](const json& o, const char* k) -> std::string {
    if (!o.is_object()) return {};
    auto it = o.find(k);
    return (it != o.end() && it->is_string()) ? it->get<std::string>() : std::string();
  };
  if (str(j, "mediaType") != store::kSigstoreBundleMediaType) {
    return bad("mediaType '" + str(j, "mediaType") + "' is not " + std::string(store::kSigstoreBundleMediaType));
  }
  SignatureBundle b;
  if (auto vm = j.find("verificationMaterial"); vm != j.end() && vm->is_object()) {
    if (auto pk = vm->find("publicKey"); pk != vm->end()) b.key_hint = str(*pk, "hint");
  }
  auto env = j.find("dsseEnvelope");
  if (env == j.end() || !env->is_object()) return bad("no dsseEnvelope (only DSSE bundles are supported)");
  b.envelope.payload_type = str(*env, "payloadType");
  HEARTH_ASSIGN_OR_RETURN(b.envelope.payload, base64_decode(str(*env, "payload")));
  auto sigs = env->find("signatures");
  if (sigs == env->end() || !sigs->is_array() || sigs->empty()) return bad("envelope has no signatures");
  for (const auto& s : *sigs) {
    DsseSignature sig;
    sig.keyid = str(s, "keyid");
    HEARTH_ASSIGN_OR_RETURN(sig.sig, base64_decode(str(s, "sig")));
    b.envelope.signatures.push_back(std::move(sig));
  }
  return b;
}

Result<SignatureBundle> sign_in_toto(std::string_view statement_json, const PrivateKey& key) {
  SignatureBundle b;
  b.key_hint = key.public_key().key_id();
  b.envelope.payload_type = std::string(kInTotoPayloadType);
  b.envelope.payload = std::string(statement_json);
  HEARTH_ASSIGN_OR_RETURN(std::string sig, key.sign(pae(b.envelope.payload_type, b.envelope.payload)));
  b.envelope.signatures.push_back({"", std::move(sig)});
  return b;
}

Result<SignatureBundle> sign_statement(const ModelStatement& s, const PrivateKey& key) {
  return sign_in_toto(serialize_statement(s), key);
}

Result<ModelStatement> open_bundle(const SignatureBundle& b, const PublicKey& key) {
  HEARTH_ASSIGN_OR_RETURN(std::string payload, open_in_toto(b, key));
  return parse_statement(payload);
}

Result<std::string> open_in_toto(const SignatureBundle& b, const PublicKey& key) {
  if (!b.key_hint.empty() && b.key_hint != key.key_id()) {
    return make_error(ErrorCode::kUnauthenticated, "signature was made by key {}, not by {}", b.key_hint.substr(0, 16),
                      key.key_id().substr(0, 16));
  }
  if (b.envelope.payload_type != kInTotoPayloadType) {
    return make_error(ErrorCode::kUnauthenticated, "signature bundle: payloadType '{}' is not {}",
                      b.envelope.payload_type, kInTotoPayloadType);
  }
  std::string message = pae(b.envelope.payload_type, b.envelope.payload);
  Status last = make_error(ErrorCode::kUnauthenticated, "signature bundle: no signatures");
  for (const auto& sig : b.envelope.signatures) {
    last = key.verify(message, sig.sig);
    if (last.ok()) return b.envelope.payload;
  }
  return last;
}

}  // namespace hearth::trust
