#include "hearth/registry/model_bundle.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "hearth/core/atomic_file.h"
#include "hearth/registry/tar_archive.h"
#include "hearth/store/audit_log.h"
#include "hearth/store/posix_io.h"
#include "hearth/trust/model_signer.h"

namespace hearth::registry {
namespace {

using store::Digest;

constexpr std::string_view kOciLayout = R"({"imageLayoutVersion":"1.0.0"})";
constexpr std::string_view kBlobPrefix = "blobs/sha256/";

}  // namespace

Result<BundleExport> export_bundle(const store::Store& st, const store::Reference& ref, const std::string& file) {
  BundleExport out;
  HEARTH_ASSIGN_OR_RETURN(out.manifest, st.resolve(ref));
  HEARTH_ASSIGN_OR_RETURN(std::string mbytes, st.read_blob(out.manifest, store::kMaxManifestBytes));
  HEARTH_ASSIGN_OR_RETURN(store::Manifest m, store::parse_manifest(mbytes));
  std::set<Digest> blobs = {out.manifest, m.config.digest};
  for (const auto& l : m.layers) blobs.insert(l.digest);

  store::Index index;
  store::Descriptor model{std::string(store::kOciManifestMediaType), out.manifest, mbytes.size(), m.artifact_type, {}};
  model.annotations[std::string(store::kAnnotationRefName)] = ref.pinned() ? ref.name : ref.name + ":" + ref.tag;
  index.manifests.push_back(model);
  HEARTH_ASSIGN_OR_RETURN(std::vector<Digest> referrers, st.referrers(out.manifest));
  for (const auto& r : referrers) {
    HEARTH_ASSIGN_OR_RETURN(std::string rbytes, st.read_blob(r, store::kMaxManifestBytes));
    HEARTH_ASSIGN_OR_RETURN(store::Manifest rm, store::parse_manifest(rbytes));
    blobs.insert(r);
    blobs.insert(rm.config.digest);
    for (const auto& l : rm.layers) blobs.insert(l.digest);
    index.manifests.push_back({std::string(store::kOciManifestMediaType), r, rbytes.size(), rm.artifact_type, {}});
    ++(trust::is_attestation(rm) ? out.attestations : out.signatures);
  }
  // Everything that goes out is checked first.
  for (const auto& d : blobs) HEARTH_TRY(st.verify_blob(d));

  HEARTH_ASSIGN_OR_RETURN(AtomicFileWriter w, AtomicFileWriter::create(file));
  TarWriter tar(w);
  HEARTH_TRY(tar.add_bytes("oci-layout", kOciLayout));
  HEARTH_TRY(tar.add_bytes("index.json", store::serialize_index(index)));
  HEARTH_TRY(tar.add_directory("blobs/"));
  HEARTH_TRY(tar.add_directory("blobs/sha256/"));
  for (const auto& d : blobs) {
    HEARTH_ASSIGN_OR_RETURN(uint64_t size, st.blob_size(d));
    HEARTH_TRY(tar.add_file(std::string(kBlobPrefix) + std::string(d.hex()), st.blob_path(d), size));
    ++out.blobs;
  }
  HEARTH_TRY(tar.finish());
  HEARTH_TRY(w.commit());
  return out;
}

Result<BundleImport> import_bundle(store::Store& st, const std::string& file, const AdmitOptions& opts) {
  BundleImport out;
  std::string index_json;
  bool saw_layout = false;
  HEARTH_ASSIGN_OR_RETURN(store::FileLock write_lock, st.lock_for_write());
  HEARTH_TRY(read_tar(file, [&](const TarEntry& e, TarChunkReader& read) -> Status {
    if (e.is_directory) {
      if (e.name == "blobs/" || e.name == "blobs/sha256/" || e.name == "blobs" || e.name == "blobs/sha256") {
        return ok_status();
      }
      return make_error(ErrorCode::kInvalidArgument, "{}: unexpected directory '{}'", file, e.name.substr(0, 100));
    }
    if (e.name == "oci-layout" || e.name == "index.json") {
      if (e.size > store::kMaxManifestBytes)
        return make_error(ErrorCode::kOutOfRange, "{}: {} is too large", file, e.name);
      std::string bytes;
      for (;;) {
        HEARTH_ASSIGN_OR_RETURN(std::string_view chunk, read());
        if (chunk.empty()) break;
        bytes.append(chunk);
      }
      if (e.name == "oci-layout")
        saw_layout = bytes.find("\"imageLayoutVersion\"") != std::string::npos;
      else
        index_json = std::move(bytes);
      return ok_status();
    }
    if (e.name.rfind(kBlobPrefix, 0) != 0) {
      return make_error(ErrorCode::kInvalidArgument, "{}: unexpected entry '{}'", file, e.name.substr(0, 100));
    }
    // The file name must be exactly a digest's hex: no path can ride along.
    HEARTH_ASSIGN_OR_RETURN(Digest d, Digest::parse("sha256:" + e.name.substr(kBlobPrefix.size())));
    ++out.blobs;
    if (st.has_blob(d)) return ok_status();
    // The same per-blob lock as pull: a pull of the same blob writes the same partial file.
    const std::string lock_path = st.download_lock_path(d);
    HEARTH_ASSIGN_OR_RETURN(store::FileLock blob_lock,
                            store::FileLock::acquire(lock_path, store::FileLock::Mode::kExclusive,
                                                     "waiting for another hearth process writing the same blob"));
    if (st.has_blob(d)) {
      ::unlink(lock_path.c_str());
      return ok_status();
    }
    std::string partial = st.partial_path(d);
    int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return store::errno_status(errno, "cannot create", partial);
    store::Sha256 h;
    Status s;
    for (;;) {
      auto chunk = read();
      if (!chunk.ok()) {
        s = chunk.status();
        break;
      }
      if (chunk->empty()) break;
      h.update(*chunk);
      s = store::write_all(fd, chunk->data(), chunk->size(), partial);
      if (!s.ok()) break;
    }
    ::close(fd);
    if (!s.ok()) {
      ::unlink(partial.c_str());
      ::unlink(lock_path.c_str());
      return s;
    }
    Status committed = st.commit_partial(d, e.size, h.finish());
    ::unlink(lock_path.c_str());
    return committed;
  }));
  if (!saw_layout || index_json.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: not an OCI image layout (oci-layout or index.json missing)",
                      file);
  }
  HEARTH_ASSIGN_OR_RETURN(store::Index index, store::parse_index(index_json));
  // Signatures first, so that verification sees them.
  for (const auto& d : index.manifests) {
    HEARTH_ASSIGN_OR_RETURN(store::Manifest m, st.read_manifest(d.digest));
    if (m.subject) HEARTH_TRY(st.add_referrer(m.subject->digest, d.digest));
  }
  for (const auto& d : index.manifests) {
    auto ref_name = d.annotations.find(std::string(store::kAnnotationRefName));
    if (ref_name == d.annotations.end()) continue;
    HEARTH_ASSIGN_OR_RETURN(store::Reference ref, store::parse_reference(ref_name->second));
    bool has_tag = ref_name->second.find(':') != std::string::npos;
    HEARTH_ASSIGN_OR_RETURN(trust::VerifiedArtifact a,
                            admit_model(st, ref.name, has_tag ? ref.tag : "", d.digest, opts));
    std::string summary = a.is_signed() ? "signed by " + a.publisher() + ", version " + std::to_string(a.version())
                                        : "UNSIGNED, allowed by operator";
    out.admitted.push_back(ref.to_string() + " (" + summary + ")");
    (void)store::append_audit(
        st.home(), {"bundle-import", "ok", ref.to_string(), d.digest.str(), a.publisher_key_id(), "from " + file});
  }
  return out;
}

}  // namespace hearth::registry
