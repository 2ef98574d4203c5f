// The in-toto Statement v1 that an OpenSSF model signature carries (predicate type
// https://model_signing/signature/v1.0): the subject is the model (name + sha256 over the
// resource digests in order), the predicate lists every file with its sha256. hearth adds one
// predicate field, "hearth": {"name", "version", "config", "layers"}, so that the manifest's
// version annotation, and each blob's role (media type) and position, are covered by the
// signature (v1.0 verifiers ignore unknown predicate fields). Without the role binding a
// manifest could relabel signed blobs (the weights listed as config, two layers swapped) and
// still match the file list. Statements signed before the binding existed have no "layers";
// they are refused with a request to re-sign (a signature that does not say which blob is the
// weights cannot say what is loaded).
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

// A blob bound to its role and position in the manifest.
struct SignedBlob {
  std::string media_type;
  store::Digest digest;
};

// Most layers a statement may bind (a model has a handful).
inline constexpr size_t kMaxSignedLayers = 4096;

struct ModelStatement {
  std::string model_name;
  std::vector<SignedResource> resources;  // sorted by name, unique
  uint64_t version = 0;
  // The manifest's config and its layers in manifest order; has_layout is false for a
  // statement signed without them (refused by match_statement).
  bool has_layout = false;
  SignedBlob config;
  std::vector<SignedBlob> layers;
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
// Unauthenticated when the files, their roles and order, or the version differ from what was
// signed, or when the statement does not bind roles and order (signed by an older hearth).
Status match_statement(const ModelStatement& signed_statement, const store::Manifest& m);

}  // namespace hearth::trust
