// The load seam: every command that loads a model (run, serve, bench, inspect) turns its
// argument into a ResolvedModel here and hands the engine ResolvedModel::gguf_path().
//   - A plain file path (ends in ".gguf", or starts with '/', './', '../' or '~', or names an
//     existing file and is not a store reference) is the operator's explicit local choice: it
//     loads unverified, is logged as such, and is refused when the policy says
//     "local_paths": "deny".
//   - Anything else is a store reference (name:tag or name@sha256:...), verified by
//     ArtifactVerifier against the trust policy before load; unsigned, untrusted or tampered
//     models are refused with an explanation unless allow_unsigned (which never excuses
//     tampering or rollback).
// Refusals are written to the audit log here (and verifications by the verifier); the load
// itself is recorded by the caller once it has succeeded or failed.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "hearth/core/status.h"
#include "hearth/trust/verified_artifact.h"

namespace hearth::trust {

struct ResolveOptions {
  std::string home;              // empty: store::default_home() ($HEARTH_HOME)
  std::string policy_path;       // empty: <home>/trust/policy.json
  bool allow_unsigned = false;   // --allow-unsigned
  std::string purpose = "load";  // "run", "serve", "bench", "inspect" (for messages; the caller records the load)
};

struct LocalModelPath {
  std::string path;
};

class ResolvedModel {
 public:
  explicit ResolvedModel(LocalModelPath local) : v_(std::move(local)) {}
  explicit ResolvedModel(VerifiedArtifact artifact) : v_(std::move(artifact)) {}

  bool is_local_path() const { return std::holds_alternative<LocalModelPath>(v_); }
  // The store artifact, or nullptr for a local path.
  const VerifiedArtifact* artifact() const { return std::get_if<VerifiedArtifact>(&v_); }
  // The GGUF file: a local path to map, or (store models) the blob's path for messages only;
  // a store model is loaded from artifact()->weights(), the mapping that was verified.
  const std::string& gguf_path() const;
  // "acme/stories:v1 (sha256:1234..., signed by acme, version 3)" or "./m.gguf (local file, unverified)".
  std::string describe() const;

 private:
  std::variant<LocalModelPath, VerifiedArtifact> v_;
};

Result<ResolvedModel> resolve_model(std::string_view path_or_ref, const ResolveOptions& opts);

// True when `arg` will be treated as a local file path (see the rules above).
bool looks_like_local_path(std::string_view arg);

}  // namespace hearth::trust
