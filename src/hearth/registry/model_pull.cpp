// pull_model (see model_transfer.h).
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "hearth/core/checked_math.h"
#include "hearth/core/log.h"
#include "hearth/registry/model_admission.h"
#include "hearth/registry/model_transfer.h"
#include "hearth/store/audit_log.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/sigstore_bundle.h"

namespace hearth::registry {
namespace {

using store::Digest;

// Fetches the blobs and referrers of an already-fetched model manifest into the store.
struct Referrers {
  size_t signatures = 0, attestations = 0;
};

// Removes what a refused download leaves in tmp: the partial files and the per-blob lock
// files. (An interrupted download keeps its partials, to resume.)
void discard_downloads(const store::Store& st, const store::Manifest& m) {
  std::vector<const store::Descriptor*> blobs = {&m.config};
  for (const auto& l : m.layers) blobs.push_back(&l);
  for (const auto* d : blobs) {
    if (!d->digest.valid()) continue;
    const std::string base = st.tmp_dir() + "/" + std::string(d->digest.hex());
    ::unlink(st.partial_path(d->digest).c_str());
    ::unlink(st.download_lock_path(d->digest).c_str());
    for (int i = 1; i <= kMaxParallelRanges; ++i) ::unlink((base + ".part" + std::to_string(i) + ".partial").c_str());
  }
}

// A refusal of what the registry sent, as opposed to an interruption worth resuming (network,
// a full disk: the partial files stay for the next pull).
bool is_refusal(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kDataLoss:
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kOutOfRange:
    case ErrorCode::kUnauthenticated:
    case ErrorCode::kPermissionDenied:
    case ErrorCode::kNotFound: return true;
    default: return false;
  }
}

// The manifest's declared layers are remote input: capped before anything is fetched.
Status check_declared(const store::Manifest& m, const PullOptions& opts, const std::string& what) {
  if (m.layers.size() > opts.max_layers) {
    return make_error(ErrorCode::kResourceExhausted,
                      "{}: the manifest lists {} layers, more than the {} a model may have", what, m.layers.size(),
                      opts.max_layers);
  }
  uint64_t total = m.config.size;
  for (const auto& l : m.layers) {
    auto sum = checked_add<uint64_t>(total, l.size);
    if (!sum || *sum > opts.max_total_bytes) {
      return make_error(ErrorCode::kResourceExhausted,
                        "{}: the manifest declares more than {} bytes of layers (the pull limit)", what,
                        opts.max_total_bytes);
    }
    total = *sum;
  }
  return ok_status();
}

// Fetches the signature referrers of an already-fetched model manifest into the store.
Result<Referrers> fetch_referrers(const RegistryClient& client, store::Store& st, const std::string& name,
                                  const FetchedManifest& fm) {
  Referrers signatures;
  constexpr size_t kMaxReferrers = 64;  // a hostile index cannot make us fetch without end
  auto index = client.referrers(name, fm.digest);
  if (!index.ok()) {
    log::warn("{}: cannot list signatures: {}", client.base_url(), index.status().message());
    return signatures;
  }
  size_t considered = 0;
  for (const auto& d : index->manifests) {
    if (!d.artifact_type.empty() && d.artifact_type != store::kSigstoreBundleMediaType) continue;
    if (++considered > kMaxReferrers) {
      log::warn("{}: more than {} signatures listed; ignoring the rest", client.base_url(), kMaxReferrers);
      break;
    }
    auto sig = client.get_manifest(name, d.digest.str());
    if (!sig.ok()) {
      log::warn("signature {}: {}", d.digest.str(), sig.status().message());
      continue;
    }
    auto sm = store::parse_manifest(sig->bytes);
    if (!sm.ok() || !sm->subject || sm->subject->digest != fm.digest ||
        sm->artifact_type != store::kSigstoreBundleMediaType || sm->layers.size() > 4 ||
        sm->config.size > trust::kMaxBundleBytes) {
      log::warn("referrer {} is not a signature of {}; skipped", d.digest.str(), fm.digest.str());
      continue;
    }
    bool small = true;
    for (const auto& l : sm->layers) small = small && l.size <= trust::kMaxBundleBytes;
    if (!small) {
      log::warn("referrer {}: a layer is larger than a signature bundle may be; skipped", d.digest.str());
      continue;
    }
    HEARTH_TRY(client.download_blob(name, sm->config, st));
    for (const auto& l : sm->layers) HEARTH_TRY(client.download_blob(name, l, st));
    HEARTH_TRY(st.put_manifest_bytes(sig->bytes, sig->digest).status());
    HEARTH_TRY(st.add_referrer(fm.digest, sig->digest));
    ++(trust::is_attestation(*sm) ? signatures.attestations : signatures.signatures);
  }
  return signatures;
}

// The manifest and its signatures first; the signature is checked against the trust policy
// before any layer blob is downloaded; then the config and layers.
Result<Referrers> fetch_model(const RegistryClient& client, store::Store& st, const store::Reference& ref,
                              const FetchedManifest& fm, const PullOptions& opts) {
  HEARTH_ASSIGN_OR_RETURN(store::Manifest m, store::parse_manifest(fm.bytes));
  HEARTH_TRY(check_declared(m, opts, ref.to_string()));
  HEARTH_TRY(st.put_manifest_bytes(fm.bytes, fm.digest).status());
  HEARTH_ASSIGN_OR_RETURN(Referrers sigs, fetch_referrers(client, st, ref.name, fm));
  AdmitOptions ao;
  ao.allow_unsigned = opts.allow_unsigned;
  ao.policy_path = opts.policy_path;
  Status trusted = precheck_signature(st, ref.to_string(), fm.digest, ao);
  if (!trusted.ok()) return trusted.with_context("refused before downloading its layers");
  Status fetched = client.download_blob(ref.name, m.config, st);
  for (size_t i = 0; fetched.ok() && i < m.layers.size(); ++i)
    fetched = client.download_blob(ref.name, m.layers[i], st);
  if (!fetched.ok()) {
    if (is_refusal(fetched)) discard_downloads(st, m);
    return fetched;
  }
  return sigs;
}

}  // namespace

