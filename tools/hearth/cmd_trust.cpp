// `hearth keygen`, `sign`, `verify`, `trust add|show`: signing keys, signatures and the trust
// policy.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

#include "command.h"
#include "hearth/core/atomic_file.h"
#include "hearth/registry/model_admission.h"
#include "hearth/store/store.h"
#include "hearth/trust/model_description.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/signing_key.h"
#include "hearth/trust/trust_policy.h"
#include "hearth/trust/verifier.h"

namespace hearth::cli {
namespace {

using namespace hearth::trust;

void report(const Status& s) { set_exit_code(s.ok() ? 0 : report_error(s)); }

Status run_keygen(const std::string& prefix, bool ed25519, bool force) {
  std::string priv = prefix + ".key", pub = prefix + ".pub";
  if (!force && (std::filesystem::exists(priv) || std::filesystem::exists(pub))) {
    return make_error(ErrorCode::kAlreadyExists, "{} or {} exists (pass --force to overwrite)", priv, pub);
  }
  HEARTH_ASSIGN_OR_RETURN(PrivateKey key,
                          PrivateKey::generate(ed25519 ? KeyAlgorithm::kEd25519 : KeyAlgorithm::kEcdsaP256));
  HEARTH_ASSIGN_OR_RETURN(AtomicFileWriter w, AtomicFileWriter::create(priv));
  ::chmod(w.temp_path().c_str(), 0600);
  HEARTH_TRY(w.write(key.private_pem()));
  HEARTH_TRY(w.commit());
  HEARTH_TRY(write_file_atomic(pub, key.public_key().pem()));
  std::printf("private key: %s (keep it secret)\npublic key:  %s\nkey id:      %s (%s)\n", priv.c_str(), pub.c_str(),
              key.public_key().key_id().c_str(), std::string(key_algorithm_name(key.algorithm())).c_str());
  return ok_status();
}

Status run_sign(const std::string& ref_text, const std::string& key_path, const std::string& name,
                const std::string& out_path) {
  HEARTH_ASSIGN_OR_RETURN(store::Reference ref, store::parse_reference(ref_text));
  HEARTH_ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::load(key_path));
  HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(store::default_home()));
  HEARTH_ASSIGN_OR_RETURN(SignResult r, sign_model(st, ref, key, name));
  if (!out_path.empty()) HEARTH_TRY(write_file_atomic(out_path, r.bundle_json));
  std::printf("signed %s (%s) with key %s\n  signature %s\n", ref.to_string().c_str(), r.model_manifest.str().c_str(),
              key.public_key().key_id().substr(0, 16).c_str(), r.signature_manifest.str().c_str());
  return ok_status();
}

Status run_verify(const std::string& ref_text, bool allow_unsigned, const std::string& policy_path) {
  HEARTH_ASSIGN_OR_RETURN(store::Reference ref, store::parse_reference(ref_text));
  std::string home = store::default_home();
  HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(home));
  HEARTH_ASSIGN_OR_RETURN(TrustPolicy policy,
                          load_policy(policy_path.empty() ? default_policy_path(home) : policy_path));
  if (auto p = describe_model(st, ref, policy); p.ok()) std::printf("%s", format_provenance(*p).c_str());
  ArtifactVerifier v(st, std::move(policy));
  VerifyOptions opts;
  opts.allow_unsigned = allow_unsigned;
  HEARTH_ASSIGN_OR_RETURN(VerifiedArtifact a, v.verify(ref, opts));
  HEARTH_TRY(registry::parse_weights_confined(a, a.reference()));
  std::printf("%s: OK\n  manifest  %s\n  weights   %s (%llu bytes, all digests re-checked, parsed in the sandbox)\n",
              a.reference().c_str(),
              a.manifest_digest().str().c_str(), a.weights_digest().str().c_str(),
              static_cast<unsigned long long>(a.gguf_size()));
  if (a.is_signed()) {
    std::printf("  signed by %s (key %s) as '%s' version %llu\n", a.publisher().c_str(),
                a.publisher_key_id().substr(0, 16).c_str(), a.model_name().c_str(),
                static_cast<unsigned long long>(a.version()));
  } else {
    std::printf("  UNSIGNED (allowed by --allow-unsigned or the policy)\n");
  }
  for (const auto& n : a.notes()) std::printf("  note: %s\n", n.c_str());
  return ok_status();
}

