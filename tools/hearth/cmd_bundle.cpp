// `hearth bundle export|import`: air-gapped transfer as an OCI image-layout tarball.
#include <cstdio>

#include "command.h"
#include "hearth/registry/model_bundle.h"
#include "hearth/store/store.h"

namespace hearth::cli {
namespace {

void report(const Status& s) { set_exit_code(s.ok() ? 0 : report_error(s)); }

Status run_export(const std::string& ref_text, const std::string& file) {
  HEARTH_ASSIGN_OR_RETURN(store::Reference ref, store::parse_reference(ref_text));
  HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(store::default_home()));
  HEARTH_ASSIGN_OR_RETURN(registry::BundleExport r, registry::export_bundle(st, ref, file));
  std::printf("exported %s (%s) to %s: %zu blobs, %zu signature(s), %zu attestation(s)\n", ref.to_string().c_str(),
              r.manifest.str().c_str(), file.c_str(), r.blobs, r.signatures, r.attestations);
  return ok_status();
}

Status run_import(const std::string& file, bool allow_unsigned) {
  HEARTH_ASSIGN_OR_RETURN(store::Store st, store::Store::open(store::default_home()));
  registry::AdmitOptions opts;
  opts.allow_unsigned = allow_unsigned;
  HEARTH_ASSIGN_OR_RETURN(registry::BundleImport r, registry::import_bundle(st, file, opts));
  std::printf("imported %zu blobs from %s\n", r.blobs, file.c_str());
  for (const auto& a : r.admitted) std::printf("  %s\n", a.c_str());
  return ok_status();
}

void setup(CLI::App& app) {
  auto* sub = app.add_subcommand("bundle", "carry models, signatures and provenance as one file (air gap)");
  sub->require_subcommand(1);
  auto* exp = sub->add_subcommand("export", "write REF and its signatures to an OCI-layout tarball");
  static std::string ref, out, in;
  static bool allow_unsigned = false;
  exp->add_option("ref", ref, "name:tag")->required();
  exp->add_option("file", out, "output .tar")->required();
  exp->callback([] { report(run_export(ref, out)); });
  auto* imp = sub->add_subcommand("import", "verify and import an OCI-layout tarball (no network)");
  imp->add_option("file", in, "bundle .tar")->required()->check(CLI::ExistingFile);
  imp->add_flag("--allow-unsigned", allow_unsigned, "accept unsigned models (digests are still checked)");
  imp->callback([] { report(run_import(in, allow_unsigned)); });
}

CommandRegistrar reg(340, setup);

}  // namespace
}  // namespace hearth::cli
