#include "hearth/store/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "hearth/core/atomic_file.h"
#include "hearth/core/log.h"
#include "hearth/store/posix_io.h"

namespace hearth::store {
namespace fs = std::filesystem;

std::string default_home() {
  if (const char* h = std::getenv("HEARTH_HOME"); h != nullptr && *h != '\0') return h;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x != nullptr && *x != '\0') {
    return std::string(x) + "/hearth";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.local/share/hearth";
}

Result<Store> Store::open(const std::string& home) {
  Store s;
  s.home_ = home;
  s.root_ = home + "/store";
  std::error_code ec;
  for (const std::string& dir : {s.root_ + "/blobs/sha256", s.root_ + "/tmp"}) {
    fs::create_directories(dir, ec);
    if (ec) {
      return make_error(ErrorCode::kIo, "{}: cannot create store directory: {}", dir, ec.message());
    }
  }
  return s;
}

std::string Store::blob_path(const Digest& d) const { return root_ + "/blobs/sha256/" + std::string(d.hex()); }

std::string Store::partial_path(const Digest& d) const { return root_ + "/tmp/" + std::string(d.hex()) + ".partial"; }

bool Store::has_blob(const Digest& d) const {
  struct stat st;
  return d.valid() && ::stat(blob_path(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<uint64_t> Store::blob_size(const Digest& d) const {
  struct stat st;
  if (!d.valid() || ::stat(blob_path(d).c_str(), &st) != 0) {
    return make_error(ErrorCode::kNotFound, "blob {} is not in the store", d.str());
  }
  return static_cast<uint64_t>(st.st_size);
}

Result<std::string> Store::read_blob(const Digest& d, uint64_t max_bytes) const {
  if (!has_blob(d)) return make_error(ErrorCode::kNotFound, "blob {} is not in the store", d.str());
  HEARTH_ASSIGN_OR_RETURN(std::string bytes, read_file(blob_path(d), max_bytes));
  if (sha256_of(bytes) != d) {
    return make_error(
        ErrorCode::kDataLoss,
        "{}: content does not match its digest {} (tampered or corrupt; remove the model and pull it again)",
        blob_path(d), d.str());
  }
  return bytes;
}

Status Store::verify_blob(const Digest& d) const {
  uint64_t size = 0;
  auto got = sha256_file(blob_path(d), &size);
  if (!got.ok()) return got.status();
  if (*got != d) {
    return make_error(ErrorCode::kDataLoss, "{}: content hashes to {}, not its name {} (tampered or corrupt)",
                      blob_path(d), got->str(), d.str());
  }
  return ok_status();
}

Result<MappedFile> Store::map_verified_blob(const Digest& d, uint64_t size) const {
  if (!d.valid()) return make_error(ErrorCode::kInvalidArgument, "map_verified_blob: invalid digest");
  HEARTH_ASSIGN_OR_RETURN(MappedFile map, MappedFile::open(blob_path(d)));
  if (map.size() != size) {
    return make_error(ErrorCode::kDataLoss, "{}: has {} bytes, the manifest says {} (tampered or corrupt)",
                      blob_path(d), map.size(), size);
  }
  // Hash in 64 MiB steps with the kernel told to read ahead: the engine then uses these pages.
  map.advise_sequential();
  Sha256 hasher;
  const auto bytes = map.bytes();
  for (size_t off = 0; off < bytes.size(); off += size_t{64} << 20) {
    hasher.update(bytes.subspan(off, std::min(bytes.size() - off, size_t{64} << 20)));
  }
  Digest got = hasher.finish();
  if (got != d) {
    return make_error(ErrorCode::kDataLoss, "{}: content hashes to {}, not its name {} (tampered or corrupt)",
                      blob_path(d), got.str(), d.str());
  }
  map.advise_normal();
  return map;
}

Result<Descriptor> Store::put_blob(std::string_view bytes, std::string_view media_type) {
  Descriptor desc;
  desc.media_type = std::string(media_type);
  desc.digest = sha256_of(bytes);
  desc.size = bytes.size();
  if (has_blob(desc.digest)) return desc;
  std::string tmp;
  HEARTH_ASSIGN_OR_RETURN(int fd, make_temp_file(tmp_dir(), "put-", &tmp));
  Status st = write_all(fd, bytes.data(), bytes.size(), tmp);
  if (st.ok()) st = durable_rename(fd, tmp, blob_path(desc.digest));
  ::close(fd);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return desc;
}

Result<Descriptor> Store::ingest_file(const std::string& path, std::string_view media_type) {
  int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno_status(errno, "cannot open", path);
  std::string tmp;
  auto out_fd = make_temp_file(tmp_dir(), "ingest-", &tmp);
  if (!out_fd.ok()) {
    ::close(in);
    return out_fd.status();
  }
  int out = *out_fd;
  Sha256 hasher;
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  Status st;
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      st = errno_status(errno, "read failed", path);
      break;
    }
    if (n == 0) break;
    hasher.update(std::string_view(buf.data(), static_cast<size_t>(n)));
    st = write_all(out, buf.data(), static_cast<size_t>(n), tmp);
    if (!st.ok()) break;
    total += static_cast<uint64_t>(n);
  }
  ::close(in);
  Descriptor desc;
  if (st.ok()) {
    desc.media_type = std::string(media_type);
    desc.digest = hasher.finish();
    desc.size = total;
    if (has_blob(desc.digest)) {
      ::close(out);
      ::unlink(tmp.c_str());
      return desc;
    }
    st = durable_rename(out, tmp, blob_path(desc.digest));
  }
  ::close(out);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return desc;
}

Status Store::commit_partial(const Digest& expected, uint64_t size, const Digest& already_hashed) {
  std::string part = partial_path(expected);
  int fd = ::open(part.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status(errno, "cannot open download", part);
  struct stat st;
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != size) {
    ::close(fd);
    ::unlink(part.c_str());
    return make_error(ErrorCode::kDataLoss, "blob {}: received {} bytes, the descriptor says {}", expected.str(),
                      st.st_size, size);
  }
  Digest got = already_hashed;
  if (!got.valid()) {
    auto h = sha256_file(part);
    if (!h.ok()) {
      ::close(fd);
      return h.status();
    }
    got = *h;
  }
  if (got != expected) {
    ::close(fd);
    ::unlink(part.c_str());
    return make_error(ErrorCode::kDataLoss,
                      "blob {}: received bytes hash to {} (tampered or corrupt in transit; the download was discarded)",
                      expected.str(), got.str());
  }
  Status s = durable_rename(fd, part, blob_path(expected));
  ::close(fd);
  return s;
}

Result<Digest> Store::put_manifest(const Manifest& m, std::string* bytes_out) {
  std::string bytes = serialize_manifest(m);
  HEARTH_ASSIGN_OR_RETURN(Descriptor d, put_blob(bytes, kOciManifestMediaType));
  if (bytes_out != nullptr) *bytes_out = std::move(bytes);
  return d.digest;
}

Result<Digest> Store::put_manifest_bytes(std::string_view bytes, const Digest& expected) {
  Digest got = sha256_of(bytes);
  if (expected.valid() && got != expected) {
    return make_error(ErrorCode::kDataLoss, "manifest {}: received bytes hash to {}", expected.str(), got.str());
  }
  auto parsed = parse_manifest(bytes);
  if (!parsed.ok()) {
    // Indexes are stored too (referrer fallbacks), but nothing else.
    auto idx = parse_index(bytes);
    if (!idx.ok()) return parsed.status();
  }
  HEARTH_ASSIGN_OR_RETURN(Descriptor d, put_blob(bytes, kOciManifestMediaType));
  return d.digest;
}

Result<Manifest> Store::read_manifest(const Digest& d) const {
  HEARTH_ASSIGN_OR_RETURN(std::string bytes, read_blob(d, kMaxManifestBytes));
  auto m = parse_manifest(bytes);
  if (!m.ok()) return m.status().with_context("manifest " + d.str());
  return m;
}

Result<RefsTable> Store::refs() const {
  std::string path = root_ + "/refs.json";
  auto text = read_file(path, 256u << 20);
  if (!text.ok()) {
    if (text.status().code() == ErrorCode::kNotFound || !fs::exists(path)) return RefsTable{};
    return text.status();
  }
  return parse_refs(*text, path);
}

Status Store::update_refs(const std::function<Status(RefsTable&)>& mutate) {
  HEARTH_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire(root_ + "/refs.lock", FileLock::Mode::kExclusive));
  HEARTH_ASSIGN_OR_RETURN(RefsTable table, refs());
  HEARTH_TRY(mutate(table));
  return write_file_atomic(root_ + "/refs.json", serialize_refs(table));
}

Result<Digest> Store::resolve(const Reference& ref) const {
  HEARTH_ASSIGN_OR_RETURN(RefsTable t, refs());
  auto repo = t.repos.find(ref.name);
  if (ref.pinned()) {
    if (repo == t.repos.end() || repo->second.manifests.count(ref.digest) == 0) {
      return make_error(ErrorCode::kNotFound, "model '{}' is not in the store (try 'hearth pull {}')", ref.to_string(),
                        ref.to_string());
    }
    return ref.digest;
  }
  if (repo == t.repos.end()) {
    return make_error(ErrorCode::kNotFound, "model '{}' is not in the store (see 'hearth list')", ref.to_string());
  }
  auto tag = repo->second.tags.find(ref.tag);
  if (tag == repo->second.tags.end()) {
    return make_error(ErrorCode::kNotFound, "model '{}': no tag '{}' (see 'hearth list')", ref.to_string(), ref.tag);
  }
  return tag->second;
}

Status Store::set_tag(const std::string& name, const std::string& tag, const Digest& manifest) {
  if (!is_valid_name(name) || !is_valid_tag(tag)) {
    return make_error(ErrorCode::kInvalidArgument, "bad reference '{}:{}'", name, tag);
  }
  if (!has_blob(manifest)) {
    return make_error(ErrorCode::kFailedPrecondition, "manifest {} is not in the store", manifest.str());
  }
  return update_refs([&](RefsTable& t) {
    auto& repo = t.repos[name];
    repo.manifests.insert(manifest);
    repo.tags[tag] = manifest;
    return ok_status();
  });
}

Status Store::add_referrer(const Digest& subject, const Digest& referrer) {
  if (!has_blob(referrer)) {
    return make_error(ErrorCode::kFailedPrecondition, "referrer {} is not in the store", referrer.str());
  }
  return update_refs([&](RefsTable& t) {
    t.referrers[subject].insert(referrer);
    return ok_status();
  });
}

Status Store::record_local_import(const Digest& manifest, const std::string& source_path) const {
  const std::string dir = root_ + "/local-imports";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kInternal, "{}: {}", dir, ec.message());
  std::string absolute = std::filesystem::absolute(source_path, ec).lexically_normal().string();
  if (ec) absolute = source_path;
  return write_file_atomic(dir + "/" + std::string(manifest.hex()), absolute + "\n");
}

