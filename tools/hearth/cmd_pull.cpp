// `hearth pull` and `hearth push`: models to and from OCI registries and hearth mirrors.
#include <cstdio>

#include "command.h"
#include "hearth/registry/model_transfer.h"
#include "hearth/store/store.h"

namespace hearth::cli {
namespace {

using namespace hearth::registry;

void report(const Status& s) { set_exit_code(s.ok() ? 0 : report_error(s)); }

struct TransferFlags {
  std::vector<std::string> mirrors;
  bool upgrade = false;
  bool allow_unsigned = false;
  bool progress = false;
  uint64_t limit_rate = 0;
  int parallel = 4;
  bool cross_origin = false;
  uint64_t chunk_mib = 16;
  std::string ref;
  std::string target;
};

Status run_pull(const TransferFlags& f) {
  HEARTH_ASSIGN_OR_RETURN(store::Reference ref, store::parse_reference(f.ref));
  std::string home = store::default_home();
  HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(home));
  PullOptions opts;
  opts.sources = f.mirrors;
  for (auto& s : configured_sources(home)) opts.sources.push_back(s);
  opts.upgrade = f.upgrade;
  opts.allow_unsigned = f.allow_unsigned;
  opts.remote.progress = f.progress;
  opts.remote.max_recv_bytes_per_second = f.limit_rate;
  opts.remote.parallel = f.parallel;
  opts.remote.allow_cross_origin_redirects = f.cross_origin;
  HEARTH_ASSIGN_OR_RETURN(PullResult r, pull_model(st, ref, opts));
  if (r.already_present) {
    std::printf("%s: %s (%s)\n", ref.to_string().c_str(), r.verification.c_str(), r.manifest.str().c_str());
    return ok_status();
  }
  std::printf("pulled %s from %s\n  manifest %s\n  %zu signature(s), %zu attestation(s); %s%s\n",
              ref.to_string().c_str(), r.source.c_str(), r.manifest.str().c_str(), r.signatures, r.attestations,
              r.verification.c_str(), r.tag_moved ? "; tag upgraded" : "");
  return ok_status();
}

Status run_push(const TransferFlags& f) {
  HEARTH_ASSIGN_OR_RETURN(store::Reference ref, store::parse_reference(f.ref));
  HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(store::default_home()));
  PushOptions opts;
  opts.target = f.target;
  opts.remote.progress = f.progress;
  opts.remote.upload_chunk = f.chunk_mib << 20;
  HEARTH_ASSIGN_OR_RETURN(PushResult r, push_model(st, ref, opts));
  std::printf("pushed %s to %s\n  manifest %s\n  %zu signature(s), %zu attestation(s)%s\n", ref.to_string().c_str(),
              f.target.c_str(), r.manifest.str().c_str(), r.signatures, r.attestations,
              r.used_referrers_fallback ? " (referrers tag-schema fallback index updated)" : "");
  return ok_status();
}

void setup(CLI::App& app) {
  static TransferFlags pull, push;
  {
    auto* sub = app.add_subcommand("pull", "fetch a model from registries or mirrors, verifying it before use");
    sub->add_option("ref", pull.ref, "name:tag or name@sha256:...")->required();
    sub->add_option("--mirror", pull.mirrors,
                    "registry base URL, e.g. http://10.0.0.5:5050 (repeatable; tried in order)");
    sub->add_flag("--upgrade", pull.upgrade, "move an existing tag to the registry's current version");
    sub->add_flag("--allow-unsigned", pull.allow_unsigned, "accept an unsigned model (digests are still checked)");
    sub->add_flag("--progress", pull.progress, "show progress even when stderr is not a terminal");
    sub->add_option("--limit-rate", pull.limit_rate, "cap the download rate in bytes per second (all ranges together)");
    sub->add_flag("--allow-cross-origin-redirects", pull.cross_origin,
                  "follow a registry's redirect to another host (e.g. blob storage); default: same origin only");
    sub->add_option("--parallel", pull.parallel, "parallel ranges for large blobs (default 4)");
    sub->callback([] { report(run_pull(pull)); });
  }
  {
    auto* sub = app.add_subcommand("push", "upload a stored model and its signatures to a registry");
    sub->add_option("ref", push.ref, "name:tag")->required();
    sub->add_option("--to", push.target, "registry base URL, e.g. http://127.0.0.1:5000")->required();
    sub->add_option("--chunk-mib", push.chunk_mib, "upload blobs larger than this in PATCH chunks (default 16)");
    sub->add_flag("--progress", push.progress, "show progress even when stderr is not a terminal");
    sub->callback([] { report(run_push(push)); });
  }
}

CommandRegistrar reg(310, setup);

}  // namespace
}  // namespace hearth::cli
