// The fleet's X.509 identities: a fleet CA (ECDSA P-256), server certificates for the controller
// and the broker, and node certificates issued from a node's CSR (the node's key never leaves
// the node; the certificate's CN is the node id, which the broker takes as the MQTT username).
// OpenSSL is seen only by pki.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::fleet {

struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8
};

// A self-signed CA: basicConstraints CA:TRUE (pathlen 0), keyUsage keyCertSign + cRLSign.
Result<CertAndKey> make_ca(std::string_view common_name, int validity_days);

enum class CertUsage { kServer, kClient, kServerAndClient };

struct IssueOptions {
  std::string common_name;
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries ("127.0.0.1", "::1")
  CertUsage usage = CertUsage::kClient;
  int validity_days = 365;
};

// A fresh P-256 key and a certificate for it signed by `ca`.
Result<CertAndKey> issue_with_new_key(const CertAndKey& ca, const IssueOptions& options);

// A node's side of enrollment: a new P-256 key and a CSR whose subject CN is `common_name`.
struct KeyAndCsr {
  std::string key_pem;
  std::string csr_pem;
};
Result<KeyAndCsr> make_key_and_csr(std::string_view common_name);

// The controller's side: checks the CSR's self-signature and that its key is P-256, and signs
// a client certificate for it whose CN is `common_name` (the CSR's own subject is ignored, so a
// node cannot choose its identity). `max_csr_bytes` bounds the work a hostile CSR can cause.
Result<std::string> issue_from_csr(const CertAndKey& ca, std::string_view csr_pem, std::string_view common_name,
                                   int validity_days);

// Verifies `cert_pem` chains to `ca_pem` (and is within its validity); returns its subject CN.
Result<std::string> verify_certificate(std::string_view cert_pem, std::string_view ca_pem);

// sha256 hex of the certificate's DER encoding (what `agent enroll --ca-sha256` pins).
Result<std::string> certificate_sha256(std::string_view cert_pem);

// `n_bytes` from the OS's CSPRNG, as lowercase hex (join tokens, the admin credential).
Result<std::string> random_hex(size_t n_bytes);

// Compares secrets in time that depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

// A node id / CN: 1..63 characters of [a-z0-9-], not starting with '-' nor with "hearth-" (the
// prefix of the fleet's own identities, e.g. hearth-controller, which the broker's ACL trusts).
// MQTT wildcards and '/' can never appear, so the id is safe inside topic names and ACL patterns.
bool valid_node_id(std::string_view id);

}  // namespace hearth::fleet