std::optional<std::string> Store::local_import_source(const Digest& manifest) const {
  auto text = read_file(root_ + "/local-imports/" + std::string(manifest.hex()), 64 * 1024);
  if (!text.ok() || text->empty()) return std::nullopt;
  std::string path = *text;
  while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) path.pop_back();
  return path;
}

Result<std::vector<Digest>> Store::referrers(const Digest& subject) const {
  HEARTH_ASSIGN_OR_RETURN(RefsTable t, refs());
  std::vector<Digest> out;
  if (auto it = t.referrers.find(subject); it != t.referrers.end()) out.assign(it->second.begin(), it->second.end());
  return out;
}

Result<std::vector<ListEntry>> Store::list() const {
  HEARTH_ASSIGN_OR_RETURN(RefsTable t, refs());
  std::vector<ListEntry> out;
  auto fill = [&](ListEntry e) {
    auto m = read_manifest(e.digest);
    if (m.ok()) {
      e.size = blob_size(e.digest).value_or(0) + m->config.size;
      for (const auto& l : m->layers) e.size += l.size;
      e.version = manifest_version(*m).value_or(0);
    }
    if (auto r = t.referrers.find(e.digest); r != t.referrers.end()) e.signatures = r->second.size();
    out.push_back(std::move(e));
  };
  for (const auto& [name, repo] : t.repos) {
    std::set<Digest> tagged;
    for (const auto& [tag, d] : repo.tags) {
      fill(ListEntry{name, tag, d});
      tagged.insert(d);
    }
    for (const auto& d : repo.manifests) {
      if (tagged.count(d) == 0) fill(ListEntry{name, "", d});
    }
  }
  return out;
}

