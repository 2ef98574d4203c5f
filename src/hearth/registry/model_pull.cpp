// pull_model (see model_transfer.h).
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "hearth/core/log.h"
#include "hearth/registry/model_transfer.h"
#include "hearth/store/audit_log.h"
#include "hearth/registry/model_admission.h"
#include "hearth/trust/model_signer.h"

namespace hearth::registry {
namespace {

using store::Digest;

// Fetches the blobs and referrers of an already-fetched model manifest into the store.
struct Referrers {
  size_t signatures = 0, attestations = 0;
};

Result<Referrers> fetch_model(const RegistryClient& client, store::Store& st, const std::string& name,
                              const FetchedManifest& fm) {
  HEARTH_ASSIGN_OR_RETURN(store::Manifest m, store::parse_manifest(fm.bytes));
  HEARTH_TRY(client.download_blob(name, m.config, st));
  for (const auto& l : m.layers) HEARTH_TRY(client.download_blob(name, l, st));
  HEARTH_TRY(st.put_manifest_bytes(fm.bytes, fm.digest).status());

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
        sm->artifact_type != store::kSigstoreBundleMediaType) {
      log::warn("referrer {} is not a signature of {}; skipped", d.digest.str(), fm.digest.str());
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
    return make_error(ErrorCode::kFailedPrecondition, "no registry to pull '", ref.to_string(),
                      "' from (pass --mirror URL, set HEARTH_MIRRORS, or list URLs in ", st.home(), "/mirrors)");
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
    auto sigs = fetch_model(client, st, ref.name, *fm);
    if (!sigs.ok()) {
      // Data loss from one source is a reason to try the next, not to give up.
      note_failure(source, sigs.status());
      if (sigs.status().code() == ErrorCode::kResourceExhausted) return sigs.status();
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
    Status s = make_error(failure_code, "cannot pull '", ref.to_string(), "' from any source:", all);
    (void)store::append_audit(st.home(), {"pull", std::string(error_code_name(failure_code)), ref.to_string(), "", "", s.message()});
    return s;
  }

  // Verify before the model becomes reachable by its tag.
  AdmitOptions ao;
  ao.allow_unsigned = opts.allow_unsigned;
  ao.policy_path = opts.policy_path;
  bool had_tag = local.ok();
  auto verified = admit_model(st, ref.name, ref.pinned() ? "" : ref.tag, out.manifest, ao);
  if (!verified.ok()) return verified.status().with_context("pulled from " + out.source + " but not accepted");
  out.verification = verified->is_signed() ? "signed by " + verified->publisher() + ", version " +
                                                 std::to_string(verified->version())
                                           : "UNSIGNED (allowed by operator)";
  out.tag_moved = had_tag && !ref.pinned();
  (void)store::append_audit(st.home(), {"pull", "ok", ref.to_string(), out.manifest.str(),
                                        verified->publisher_key_id(), "from " + out.source});
  return out;
}

}  // namespace hearth::registry
