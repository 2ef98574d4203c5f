#include "hearth/fleet/pki.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>

#include <memory>

#include "hearth/core/sha256.h"
#include "hearth/core/status.h"

namespace hearth::fleet {
namespace {

constexpr size_t kMaxPemBytes = 64 << 10;

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Status ssl_error(std::string_view what) { return make_error(ErrorCode::kInternal, "{}: {}", what, openssl_error()); }

BioPtr mem_bio(std::string_view data) { return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size()))); }

std::string bio_string(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, n > 0 ? static_cast<size_t>(n) : 0);
}

Result<PkeyPtr> new_p256_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return ssl_error("generating a P-256 key");
  return key;
}

std::string key_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return bio_string(bio.get());
}

std::string cert_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return bio_string(bio.get());
}

Result<X509Ptr> parse_cert(std::string_view pem, std::string_view what) {
  if (pem.size() > kMaxPemBytes) return make_error(ErrorCode::kInvalidArgument, "{}: larger than 64 KiB", what);
  BioPtr bio = mem_bio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return make_error(ErrorCode::kInvalidArgument, "{}: not a PEM certificate", what);
  }
  return cert;
}

Result<PkeyPtr> parse_key(std::string_view pem, std::string_view what) {
  if (pem.size() > kMaxPemBytes) return make_error(ErrorCode::kInvalidArgument, "{}: larger than 64 KiB", what);
  BioPtr bio = mem_bio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ERR_clear_error();
    return make_error(ErrorCode::kInvalidArgument, "{}: not a PEM private key", what);
  }
  return key;
}

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &len) != 1) return false;
  return std::string_view(group, len) == "prime256v1" || std::string_view(group, len) == "P-256";
}

Status add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return ssl_error("building a certificate extension");
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return ssl_error("adding a certificate extension");
  return ok_status();
}

Status set_serial_and_validity(X509* cert, int validity_days) {
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return ssl_error("random serial");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  ASN1_INTEGER* s = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  if (s == nullptr) return ssl_error("serial number");
  X509_set_version(cert, 2);
  // Backdate by an hour so that small clock differences between nodes do not matter.
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), static_cast<long>(validity_days) * 86400);
  return ok_status();
}

Status set_cn(X509_NAME* name, std::string_view cn) {
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.data()),
                                 static_cast<int>(cn.size()), -1, 0) != 1)
    return ssl_error("setting the subject CN");
  return ok_status();
}

std::string subject_cn(X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

// Builds a certificate for `pub` signed by (issuer, issuer_key); issuer null: self-signed.
Result<X509Ptr> build_cert(EVP_PKEY* pub, std::string_view cn, X509* issuer, EVP_PKEY* issuer_key, int validity_days,
                           const std::vector<std::pair<int, std::string>>& exts) {
  X509Ptr cert(X509_new());
  if (!cert) return ssl_error("X509_new");
  if (auto st = set_serial_and_validity(cert.get(), validity_days); !st.ok()) return st;
  if (auto st = set_cn(X509_get_subject_name(cert.get()), cn); !st.ok()) return st;
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(cert.get()));
  if (X509_set_pubkey(cert.get(), pub) != 1) return ssl_error("setting the public key");
  X509* ext_issuer = issuer ? issuer : cert.get();
  for (const auto& [nid, value] : exts)
    if (auto st = add_ext(cert.get(), ext_issuer, nid, value); !st.ok()) return st;
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) return ssl_error("signing the certificate");
  return cert;
}

std::vector<std::pair<int, std::string>> leaf_exts(CertUsage usage, const std::string& san) {
  std::vector<std::pair<int, std::string>> exts = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature,keyAgreement"},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"},
  };
  switch (usage) {
    case CertUsage::kServer: exts.push_back({NID_ext_key_usage, "serverAuth"}); break;
    case CertUsage::kClient: exts.push_back({NID_ext_key_usage, "clientAuth"}); break;
    case CertUsage::kServerAndClient: exts.push_back({NID_ext_key_usage, "serverAuth,clientAuth"}); break;
  }
  if (!san.empty()) exts.push_back({NID_subject_alt_name, san});
  return exts;
}

}  // namespace

