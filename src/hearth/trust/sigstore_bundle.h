// Sigstore bundle v0.3 (application/vnd.dev.sigstore.bundle.v0.3+json) in key mode, as the
// OpenSSF model-signing tool writes it: verificationMaterial.publicKey.hint = key id, no
// transparency-log entries, and a DSSE envelope over the in-toto statement.
#pragma once

#include <string>
#include <string_view>

#include "hearth/core/status.h"
#include "hearth/trust/dsse.h"
#include "hearth/trust/model_statement.h"
#include "hearth/trust/signing_key.h"

namespace hearth::trust {

inline constexpr uint64_t kMaxBundleBytes = 8u << 20;

struct SignatureBundle {
  std::string key_hint;  // the signing key's id (sha256 hex of its public PEM)
  DsseEnvelope envelope;
};

std::string serialize_bundle(const SignatureBundle& b);
Result<SignatureBundle> parse_bundle(std::string_view json);

// Signs any in-toto statement JSON (e.g. the provenance `hearth quantize` records) into a
// key-mode bundle, and checks one; these carry no model-specific checks.
Result<SignatureBundle> sign_in_toto(std::string_view statement_json, const PrivateKey& key);
Result<std::string> open_in_toto(const SignatureBundle& b, const PublicKey& key);

// Signs the statement: DSSE over PAE(payloadType, statement JSON).
Result<SignatureBundle> sign_statement(const ModelStatement& s, const PrivateKey& key);
// Checks that `key` signed the envelope (Unauthenticated otherwise) and returns the statement.
Result<ModelStatement> open_bundle(const SignatureBundle& b, const PublicKey& key);

}  // namespace hearth::trust
