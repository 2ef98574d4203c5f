// Pulling and pushing models between the local store and OCI registries or hearth mirrors.
//   pull: sources are tried in order. The manifest is fetched and its declared layers capped
//         (count and total size); its signature referrers are fetched and checked against
//         the trust policy BEFORE any layer blob is downloaded; then the config and layers
//         (digests checked while streaming); then the whole model is verified again before
//         its tag is set (a refused model is left unreferenced for gc). A refused download
//         leaves no partial or lock files behind.
//         A tag that is already in the store is a version lock: it does not move unless
//         `upgrade` is set.
//   push: blobs (HEAD-checked, monolithic or chunked upload), the manifest under its tag, and
//         each signature as a referrer manifest; when the registry does not process `subject`
//         (no OCI-Subject header, e.g. docker-registry 2.8) the referrers tag-schema index
//         "sha256-<hex>" is updated as well.
#pragma once

#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/registry/oci_client.h"
#include "hearth/store/reference.h"
#include "hearth/store/store.h"

namespace hearth::registry {

struct PullOptions {
  std::vector<std::string> sources;  // base URLs, tried in order
  bool upgrade = false;
  bool allow_unsigned = false;
  std::string policy_path;  // empty: <home>/trust/policy.json
  bool record_version = true;  // see AdmitOptions::record_version
  RemoteOptions remote;
  // Caps on what a manifest may declare, checked before anything is downloaded.
  size_t max_layers = 64;
  uint64_t max_total_bytes = uint64_t{1} << 40;  // 1 TiB
};

struct PullResult {
  store::Digest manifest;
  std::string source;
  bool already_present = false;  // nothing was fetched (pinned, or already up to date)
  bool tag_moved = false;        // --upgrade moved an existing tag
  size_t signatures = 0;         // model signatures among the referrers fetched
  size_t attestations = 0;       // provenance attestations (never counted as signatures)
  std::string verification;      // a one-line summary of the trust decision
};

Result<PullResult> pull_model(store::Store& st, const store::Reference& ref, const PullOptions& opts);

// The configured mirrors: $HEARTH_MIRRORS (comma-separated), then <home>/mirrors (one URL per
// line, '#' comments).
std::vector<std::string> configured_sources(const std::string& home);

struct PushOptions {
  std::string target;  // base URL
  RemoteOptions remote;
};

struct PushResult {
  store::Digest manifest;
  size_t signatures = 0;
  size_t attestations = 0;
  bool used_referrers_fallback = false;
};

Result<PushResult> push_model(store::Store& st, const store::Reference& ref, const PushOptions& opts);

}  // namespace hearth::registry
