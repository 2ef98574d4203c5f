// Store::gc and Store::check: reachability from refs.json, and a full consistency scan.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "hearth/core/log.h"
#include "hearth/store/store.h"

namespace hearth::store {
namespace fs = std::filesystem;
namespace {

// Adds a manifest, its config and layers, and (recursively) its referrers to `live`.
void mark(const Store& store, const RefsTable& t, const Digest& manifest, std::set<Digest>& live) {
  if (!live.insert(manifest).second) return;
  auto m = store.read_manifest(manifest);
  if (m.ok()) {
    live.insert(m->config.digest);
    for (const auto& l : m->layers) live.insert(l.digest);
  }
  if (auto r = t.referrers.find(manifest); r != t.referrers.end()) {
    for (const auto& d : r->second) mark(store, t, d, live);
  }
}

std::set<Digest> live_set(const Store& store, const RefsTable& t) {
  std::set<Digest> live;
  for (const auto& [name, repo] : t.repos) {
    for (const auto& d : repo.manifests) mark(store, t, d, live);
    for (const auto& [tag, d] : repo.tags) mark(store, t, d, live);
  }
  return live;
}

}  // namespace

Result<GcReport> Store::gc() {
  HEARTH_ASSIGN_OR_RETURN(FileLock gc_lock,
                          FileLock::acquire(root_ + "/gc.lock", FileLock::Mode::kExclusive,
                                            "waiting for running pulls and imports to finish before gc"));
  GcReport report;
  // Drop referrer entries whose subject is no longer held by any name.
  HEARTH_TRY(update_refs([](RefsTable& t) {
    std::set<Digest> held;
    for (const auto& [name, repo] : t.repos) {
      held.insert(repo.manifests.begin(), repo.manifests.end());
      for (const auto& [tag, d] : repo.tags) held.insert(d);
    }
    // Referrers of referrers stay while their subject is reachable.
    bool changed = true;
    std::set<Digest> reachable = held;
    while (changed) {
      changed = false;
      for (const auto& [subject, refs] : t.referrers) {
        if (reachable.count(subject) == 0) continue;
        for (const auto& d : refs) changed = reachable.insert(d).second || changed;
      }
    }
    for (auto it = t.referrers.begin(); it != t.referrers.end();) {
      it = reachable.count(it->first) ? std::next(it) : t.referrers.erase(it);
    }
    return ok_status();
  }));
  HEARTH_ASSIGN_OR_RETURN(RefsTable t, refs());
  std::set<Digest> live = live_set(*this, t);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_ + "/blobs/sha256", ec)) {
    std::string name = entry.path().filename().string();
    auto d = Digest::parse("sha256:" + name);
    if (d.ok() && live.count(*d)) {
      ++report.blobs_kept;
      continue;
    }
    uint64_t size = entry.is_regular_file(ec) ? entry.file_size(ec) : 0;
    if (::unlink(entry.path().c_str()) == 0) {
      if (d.ok()) {
        ++report.blobs_removed;
        report.bytes_removed += size;
      } else {
        ++report.temp_files_removed;
      }
    }
  }
  // With gc.lock held exclusively no writer is running, so temp files are debris of crashes.
  // Partial downloads stay: a later pull resumes them.
  for (const auto& entry : fs::directory_iterator(tmp_dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() > 8 && name.substr(name.size() - 8) == ".partial") continue;
    if (::unlink(entry.path().c_str()) == 0) ++report.temp_files_removed;
  }
  return report;
}

Result<CheckReport> Store::check() const {
  CheckReport report;
  auto table = refs();
  if (!table.ok()) {
    report.problems.push_back(table.status().message());
    return report;
  }
  const RefsTable& t = *table;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_ + "/blobs/sha256", ec)) {
    std::string name = entry.path().filename().string();
    auto d = Digest::parse("sha256:" + name);
    if (!d.ok()) {
      if (name.rfind(".", 0) == 0) continue;  // an atomic writer's temp file (cleared by gc)
      report.problems.push_back("stray file in blobs: " + entry.path().string());
      continue;
    }
    ++report.blobs_checked;
    Status s = verify_blob(*d);
    if (!s.ok()) report.problems.push_back(s.message());
  }
  for (const auto& entry : fs::directory_iterator(tmp_dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() > 8 && name.substr(name.size() - 8) == ".partial") ++report.partial_downloads;
  }
  auto check_manifest = [&](const std::string& what, const Digest& d) {
    auto m = read_manifest(d);
    if (!m.ok()) {
      report.problems.push_back(what + ": " + m.status().message());
      return;
    }
    if (!has_blob(m->config.digest)) {
      report.problems.push_back(what + ": config blob " + m->config.digest.str() + " is missing");
    }
    for (const auto& l : m->layers) {
      if (!has_blob(l.digest)) report.problems.push_back(what + ": layer blob " + l.digest.str() + " is missing");
      else if (blob_size(l.digest).value_or(0) != l.size)
        report.problems.push_back(what + ": layer blob " + l.digest.str() + " has the wrong size");
    }
  };
  for (const auto& [name, repo] : t.repos) {
    for (const auto& [tag, d] : repo.tags) {
      if (repo.manifests.count(d) == 0) report.problems.push_back(name + ":" + tag + " is not among its name's manifests");
    }
    for (const auto& d : repo.manifests) check_manifest(name + "@" + d.str(), d);
  }
  for (const auto& [subject, refs] : t.referrers) {
    for (const auto& d : refs) check_manifest("referrer " + d.str() + " of " + subject.str(), d);
  }
  return report;
}

}  // namespace hearth::store
