// The in-toto Statement v1 that an OpenSSF model signature carries (predicate type
// https://model_signing/signature/v1.0): the subject is the model (name + sha256 over the
// resource digests in order), the predicate lists every file with its sha256. hearth adds one
// predicate field, "hearth": {"name", "version"}, so that the manifest's version annotation is
// covered by the signature (v1.0 verifiers ignore unknown predicate fields).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/store/digest.h"
#include "hearth/store/oci_manifest.h"

namespace hearth::trust {

inline constexpr std::string_view kInTotoStatementType = "https://in-toto.io/Statement/v1";
inline constexpr std::string_view kModelSigningPredicateType = "https://model_signing/signature/v1.0";
// The resource name of a ModelPack manifest's config blob.
inline constexpr std::string_view kConfigResourceName = "config.json";
inline constexpr uint64_t kMaxStatementBytes = 4u << 20;

struct SignedResource {
  std::string name;
  store::Digest digest;
};

struct ModelStatement {
  std::string model_name;
  std::vector<SignedResource> resources;  // sorted by name, unique
  uint64_t version = 0;
  // sha256 over the raw resource digests, in order (the subject digest).
  store::Digest root_digest() const;
};

// The statement describing a ModelPack manifest: its config as "config.json" and each layer
// under its title annotation. Layer titles must be plain file names.
Result<ModelStatement> statement_for_manifest(const store::Manifest& m, std::string_view model_name);

std::string serialize_statement(const ModelStatement& s);
// Parses and checks _type, predicateType, the single subject and its root digest.
Result<ModelStatement> parse_statement(std::string_view json);

// DataLoss-free comparison of a verified statement with the manifest being loaded:
// Unauthenticated when the files or the version differ from what was signed.
Status match_statement(const ModelStatement& signed_statement, const store::Manifest& m);

}  // namespace hearth::trust
