// RegistryClient: the client side of the OCI Distribution API v2 for one registry (or a
// `hearth registry serve` mirror). Everything the remote sends is hostile: digests are parsed
// strictly, manifests are capped at store::kMaxManifestBytes and must hash to the digest asked
// for, and a blob longer than its descriptor is cut off and discarded. Downloads go to a
// partial file in the store's tmp area, resume with Range after an interruption, retry with
// backoff, split large blobs into parallel ranges, and become visible only after the digest
// checks out.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/store/oci_manifest.h"
#include "hearth/store/store.h"

namespace hearth::registry {

// The most parallel ranges a download uses (RemoteOptions::parallel is clamped to it).
inline constexpr int kMaxParallelRanges = 16;

struct RemoteOptions {
  int retries = 4;                            // per request, with exponential backoff
  int backoff_ms = 200;                       // first backoff
  int parallel = 4;                           // ranges for a large blob
  uint64_t parallel_threshold = 64ull << 20;  // blobs at least this large are split
  uint64_t upload_chunk = 16ull << 20;        // PATCH chunk size; smaller blobs go in one PUT
  uint64_t max_recv_bytes_per_second = 0;     // --limit-rate (all ranges together); 0: unlimited
  // Downloads follow a redirect only to the same origin (scheme, host, port) unless this is
  // set (e.g. a registry that hands blobs to a storage host). Uploads never follow one.
  bool allow_cross_origin_redirects = false;
  bool progress = false;  // progress line even when stderr is not a tty
  // Hears a blob download's progress (bytes done of total), from its download threads.
  std::function<void(const store::Digest& blob, uint64_t done, uint64_t total)> on_blob_progress;
};

struct FetchedManifest {
  std::string bytes;
  std::string media_type;
  store::Digest digest;  // sha256 of bytes (checked against the digest asked for)
};

class RegistryClient {
 public:
  // `base_url` like "http://127.0.0.1:5000" (no trailing /v2).
  RegistryClient(std::string base_url, RemoteOptions opts);

  const std::string& base_url() const { return base_; }
  Status ping() const;
  // `reference` is a tag or a digest.
  Result<FetchedManifest> get_manifest(const std::string& name, const std::string& reference) const;
  Result<bool> has_blob(const std::string& name, const store::Digest& digest) const;
  // Downloads a blob into the store (resuming a partial download if present).
  Status download_blob(const std::string& name, const store::Descriptor& d, store::Store& st) const;
  // Uploads a local file as a blob (skipped when the registry already has it).
  Status upload_blob(const std::string& name, const store::Descriptor& d, const std::string& path) const;
  // PUTs a manifest under a tag or digest; returns true when the registry reported
  // processing its subject (OCI-Subject header), i.e. it supports the referrers API.
  Result<bool> put_manifest(const std::string& name, const std::string& reference, const std::string& bytes,
                            const std::string& media_type) const;
  // Referrers of a manifest: the referrers API, else the tag-schema fallback index
  // (tag "sha256-<hex>"), else empty.
  Result<store::Index> referrers(const std::string& name, const store::Digest& subject) const;
  Result<std::vector<std::string>> tags(const std::string& name) const;

 private:
  std::string url(const std::string& name, const std::string& kind, const std::string& rest) const;
  // download_blob's work, with the per-blob lock held and the blob not yet in the store.
  Status download_locked(const std::string& name, const store::Descriptor& d, store::Store& st) const;
  Status download_range(const std::string& name, const store::Descriptor& d, const std::string& part_path,
                        uint64_t begin, uint64_t end, bool whole, class Progress* progress, store::Digest* streamed,
                        class RatePacer* pacer) const;
  std::string base_;
  RemoteOptions opts_;
};

// The referrers tag-schema fallback tag for a subject: "sha256-<hex>" (OCI distribution 1.1).
std::string referrers_fallback_tag(const store::Digest& subject);

}  // namespace hearth::registry
