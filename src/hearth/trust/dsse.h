// DSSE (Dead Simple Signing Envelope) v1: the pre-authentication encoding that is signed, and
// the JSON envelope. Spec: github.com/secure-systems-lab/dsse, protocol.md and envelope.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::trust {

inline constexpr std::string_view kInTotoPayloadType = "application/vnd.in-toto+json";

// PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, LEN in ASCII decimal.
std::string pae(std::string_view payload_type, std::string_view payload);

struct DsseSignature {
  std::string keyid;
  std::string sig;  // raw signature bytes
};

struct DsseEnvelope {
  std::string payload_type;
  std::string payload;  // raw (decoded) payload bytes
  std::vector<DsseSignature> signatures;
};

}  // namespace hearth::trust
