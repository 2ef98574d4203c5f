// Store: hearth's content-addressed model store under $HEARTH_HOME (default
// ~/.local/share/hearth). Layout:
//   store/blobs/sha256/<hex>   immutable blobs (weights, configs, manifests, signatures)
//   store/tmp/                 in-progress writes; <hex>.partial files keep interrupted downloads
//   store/refs.json            names, tags, digest pins, referrers (see refs.h)
//   store/refs.lock, gc.lock   advisory locks (see file_lock.h)
// A blob appears under its digest only after its bytes were hashed, fsynced and renamed into
// place, and refs change only after the blobs they name exist, so a crash at any moment
// leaves either the old state or the new one.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/mapped_file.h"
#include "hearth/core/status.h"
#include "hearth/store/digest.h"
#include "hearth/store/file_lock.h"
#include "hearth/store/oci_manifest.h"
#include "hearth/store/reference.h"
#include "hearth/store/refs.h"

namespace hearth::store {

// $HEARTH_HOME, else $XDG_DATA_HOME/hearth, else ~/.local/share/hearth.
std::string default_home();

// One tagged or pinned model, as `hearth list` shows it.
struct ListEntry {
  std::string name;
  std::string tag;  // empty for a manifest held only by digest
  Digest digest;
  uint64_t size = 0;     // manifest + config + layers
  uint64_t version = 0;  // org.hearth.version
  size_t signatures = 0;
};

struct GcReport {
  size_t blobs_removed = 0;
  uint64_t bytes_removed = 0;
  size_t temp_files_removed = 0;
  size_t blobs_kept = 0;
};

struct CheckReport {
  size_t blobs_checked = 0;
  std::vector<std::string> problems;  // empty when consistent
  size_t partial_downloads = 0;       // resumable, not a problem
  // Temp files left by killed imports and writes (store/tmp, not .partial): not a problem,
  // gc removes them.
  std::vector<std::string> temp_files;
  bool ok() const { return problems.empty(); }
};

class Store {
 public:
  // Opens (creating the directories if needed) the store under `home`.
  static Result<Store> open(const std::string& home);

  const std::string& home() const { return home_; }
  std::string blob_path(const Digest& d) const;
  std::string partial_path(const Digest& d) const;  // a resumable download of d
  // The per-blob lock every writer of partial_path(d) holds (pull, bundle import).
  std::string download_lock_path(const Digest& d) const { return tmp_dir() + "/" + std::string(d.hex()) + ".lock"; }
  std::string tmp_dir() const { return root_ + "/tmp"; }

  // --- blobs ---
  bool has_blob(const Digest& d) const;
  Result<uint64_t> blob_size(const Digest& d) const;
  // Reads a whole blob and checks its digest (DataLoss when the bytes do not match).
  Result<std::string> read_blob(const Digest& d, uint64_t max_bytes) const;
  // Re-hashes a blob file (DataLoss on mismatch).
  Status verify_blob(const Digest& d) const;
  // Maps a blob and hashes the mapping itself (DataLoss unless it is `size` bytes hashing to
  // d). Whoever reads the mapping then reads exactly the bytes that were checked, even if the
  // file at blob_path(d) is replaced afterwards (the mapping keeps the verified inode).
  Result<MappedFile> map_verified_blob(const Digest& d, uint64_t size) const;
  Result<Descriptor> put_blob(std::string_view bytes, std::string_view media_type);
  // Copies a file into the store, hashing as it goes.
  Result<Descriptor> ingest_file(const std::string& path, std::string_view media_type);
  // Makes a finished download visible: checks that partial_path(expected) holds exactly
  // `size` bytes hashing to `expected` (the file is removed when it does not), then renames it
  // into place. `already_hashed`, if valid, is the digest the caller computed while streaming.
  Status commit_partial(const Digest& expected, uint64_t size, const Digest& already_hashed = {});

  // --- manifests and references ---
  Result<Digest> put_manifest(const Manifest& m, std::string* bytes_out = nullptr);
  // Stores manifest bytes received from elsewhere, after parsing them (so only valid manifests
  // become blobs). The digest of `bytes` must equal `expected` when it is valid.
  Result<Digest> put_manifest_bytes(std::string_view bytes, const Digest& expected);
  Result<Manifest> read_manifest(const Digest& d) const;

  // The manifest a reference names: the tag's digest, or the pinned digest if the name holds it.
  Result<Digest> resolve(const Reference& ref) const;
  Result<RefsTable> refs() const;
  // Read-modify-write of refs.json under the exclusive refs lock.
  Status update_refs(const std::function<Status(RefsTable&)>& mutate);
  Status set_tag(const std::string& name, const std::string& tag, const Digest& manifest);
  Status add_referrer(const Digest& subject, const Digest& referrer);
  // Manifests this host's operator imported from a local file (`hearth import`, `quantize /
  // finetune --import`; the CLI records it, import_gguf does not), with the file they came
  // from: <store>/local-imports/<hex>. A pull never writes here, so a manifest cannot claim it
  // by its content. The trust layer treats such an unsigned model like the local path it came
  // from.
  Status record_local_import(const Digest& manifest, const std::string& source_path) const;
  // The source path recorded for `manifest`, or nullopt when this host did not import it.
  std::optional<std::string> local_import_source(const Digest& manifest) const;
  Result<std::vector<Digest>> referrers(const Digest& subject) const;

  Result<std::vector<ListEntry>> list() const;
  // Removes a tag (name:tag) or a pin and every tag on it (name@digest). Blobs stay until gc.
  Status remove(const Reference& ref);

  // Holds gc.lock shared: blobs written while it is held are safe from a concurrent gc.
  Result<FileLock> lock_for_write() const;
  // Deletes blobs no reference reaches (manifests, their config and layers, and referrers of
  // live manifests), and stray temp files. Waits for running writers. Refuses (DataLoss,
  // naming the entry) when any tagged, pinned or referrer manifest cannot be read: what it
  // names is unknown, so every blob may be live (see repair_drop_broken).
  Result<GcReport> gc();
  // `hearth store repair --drop-broken`: removes the tags, pins and referrer entries whose
  // manifest cannot be read, so that gc can run again. Returns what was dropped.
  Result<std::vector<std::string>> repair_drop_broken();
  // Re-hashes every blob and checks that every reference resolves to a complete model.
  Result<CheckReport> check() const;

 private:
  std::string home_;
  std::string root_;
};

}  // namespace hearth::store
