// The OpenSSL adapter for signing keys (see signing_key.h).
#include "hearth/trust/signing_key.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "hearth/core/atomic_file.h"
#include "hearth/store/digest.h"

namespace hearth::trust {
namespace {

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown openssl error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

std::shared_ptr<void> wrap(EVP_PKEY* k) {
  return std::shared_ptr<void>(k, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
}

EVP_PKEY* raw(const std::shared_ptr<void>& p) { return static_cast<EVP_PKEY*>(p.get()); }

Result<KeyAlgorithm> algorithm_of(EVP_PKEY* k, std::string_view where) {
  if (EVP_PKEY_is_a(k, "ED25519")) return KeyAlgorithm::kEd25519;
  if (EVP_PKEY_is_a(k, "EC")) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &len) == 1 &&
        (std::string_view(group) == "prime256v1" || std::string_view(group) == "P-256")) {
      return KeyAlgorithm::kEcdsaP256;
    }
    return make_error(ErrorCode::kInvalidArgument, "{}: EC key on curve '{}' is not supported (use P-256)", where,
                      group);
  }
  return make_error(ErrorCode::kInvalidArgument, "{}: unsupported key type (hearth signs with ECDSA P-256 or Ed25519)",
                    where);
}

std::string bio_string(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> public_pem_of(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PUBKEY(bio, k) != 1) {
    BIO_free(bio);
    return make_error(ErrorCode::kInternal, "cannot encode public key: {}", openssl_error());
  }
  std::string pem = bio_string(bio);
  BIO_free(bio);
  return pem;
}

const EVP_MD* digest_for(KeyAlgorithm a) { return a == KeyAlgorithm::kEd25519 ? nullptr : EVP_sha256(); }

}  // namespace

std::string_view key_algorithm_name(KeyAlgorithm a) {
  return a == KeyAlgorithm::kEd25519 ? "ed25519" : "ecdsa-p256-sha256";
}

Result<PublicKey> PublicKey::from_pem(std::string_view pem, std::string_view where) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (k == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "{}: not a PEM public key ({})", where, openssl_error());
  }
  PublicKey pub;
  pub.pkey_ = wrap(k);
  HEARTH_ASSIGN_OR_RETURN(pub.alg_, algorithm_of(k, where));
  HEARTH_ASSIGN_OR_RETURN(pub.pem_, public_pem_of(k));
  pub.key_id_ = std::string(store::sha256_of(pub.pem_).hex());
  return pub;
}

Result<PublicKey> PublicKey::load(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(std::string pem, read_file(path, 1 << 20));
  return from_pem(pem, path);
}

Status PublicKey::verify(std::string_view message, std::string_view sig) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  int ok = EVP_DigestVerifyInit(ctx, nullptr, digest_for(alg_), nullptr, raw(pkey_));
  if (ok == 1) {
    ok = EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size());
  }
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  if (ok != 1) {
    return make_error(ErrorCode::kUnauthenticated, "signature does not verify with key {} ({})", key_id_.substr(0, 16),
                      key_algorithm_name(alg_));
  }
  return ok_status();
}

Result<PrivateKey> PrivateKey::generate(KeyAlgorithm alg) {
  EVP_PKEY* k = alg == KeyAlgorithm::kEd25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                                              : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (k == nullptr) return make_error(ErrorCode::kInternal, "key generation failed: {}", openssl_error());
  PrivateKey key;
  key.pkey_ = wrap(k);
  HEARTH_ASSIGN_OR_RETURN(std::string pem, public_pem_of(k));
  HEARTH_ASSIGN_OR_RETURN(key.pub_, PublicKey::from_pem(pem, "generated key"));
  return key;
}

Result<PrivateKey> PrivateKey::from_pem(std::string_view pem, std::string_view where) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (k == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "{}: not an unencrypted PEM private key ({})", where,
                      openssl_error());
  }
  PrivateKey key;
  key.pkey_ = wrap(k);
  HEARTH_ASSIGN_OR_RETURN(std::string pub_pem, public_pem_of(k));
  HEARTH_ASSIGN_OR_RETURN(key.pub_, PublicKey::from_pem(pub_pem, where));
  return key;
}

Result<PrivateKey> PrivateKey::load(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(std::string pem, read_file(path, 1 << 20));
  return from_pem(pem, path);
}

Result<std::string> PrivateKey::sign(std::string_view message) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string sig;
  int ok = EVP_DigestSignInit(ctx, nullptr, digest_for(algorithm()), nullptr, raw(pkey_));
  if (ok == 1) {
    ok = EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(message.data()), message.size());
  }
  if (ok == 1) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                        reinterpret_cast<const unsigned char*>(message.data()), message.size());
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (ok != 1) return make_error(ErrorCode::kInternal, "signing failed: {}", openssl_error());
  return sig;
}

std::string PrivateKey::private_pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, raw(pkey_), nullptr, nullptr, 0, nullptr, nullptr);
  std::string pem = bio_string(bio);
  BIO_free(bio);
  return pem;
}

}  // namespace hearth::trust
