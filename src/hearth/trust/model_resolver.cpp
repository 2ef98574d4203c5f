#include "hearth/trust/model_resolver.h"

#include <sys/stat.h>

#include "hearth/core/log.h"
#include "hearth/store/audit_log.h"
#include "hearth/store/reference.h"
#include "hearth/store/store.h"
#include "hearth/trust/trust_policy.h"
#include "hearth/trust/verifier.h"

namespace hearth::trust {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_regular_file(std::string_view p) {
  struct stat st;
  return ::stat(std::string(p).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

const std::string& ResolvedModel::gguf_path() const {
  if (const auto* a = artifact()) return a->gguf_path();
  return std::get<LocalModelPath>(v_).path;
}

std::string ResolvedModel::describe() const {
  if (const auto* a = artifact()) {
    std::string s = a->reference() + " (" + a->manifest_digest().str().substr(0, 19) + "..., ";
    if (a->is_signed()) {
      s += "signed by " + a->publisher() + ", '" + a->model_name() + "' version " + std::to_string(a->version());
    } else if (!a->local_source().empty()) {
      s += "imported locally from " + a->local_source() + " by this host, unsigned";
    } else {
      s += "UNSIGNED, allowed by operator";
    }
    return s + ")";
  }
  return std::get<LocalModelPath>(v_).path + " (local file, unverified)";
}

bool looks_like_local_path(std::string_view arg) {
  if (ends_with(arg, ".gguf") || arg.substr(0, 1) == "/" || arg.substr(0, 2) == "./" || arg.substr(0, 3) == "../" ||
      arg.substr(0, 1) == "~") {
    return true;
  }
  if (store::parse_reference(arg).ok()) return false;
  return is_regular_file(arg);
}

Result<ResolvedModel> resolve_model(std::string_view arg, const ResolveOptions& opts) {
  std::string home = opts.home.empty() ? store::default_home() : opts.home;
  std::string policy_path = opts.policy_path.empty() ? default_policy_path(home) : opts.policy_path;
  HEARTH_ASSIGN_OR_RETURN(TrustPolicy policy, load_policy(policy_path));

  if (looks_like_local_path(arg)) {
    std::string path(arg);
    if (!policy.local_paths_allowed) {
      Status s = make_error(ErrorCode::kPermissionDenied,
                            "'{}': loading plain file paths is denied by {} (\"local_paths\": \"deny\"); import and "
                            "sign the model, then use its store reference",
                            path, policy_path);
      (void)store::append_audit(home, {"refuse", "permission_denied", path, "", "", s.message()});
      return s;
    }
    log::warn("loading '{}' as a local file: it is not verified against the trust policy", path);
    return ResolvedModel(LocalModelPath{path});
  }

  HEARTH_ASSIGN_OR_RETURN(store::Reference ref, store::parse_reference(arg));
  HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(home));
  ArtifactVerifier verifier(st, std::move(policy));
  VerifyOptions vo;
  vo.allow_unsigned = opts.allow_unsigned;
  HEARTH_ASSIGN_OR_RETURN(VerifiedArtifact a, verifier.verify(ref, vo));
  for (const auto& note : a.notes()) log::warn("{}: {}", a.reference(), note);
  // The load itself is recorded by whoever loads (after it succeeded or failed), not here.
  return ResolvedModel(std::move(a));
}

}  // namespace hearth::trust
