// Signing keys for model signatures: ECDSA P-256 with SHA-256 (the default, as in the OpenSSF
// model-signing key mode) or Ed25519. Keys are PEM files (PKCS#8 private, SubjectPublicKeyInfo
// public). A key's id is the sha256 hex of its public PEM, the value model-signing puts in a
// bundle's verificationMaterial.publicKey.hint. OpenSSL is seen only by signing_key.cpp.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "hearth/core/status.h"

namespace hearth::trust {

enum class KeyAlgorithm { kEcdsaP256, kEd25519 };
std::string_view key_algorithm_name(KeyAlgorithm a);

class PublicKey {
 public:
  // Parses a PEM public key; `where` names it in errors. Only P-256 and Ed25519 are accepted.
  static Result<PublicKey> from_pem(std::string_view pem, std::string_view where);
  static Result<PublicKey> load(const std::string& path);

  // Unauthenticated when `sig` is not a valid signature of `message` by this key.
  Status verify(std::string_view message, std::string_view sig) const;
  const std::string& pem() const { return pem_; }
  const std::string& key_id() const { return key_id_; }  // sha256 hex of pem()
  KeyAlgorithm algorithm() const { return alg_; }

 private:
  std::shared_ptr<void> pkey_;
  std::string pem_;
  std::string key_id_;
  KeyAlgorithm alg_ = KeyAlgorithm::kEcdsaP256;
};

class PrivateKey {
 public:
  static Result<PrivateKey> generate(KeyAlgorithm alg);
  static Result<PrivateKey> from_pem(std::string_view pem, std::string_view where);
  static Result<PrivateKey> load(const std::string& path);

  Result<std::string> sign(std::string_view message) const;
  std::string private_pem() const;
  const PublicKey& public_key() const { return pub_; }
  KeyAlgorithm algorithm() const { return pub_.algorithm(); }

 private:
  std::shared_ptr<void> pkey_;
  PublicKey pub_;
  friend class PublicKey;
};

}  // namespace hearth::trust