Status run_trust_add(const std::string& key_file, const std::vector<std::string>& models, const std::string& name,
                     uint64_t min_version) {
  std::string home = store::default_home();
  std::string policy_path = default_policy_path(home);
  HEARTH_ASSIGN_OR_RETURN(TrustPolicy policy, load_policy(policy_path));
  HEARTH_ASSIGN_OR_RETURN(PublicKey key, PublicKey::load(key_file));
  std::error_code ec;
  std::filesystem::create_directories(home + "/trust/keys", ec);
  std::string rel = "keys/" + key.key_id().substr(0, 32) + ".pub";
  HEARTH_TRY(write_file_atomic(home + "/trust/" + rel, key.pem()));
  Publisher pub;
  pub.name = name.empty() ? key.key_id().substr(0, 16) : name;
  pub.key_path = rel;
  pub.key = key;
  pub.models = models;
  pub.min_version = min_version;
  std::erase_if(policy.publishers, [&](const Publisher& p) { return p.key.key_id() == key.key_id(); });
  policy.publishers.push_back(std::move(pub));
  HEARTH_TRY(write_file_atomic(policy_path, serialize_policy(policy)));
  std::printf("trusting key %s as '%s' for", key.key_id().substr(0, 16).c_str(), policy.publishers.back().name.c_str());
  for (const auto& m : models) std::printf(" %s", m.c_str());
  std::printf("\npolicy: %s\n", policy_path.c_str());
  return ok_status();
}

Status run_trust_set(const std::string& setting, const std::string& value) {
  std::string policy_path = default_policy_path(store::default_home());
  HEARTH_ASSIGN_OR_RETURN(TrustPolicy policy, load_policy(policy_path));
  if (setting == "local_paths" && (value == "allow" || value == "deny")) {
    policy.local_paths_allowed = value == "allow";
  } else if (setting == "allow_unsigned" && (value == "true" || value == "false")) {
    policy.allow_unsigned = value == "true";
  } else {
    return make_error(ErrorCode::kInvalidArgument,
                      "unknown setting '{}={}' (use local_paths allow|deny, allow_unsigned true|false)", setting,
                      value);
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(policy_path).parent_path(), ec);
  return write_file_atomic(policy_path, serialize_policy(policy));
}

Status run_trust_show() {
  std::string policy_path = default_policy_path(store::default_home());
  HEARTH_ASSIGN_OR_RETURN(TrustPolicy policy, load_policy(policy_path));
  std::printf("policy: %s%s\n%s", policy_path.c_str(), policy.path.empty() ? " (missing: defaults)" : "",
              serialize_policy(policy).c_str());
  return ok_status();
}

void setup(CLI::App& app) {
  {
    auto* sub = app.add_subcommand("keygen", "create a signing key pair (ECDSA P-256, or Ed25519)");
    static std::string prefix = "hearth-signing";
    static bool ed25519 = false, force = false;
    sub->add_option("--out", prefix, "write PREFIX.key and PREFIX.pub (default hearth-signing)");
    sub->add_flag("--ed25519", ed25519, "use Ed25519 instead of ECDSA P-256");
    sub->add_flag("--force", force, "overwrite existing files");
    sub->callback([] { report(run_keygen(prefix, ed25519, force)); });
  }
  {
    auto* sub =
        app.add_subcommand("sign", "sign a stored model (OpenSSF model-signing bundle, stored as an OCI referrer)");
    static std::string ref, key, name, out;
    sub->add_option("ref", ref, "name:tag or name@sha256:...")->required();
    sub->add_option("--key", key, "private key PEM (from hearth keygen)")->required();
    sub->add_option("--name", name, "model name to sign (default: the reference's name)");
    sub->add_option("--output", out, "also write the sigstore bundle to this file");
    sub->callback([] { report(run_sign(ref, key, name, out)); });
  }
  {
    auto* sub = app.add_subcommand("verify", "verify a stored model against the trust policy");
    static std::string ref, policy;
    static bool allow_unsigned = false;
    sub->add_option("ref", ref, "name:tag or name@sha256:...")->required();
    sub->add_flag("--allow-unsigned", allow_unsigned, "accept an unsigned model (digests are still checked)");
    sub->add_option("--policy", policy, "trust policy file (default $HEARTH_HOME/trust/policy.json)");
    sub->callback([] { report(run_verify(ref, allow_unsigned, policy)); });
  }
  {
    auto* sub = app.add_subcommand("trust", "edit or show the trust policy");
    sub->require_subcommand(1);
    auto* add = sub->add_subcommand("add", "trust a publisher key for model name patterns");
    static std::string key, name;
    static std::vector<std::string> models;
    static uint64_t min_version = 0;
    add->add_option("key", key, "public key PEM")->required()->check(CLI::ExistingFile);
    add->add_option("--models", models, "name patterns, e.g. 'acme/*'")->required();
    add->add_option("--name", name, "publisher name");
    add->add_option("--min-version", min_version, "lowest acceptable version");
    add->callback([] { report(run_trust_add(key, models, name, min_version)); });
    auto* set = sub->add_subcommand("set", "set local_paths allow|deny or allow_unsigned true|false");
    static std::string setting, value;
    set->add_option("setting", setting)->required();
    set->add_option("value", value)->required();
    set->callback([] { report(run_trust_set(setting, value)); });
    auto* show = sub->add_subcommand("show", "print the trust policy");
    show->callback([] { report(run_trust_show()); });
  }
}

CommandRegistrar reg(320, setup);

}  // namespace
}  // namespace hearth::cli