bool valid_node_id(std::string_view id) {
  if (id.empty() || id.size() > 63 || id.front() == '-') return false;
  if (id.substr(0, 7) == "hearth-") return false;  // reserved: hearth-controller is the controller's identity
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

Result<std::string> random_hex(size_t n_bytes) {
  std::vector<uint8_t> bytes(n_bytes);
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) return ssl_error("random bytes");
  return to_hex(bytes);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<CertAndKey> make_ca(std::string_view common_name, int validity_days) {
  auto key = new_p256_key();
  if (!key.ok()) return key.status();
  auto cert = build_cert(key->get(), common_name, nullptr, key->get(), validity_days,
                         {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                          {NID_key_usage, "critical,keyCertSign,cRLSign"},
                          {NID_subject_key_identifier, "hash"}});
  if (!cert.ok()) return cert.status();
  return CertAndKey{cert_pem(cert->get()), key_pem(key->get())};
}

Result<CertAndKey> issue_with_new_key(const CertAndKey& ca, const IssueOptions& options) {
  auto ca_cert = parse_cert(ca.cert_pem, "CA certificate");
  if (!ca_cert.ok()) return ca_cert.status();
  auto ca_key = parse_key(ca.key_pem, "CA key");
  if (!ca_key.ok()) return ca_key.status();
  auto key = new_p256_key();
  if (!key.ok()) return key.status();
  std::vector<std::string> names;
  for (const auto& d : options.dns_names) names.push_back(fmt::format("DNS:{}", d));
  for (const auto& ip : options.ip_addresses) names.push_back(fmt::format("IP:{}", ip));
  std::string san = fmt::format("{}", fmt::join(names, ","));
  auto cert = build_cert(key->get(), options.common_name, ca_cert->get(), ca_key->get(), options.validity_days,
                         leaf_exts(options.usage, san));
  if (!cert.ok()) return cert.status();
  return CertAndKey{cert_pem(cert->get()), key_pem(key->get())};
}

Result<KeyAndCsr> make_key_and_csr(std::string_view common_name) {
  auto key = new_p256_key();
  if (!key.ok()) return key.status();
  ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  if (auto st = set_cn(X509_REQ_get_subject_name(req.get()), common_name); !st.ok()) return st;
  if (X509_REQ_set_pubkey(req.get(), key->get()) != 1) return ssl_error("CSR public key");
  if (X509_REQ_sign(req.get(), key->get(), EVP_sha256()) <= 0) return ssl_error("signing the CSR");
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req.get());
  return KeyAndCsr{key_pem(key->get()), bio_string(bio.get())};
}

Result<std::string> issue_from_csr(const CertAndKey& ca, std::string_view csr_pem, std::string_view common_name,
                                   int validity_days) {
  if (!valid_node_id(common_name))
    return make_error(ErrorCode::kInvalidArgument, "node id '{}' is not 1-63 characters of [a-z0-9-]", common_name);
  if (csr_pem.size() > kMaxPemBytes) return make_error(ErrorCode::kInvalidArgument, "CSR: larger than 64 KiB");
  BioPtr bio = mem_bio(csr_pem);
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) {
    ERR_clear_error();
    return make_error(ErrorCode::kInvalidArgument, "CSR: not a PEM certificate request");
  }
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (pub == nullptr || !is_p256(pub)) {
    ERR_clear_error();
    return make_error(ErrorCode::kInvalidArgument, "CSR: the key is not ECDSA P-256");
  }
  if (X509_REQ_verify(req.get(), pub) != 1) {
    ERR_clear_error();
    return make_error(ErrorCode::kInvalidArgument, "CSR: its self-signature does not verify");
  }
  auto ca_cert = parse_cert(ca.cert_pem, "CA certificate");
  if (!ca_cert.ok()) return ca_cert.status();
  auto ca_key = parse_key(ca.key_pem, "CA key");
  if (!ca_key.ok()) return ca_key.status();
  auto cert =
      build_cert(pub, common_name, ca_cert->get(), ca_key->get(), validity_days, leaf_exts(CertUsage::kClient, ""));
  if (!cert.ok()) return cert.status();
  return cert_pem(cert->get());
}

Result<std::string> verify_certificate(std::string_view cert_pem_text, std::string_view ca_pem) {
  auto cert = parse_cert(cert_pem_text, "certificate");
  if (!cert.ok()) return cert.status();
  auto ca = parse_cert(ca_pem, "CA certificate");
  if (!ca.ok()) return ca.status();
  StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca->get());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return make_error(ErrorCode::kUnauthenticated, "certificate does not verify against the fleet CA: {}",
                      X509_verify_cert_error_string(err));
  }
  return subject_cn(cert->get());
}

Result<std::string> certificate_sha256(std::string_view pem) {
  auto cert = parse_cert(pem, "certificate");
  if (!cert.ok()) return cert.status();
  unsigned char* der = nullptr;
  int n = i2d_X509(cert->get(), &der);
  if (n <= 0) return ssl_error("encoding the certificate");
  std::string hex = sha256_hex(std::span(reinterpret_cast<const std::byte*>(der), static_cast<size_t>(n)));
  OPENSSL_free(der);
  return hex;
}

}  // namespace hearth::fleet