Status Store::remove(const Reference& ref) {
  return update_refs([&](RefsTable& t) -> Status {
    auto repo = t.repos.find(ref.name);
    if (repo == t.repos.end()) {
      return make_error(ErrorCode::kNotFound, "model '{}' is not in the store", ref.to_string());
    }
    auto& r = repo->second;
    if (ref.pinned()) {
      if (r.manifests.erase(ref.digest) == 0) {
        return make_error(ErrorCode::kNotFound, "model '{}' is not in the store", ref.to_string());
      }
      for (auto it = r.tags.begin(); it != r.tags.end();) {
        it = (it->second == ref.digest) ? r.tags.erase(it) : std::next(it);
      }
    } else {
      auto tag = r.tags.find(ref.tag);
      if (tag == r.tags.end()) {
        return make_error(ErrorCode::kNotFound, "model '{}' is not in the store", ref.to_string());
      }
      Digest d = tag->second;
      r.tags.erase(tag);
      bool still_tagged = false;
      for (const auto& [_, other] : r.tags) still_tagged = still_tagged || other == d;
      if (!still_tagged) r.manifests.erase(d);
    }
    if (r.tags.empty() && r.manifests.empty()) t.repos.erase(repo);
    return ok_status();
  });
}

Result<FileLock> Store::lock_for_write() const {
  return FileLock::acquire(root_ + "/gc.lock", FileLock::Mode::kShared,
                           "waiting for 'hearth gc' in another process to finish");
}

}  // namespace hearth::store
