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

// Adds a manifest, its config and layers, and (recursively) its referrers to `live`. A
// manifest that cannot be read is an error: the blobs it names are unknown.
Status mark(const Store& store, const RefsTable& t, const std::string& what, const Digest& manifest,
            std::set<Digest>& live) {
  if (!live.insert(manifest).second) return ok_status();
  auto m = store.read_manifest(manifest);
  if (!m.ok()) {
    return make_error(ErrorCode::kDataLoss,
                      "gc refused: {} ({}) cannot be read: {}; its blobs may be live, so nothing was deleted (see "
                      "'hearth store check'; 'hearth store repair --drop-broken' drops the entry)",
                      what, manifest.str(), m.status().message());
  }
  live.insert(m->config.digest);
  for (const auto& l : m->layers) live.insert(l.digest);
  if (auto r = t.referrers.find(manifest); r != t.referrers.end()) {
    for (const auto& d : r->second) HEARTH_TRY(mark(store, t, "referrer " + d.str() + " of " + what, d, live));
  }
  return ok_status();
}

Result<std::set<Digest>> live_set(const Store& store, const RefsTable& t) {
  std::set<Digest> live;
  for (const auto& [name, repo] : t.repos) {
    for (const auto& [tag, d] : repo.tags) HEARTH_TRY(mark(store, t, name + ":" + tag, d, live));
    for (const auto& d : repo.manifests) HEARTH_TRY(mark(store, t, name + "@" + d.str(), d, live));
  }
  return live;
}

bool is_partial(const std::string& name) { return name.size() > 8 && name.substr(name.size() - 8) == ".partial"; }

}  // namespace

Result<GcReport> Store::gc() {
  HEARTH_ASSIGN_OR_RETURN(FileLock gc_lock,
                          FileLock::acquire(root_ + "/gc.lock", FileLock::Mode::kExclusive,
                                            "waiting for running pulls and imports to finish before gc"));
  GcReport report;
  // Every held manifest must be readable before anything changes.
  {
    HEARTH_ASSIGN_OR_RETURN(RefsTable before, refs());
    HEARTH_TRY(live_set(*this, before).status());
  }
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
  HEARTH_ASSIGN_OR_RETURN(std::set<Digest> live, live_set(*this, t));
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
    if (is_partial(name)) continue;
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
    if (is_partial(name))
      ++report.partial_downloads;
    else
      report.temp_files.push_back(entry.path().string());
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
      if (!has_blob(l.digest))
        report.problems.push_back(what + ": layer blob " + l.digest.str() + " is missing");
      else if (blob_size(l.digest).value_or(0) != l.size)
        report.problems.push_back(what + ": layer blob " + l.digest.str() + " has the wrong size");
    }
  };
  for (const auto& [name, repo] : t.repos) {
    for (const auto& [tag, d] : repo.tags) {
      if (repo.manifests.count(d) == 0)
        report.problems.push_back(name + ":" + tag + " is not among its name's manifests");
    }
    for (const auto& d : repo.manifests) check_manifest(name + "@" + d.str(), d);
  }
  for (const auto& [subject, refs] : t.referrers) {
    for (const auto& d : refs) check_manifest("referrer " + d.str() + " of " + subject.str(), d);
  }
  return report;
}

Result<std::vector<std::string>> Store::repair_drop_broken() {
  HEARTH_ASSIGN_OR_RETURN(FileLock gc_lock, FileLock::acquire(root_ + "/gc.lock", FileLock::Mode::kExclusive,
                                                              "waiting for running pulls and imports to finish"));
  std::vector<std::string> dropped;
  HEARTH_TRY(update_refs([&](RefsTable& t) {
    auto readable = [&](const Digest& d) { return read_manifest(d).ok(); };
    for (auto& [name, repo] : t.repos) {
      for (auto it = repo.tags.begin(); it != repo.tags.end();) {
        if (readable(it->second)) {
          ++it;
          continue;
        }
        dropped.push_back(name + ":" + it->first + " (" + it->second.str() + ")");
        it = repo.tags.erase(it);
      }
      for (auto it = repo.manifests.begin(); it != repo.manifests.end();) {
        if (readable(*it)) {
          ++it;
          continue;
        }
        dropped.push_back(name + "@" + it->str());
        it = repo.manifests.erase(it);
      }
    }
    for (auto& [subject, list] : t.referrers) {
      for (auto it = list.begin(); it != list.end();) {
        if (readable(*it)) {
          ++it;
          continue;
        }
        dropped.push_back("referrer " + it->str() + " of " + subject.str());
        it = list.erase(it);
      }
    }
    return ok_status();
  }));
  return dropped;
}

}  // namespace hearth::store
