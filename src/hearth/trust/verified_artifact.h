// VerifiedArtifact: the only handle through which a model from the store reaches the engine.
// Its constructor is private; only ArtifactVerifier (verifier.h) creates one, after checking
// every blob's digest, the signature against the trust policy, and rollback protection. The
// weights are hashed through the mapping that weights() hands to the engine
// (model::Model::load), so what is loaded is exactly what was verified: replacing the blob file
// after verification changes nothing the engine sees. No code path loads a store blob by path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hearth/core/mapped_file.h"
#include "hearth/store/digest.h"

namespace hearth::trust {

class VerifiedArtifact {
 public:
  // The verified mapping of the GGUF weights: load the model from this (never from the path).
  const std::shared_ptr<const MappedFile>& weights() const { return weights_; }
  // Where the weights blob lives in the store (for messages; loading by path would skip the check).
  const std::string& gguf_path() const { return gguf_path_; }
  uint64_t gguf_size() const { return gguf_size_; }
  const store::Digest& manifest_digest() const { return manifest_digest_; }
  const store::Digest& weights_digest() const { return weights_digest_; }
  // The reference as resolved in the store, e.g. "acme/stories:v1".
  const std::string& reference() const { return reference_; }
  // The model name the publisher signed (equal to the reference's name unless re-tagged).
  const std::string& model_name() const { return model_name_; }
  uint64_t version() const { return version_; }
  // False only when the operator allowed an unsigned model (--allow-unsigned or the policy).
  bool is_signed() const { return !publisher_key_id_.empty(); }
  const std::string& publisher() const { return publisher_; }
  const std::string& publisher_key_id() const { return publisher_key_id_; }
  // An unsigned model this host imported from a local file (`hearth import`): the file's path,
  // trusted like that path under the policy ("local_paths"); empty otherwise.
  const std::string& local_source() const { return local_source_; }
  // Human-readable notes from verification (signatures skipped and why).
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  friend class ArtifactVerifier;
  VerifiedArtifact() = default;

  std::shared_ptr<const MappedFile> weights_;
  std::string gguf_path_;
  uint64_t gguf_size_ = 0;
  store::Digest manifest_digest_;
  store::Digest weights_digest_;
  std::string reference_;
  std::string model_name_;
  uint64_t version_ = 0;
  std::string publisher_;
  std::string publisher_key_id_;
  std::string local_source_;
  std::vector<std::string> notes_;
};

}  // namespace hearth::trust
