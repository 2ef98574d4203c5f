// `hearth import`, `list`, `rm`, `tag`, `gc`, `store check`: the local model store.
#include <cstdio>

#include "command.h"
#include "hearth/core/mapped_file.h"
#include "hearth/store/model_import.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/signing_key.h"
#include "hearth/store/store.h"

namespace hearth::cli {
namespace {

using namespace hearth::store;

Result<Store> open_store() { return Store::open(default_home()); }

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", b / 1073741824.0);
  else if (b >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
  else if (b >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

Status run_import(const std::string& file, const std::string& ref_text, uint64_t version, const std::string& sign_key) {
  HEARTH_ASSIGN_OR_RETURN(Reference ref, parse_reference(ref_text));
  std::optional<trust::PrivateKey> key;
  if (!sign_key.empty()) {  // loaded before any work, so a bad key fails fast
    HEARTH_ASSIGN_OR_RETURN(key, trust::PrivateKey::load(sign_key));
  }
  HEARTH_ASSIGN_OR_RETURN(Store store, open_store());
  ImportOptions opts;
  opts.version = version;
  // An ONNX model (by its name) goes in as one; anything else must be a GGUF file.
  const bool onnx = file.size() > 5 && file.compare(file.size() - 5, 5, ".onnx") == 0;
  HEARTH_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::open(file));
  HEARTH_ASSIGN_OR_RETURN(ImportResult r, onnx ? import_onnx(store, mapped, ref, opts) : import_gguf(store, mapped, ref, opts));
  // The operator imported this file on this host: it runs like the file itself would.
  HEARTH_TRY(store.record_local_import(r.manifest, file));
  std::printf("imported %s as %s\n  manifest %s\n  %s %s, %s parameters, %s, version %llu\n", file.c_str(),
              ref.to_string().c_str(), r.manifest.str().c_str(), r.facts.architecture.c_str(),
              human_bytes(r.weights.size).c_str(), param_size_string(r.facts.parameters).c_str(),
              r.facts.quantization.c_str(), static_cast<unsigned long long>(version));
  if (key) {
    HEARTH_TRY(trust::sign_model(store, ref, *key).status());
    std::printf("  signed with key %s\n", key->public_key().key_id().substr(0, 16).c_str());
  } else {
    std::printf("  unsigned: runs on this host as a local import (\"local_paths\": \"deny\" forbids it); "
                "sign it with --sign-key or 'hearth sign'\n");
  }
  return ok_status();
}

Status run_list() {
  HEARTH_ASSIGN_OR_RETURN(Store store, open_store());
  HEARTH_ASSIGN_OR_RETURN(auto entries, store.list());
  std::printf("%-40s %-12s %-19s %10s %7s %s\n", "NAME", "TAG", "DIGEST", "SIZE", "VERSION", "SIGNED");
  for (const auto& e : entries) {
    std::printf("%-40s %-12s %-19s %10s %7llu %s\n", e.name.c_str(), e.tag.empty() ? "-" : e.tag.c_str(),
                e.digest.str().substr(0, 19).c_str(), human_bytes(e.size).c_str(),
                static_cast<unsigned long long>(e.version), e.signatures > 0 ? "yes" : "no");
  }
  return ok_status();
}

Status run_rm(const std::vector<std::string>& refs) {
  HEARTH_ASSIGN_OR_RETURN(Store store, open_store());
  for (const auto& text : refs) {
    HEARTH_ASSIGN_OR_RETURN(Reference ref, parse_reference(text));
    HEARTH_TRY(store.remove(ref));
    std::printf("removed %s (run 'hearth gc' to free space)\n", ref.to_string().c_str());
  }
  return ok_status();
}

Status run_tag(const std::string& src_text, const std::string& dst_text) {
  HEARTH_ASSIGN_OR_RETURN(Reference src, parse_reference(src_text));
  HEARTH_ASSIGN_OR_RETURN(Reference dst, parse_reference(dst_text));
  if (dst.pinned()) return make_error(ErrorCode::kInvalidArgument, "tag target must be name:tag, got '{}'", dst_text);
  HEARTH_ASSIGN_OR_RETURN(Store store, open_store());
  HEARTH_ASSIGN_OR_RETURN(Digest d, store.resolve(src));
  HEARTH_TRY(store.set_tag(dst.name, dst.tag, d));
  std::printf("%s -> %s\n", dst.to_string().c_str(), d.str().c_str());
  return ok_status();
}

Status run_gc() {
  HEARTH_ASSIGN_OR_RETURN(Store store, open_store());
  HEARTH_ASSIGN_OR_RETURN(GcReport r, store.gc());
  std::printf("gc: removed %zu blobs (%s) and %zu temp files; kept %zu blobs\n", r.blobs_removed,
              human_bytes(r.bytes_removed).c_str(), r.temp_files_removed, r.blobs_kept);
  return ok_status();
}

Status run_check() {
  HEARTH_ASSIGN_OR_RETURN(Store store, open_store());
  HEARTH_ASSIGN_OR_RETURN(CheckReport r, store.check());
  for (const auto& p : r.problems) std::printf("problem: %s\n", p.c_str());
  for (const auto& t : r.temp_files)
    std::printf("temp file: %s (left by an interrupted write; gc removes it)\n", t.c_str());
  std::printf("store check: %zu blobs verified, %zu resumable partial downloads, %zu temp files, %s\n", r.blobs_checked,
              r.partial_downloads, r.temp_files.size(), r.ok() ? "consistent" : "INCONSISTENT");
  if (!r.ok()) {
    std::printf(
        "gc refuses to run while a reference is broken; 'hearth store repair --drop-broken' drops the\n"
        "broken entries (re-pull or re-import those models afterwards)\n");
  }
  if (!r.ok()) return make_error(ErrorCode::kDataLoss, "store {} has {} problems", store.home(), r.problems.size());
  return ok_status();
}

Status run_repair(bool drop_broken) {
  if (!drop_broken) {
    return make_error(ErrorCode::kInvalidArgument,
                      "store repair needs --drop-broken (it removes the tags, pins and signatures whose manifest "
                      "cannot be read; see 'hearth store check' first)");
  }
  HEARTH_ASSIGN_OR_RETURN(Store store, open_store());
  HEARTH_ASSIGN_OR_RETURN(auto dropped, store.repair_drop_broken());
  for (const auto& d : dropped) std::printf("dropped %s\n", d.c_str());
  std::printf("store repair: dropped %zu broken entries%s\n", dropped.size(),
              dropped.empty() ? "" : " (run 'hearth gc' to free their blobs)");
  return ok_status();
}

void report(const Status& s) { set_exit_code(s.ok() ? 0 : report_error(s)); }

void setup(CLI::App& app) {
  {
    auto* sub = app.add_subcommand("import", "import a local GGUF file into the store as name:tag");
    static std::string file, ref;
    static uint64_t version = 1;
    static std::string sign_key;
    sub->add_option("file", file, "GGUF file")->required()->check(CLI::ExistingFile);
    sub->add_option("ref", ref, "name:tag")->required();
    sub->add_option("--model-version", version, "model version (org.hearth.version; must increase per name)");
    sub->add_option("--sign-key", sign_key, "sign the imported model with this private key at once");
    sub->callback([] { report(run_import(file, ref, version, sign_key)); });
  }
  {
    auto* sub = app.add_subcommand("list", "list models in the store");
    sub->callback([] { report(run_list()); });
  }
  {
    auto* sub = app.add_subcommand("rm", "remove model references (name:tag or name@sha256:...)");
    static std::vector<std::string> refs;
    sub->add_option("refs", refs, "references")->required();
    sub->callback([] { report(run_rm(refs)); });
  }
  {
    auto* sub = app.add_subcommand("tag", "give a stored model another name:tag");
    static std::string src, dst;
    sub->add_option("source", src, "existing reference")->required();
    sub->add_option("target", dst, "new name:tag")->required();
    sub->callback([] { report(run_tag(src, dst)); });
  }
  {
    auto* sub = app.add_subcommand("gc", "delete blobs that no reference uses");
    sub->callback([] { report(run_gc()); });
  }
  {
    auto* sub = app.add_subcommand("store", "store maintenance");
    sub->require_subcommand(1);
    auto* check = sub->add_subcommand("check", "re-hash every blob and check every reference");
    check->callback([] { report(run_check()); });
    auto* repair = sub->add_subcommand("repair", "drop references whose manifest cannot be read (after store check)");
    static bool drop_broken = false;
    repair->add_flag("--drop-broken", drop_broken, "remove tags, pins and signatures whose manifest is unreadable");
    repair->callback([] { report(run_repair(drop_broken)); });
  }
}

CommandRegistrar reg(300, setup);

}  // namespace
}  // namespace hearth::cli