std::vector<std::string> configured_sources(const std::string& home) {
  std::vector<std::string> out;
  if (const char* env = std::getenv("HEARTH_MIRRORS"); env != nullptr) {
    std::stringstream ss(env);
    for (std::string item; std::getline(ss, item, ',');) {
      if (!item.empty()) out.push_back(item);
    }
  }
  std::ifstream f(home + "/mirrors");
  for (std::string line; std::getline(f, line);) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    while (!line.empty() && line.front() == ' ') line.erase(0, 1);
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

Result<PullResult> pull_model(store::Store& st, const store::Reference& ref, const PullOptions& opts) {
  PullResult out;
  auto local = st.resolve(ref);
  if (local.ok() && (ref.pinned() || !opts.upgrade)) {
    out.manifest = *local;
    out.already_present = true;
    out.verification = ref.pinned() ? "already in the store" : "pinned; pass --upgrade to fetch a newer version";
    return out;
  }
  if (opts.sources.empty()) {
    return make_error(
        ErrorCode::kFailedPrecondition,
        "no registry to pull '{}' from (pass --mirror URL, set HEARTH_MIRRORS, or list URLs in {}/mirrors)",
        ref.to_string(), st.home());
  }
  std::string remote_ref = ref.pinned() ? ref.digest.str() : ref.tag;
  std::vector<std::string> failures;
  ErrorCode failure_code = ErrorCode::kUnavailable;  // the most telling failure across sources
  auto note_failure = [&](const std::string& source, const Status& s) {
    failures.push_back(source + ": " + s.message());
    if (s.code() != ErrorCode::kUnavailable && s.code() != ErrorCode::kNotFound) failure_code = s.code();
    if (failure_code == ErrorCode::kUnavailable && s.code() == ErrorCode::kNotFound) failure_code = s.code();
  };
  // Held until the model is referenced, so a concurrent gc cannot take its blobs.
  HEARTH_ASSIGN_OR_RETURN(store::FileLock write_lock, st.lock_for_write());
  for (const auto& source : opts.sources) {
    RegistryClient client(source, opts.remote);
    auto fm = client.get_manifest(ref.name, remote_ref);
    if (!fm.ok()) {
      note_failure(source, fm.status());
      continue;
    }
    if (local.ok() && *local == fm->digest) {
      out.manifest = fm->digest;
      out.already_present = true;
      out.source = source;
      out.verification = "already up to date";
      return out;
    }
    auto sigs = fetch_model(client, st, ref, *fm, opts);
    if (!sigs.ok()) {
      // A refusal by the trust policy or a limit holds for every source; data loss from one
      // source is a reason to try the next.
      const ErrorCode c = sigs.status().code();
      if (c == ErrorCode::kResourceExhausted || c == ErrorCode::kUnauthenticated || c == ErrorCode::kPermissionDenied) {
        (void)store::append_audit(st.home(), {"pull", std::string(error_code_name(c)), ref.to_string(),
                                              fm->digest.str(), "", sigs.status().message()});
        return sigs.status().with_context("from " + source);
      }
      note_failure(source, sigs.status());
      continue;
    }
    out.manifest = fm->digest;
    out.source = source;
    out.signatures = sigs->signatures;
    out.attestations = sigs->attestations;
    break;
  }
  if (!out.manifest.valid()) {
    std::string all;
    for (const auto& f : failures) all += "\n  " + f;
    Status s = make_error(failure_code, "cannot pull '{}' from any source:{}", ref.to_string(), all);
    (void)store::append_audit(
        st.home(), {"pull", std::string(error_code_name(failure_code)), ref.to_string(), "", "", s.message()});
    return s;
  }

  // Verify before the model becomes reachable by its tag.
  AdmitOptions ao;
  ao.allow_unsigned = opts.allow_unsigned;
  ao.policy_path = opts.policy_path;
  ao.record_version = opts.record_version;
  bool had_tag = local.ok();
  auto verified = admit_model(st, ref.name, ref.pinned() ? "" : ref.tag, out.manifest, ao);
  if (!verified.ok()) return verified.status().with_context("pulled from " + out.source + " but not accepted");
  out.verification = verified->is_signed()
                         ? "signed by " + verified->publisher() + ", version " + std::to_string(verified->version())
                         : "UNSIGNED (allowed by operator)";
  out.tag_moved = had_tag && !ref.pinned();
  (void)store::append_audit(st.home(), {"pull", "ok", ref.to_string(), out.manifest.str(), verified->publisher_key_id(),
                                        "from " + out.source});
  return out;
}

}  // namespace hearth::registry
