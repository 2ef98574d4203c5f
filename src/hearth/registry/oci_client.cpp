#include "hearth/registry/oci_client.h"
#include "hearth/registry/rate_pacer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "hearth/core/log.h"
#include "hearth/registry/http_client.h"
#include "hearth/registry/progress.h"
#include "hearth/store/file_lock.h"
#include "hearth/store/posix_io.h"

namespace hearth::registry {
namespace {

using store::Digest;

Status http_status_error(const HttpRequest& req, const HttpResponse& resp) {
  std::string snippet = resp.body.substr(0, 200);
  for (char& c : snippet) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  ErrorCode code = ErrorCode::kInternal;
  if (resp.status == 404)
    code = ErrorCode::kNotFound;
  else if (resp.status == 401)
    code = ErrorCode::kUnauthenticated;
  else if (resp.status == 403)
    code = ErrorCode::kPermissionDenied;
  else if (resp.status == 416)
    code = ErrorCode::kOutOfRange;
  else if (resp.status >= 500 || resp.status == 429)
    code = ErrorCode::kUnavailable;
  else if (resp.status >= 400)
    code = ErrorCode::kInvalidArgument;
  return make_error(code, "{} {}: HTTP {}{}", req.method, req.url, resp.status,
                    snippet.empty() ? "" : " (" + snippet + ")");
}

bool retryable(const Status& s) { return s.code() == ErrorCode::kUnavailable; }

uint64_t file_size_or_zero(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Sends with retries on transport errors and 5xx, with exponential backoff.
Result<HttpResponse> send_retrying(HttpClient& http, const HttpRequest& req, const RemoteOptions& opts) {
  int delay = opts.backoff_ms;
  for (int attempt = 0;; ++attempt) {
    auto r = http.send(req);
    Status s = r.ok() ? (r->status >= 500 ? http_status_error(req, *r) : ok_status()) : r.status();
    if (s.ok()) return r;
    if (!retryable(s) || attempt >= opts.retries) return s;
    log::info("{} (retrying in {} ms)", s.message(), delay);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    delay *= 2;
  }
}

}  // namespace

std::string referrers_fallback_tag(const Digest& subject) { return "sha256-" + std::string(subject.hex()); }

RegistryClient::RegistryClient(std::string base_url, RemoteOptions opts) : base_(std::move(base_url)), opts_(opts) {
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
}

std::string RegistryClient::url(const std::string& name, const std::string& kind, const std::string& rest) const {
  return base_ + "/v2/" + name + "/" + kind + "/" + rest;
}

Status RegistryClient::ping() const {
  HttpClient http;
  HttpRequest req;
  req.url = base_ + "/v2/";
  HEARTH_ASSIGN_OR_RETURN(HttpResponse resp, send_retrying(http, req, opts_));
  if (resp.status != 200 && resp.status != 401) return http_status_error(req, resp);
  return ok_status();
}

Result<FetchedManifest> RegistryClient::get_manifest(const std::string& name, const std::string& reference) const {
  HttpClient http;
  HttpRequest req;
  req.url = url(name, "manifests", reference);
  req.headers = {"Accept: " + std::string(store::kOciManifestMediaType) + ", " +
                 std::string(store::kOciIndexMediaType)};
  req.max_body_bytes = store::kMaxManifestBytes;
  req.redirects = opts_.allow_cross_origin_redirects ? Redirects::kAny : Redirects::kSameOrigin;
  HEARTH_ASSIGN_OR_RETURN(HttpResponse resp, send_retrying(http, req, opts_));
  if (resp.status != 200) return http_status_error(req, resp);
  FetchedManifest m;
  m.bytes = std::move(resp.body);
  m.media_type = resp.header("content-type");
  m.digest = store::sha256_of(m.bytes);
  if (auto asked = Digest::parse(reference); asked.ok() && *asked != m.digest) {
    return make_error(
        ErrorCode::kDataLoss,
        "{}: manifest bytes hash to {}, not the requested digest (tampered in transit or a hostile registry)", req.url,
        m.digest.str());
  }
  if (std::string header = resp.header("docker-content-digest"); !header.empty() && header != m.digest.str()) {
    return make_error(ErrorCode::kDataLoss, "{}: Docker-Content-Digest {} does not match the manifest bytes ({})",
                      req.url, header.substr(0, 80), m.digest.str());
  }
  return m;
}

Result<bool> RegistryClient::has_blob(const std::string& name, const Digest& digest) const {
  HttpClient http;
  HttpRequest req;
  req.method = "HEAD";
  req.url = url(name, "blobs", digest.str());
  HEARTH_ASSIGN_OR_RETURN(HttpResponse resp, send_retrying(http, req, opts_));
  if (resp.status == 200) return true;
  if (resp.status == 404) return false;
  return http_status_error(req, resp);
}

// Downloads bytes [begin, end) of blob `d` into `part_path`, appending after whatever the file
// already holds (its size counts as already received). When `whole` and `streamed` are set, the
// bytes are hashed as they stream.
Status RegistryClient::download_range(const std::string& name, const store::Descriptor& d, const std::string& part_path,
                                      uint64_t begin, uint64_t end, bool whole, Progress* progress, Digest* streamed,
                                      RatePacer* pacer) const {
  HttpClient http;
  store::Sha256 hasher;
  uint64_t have = file_size_or_zero(part_path);
  if (have > end - begin) {
    ::truncate(part_path.c_str(), 0);
    have = 0;
  }
  if (have > 0 && streamed != nullptr) {
    // Hash what an earlier attempt left, so the streamed digest covers the whole blob.
    int rfd = ::open(part_path.c_str(), O_RDONLY | O_CLOEXEC);
    std::vector<char> buf(1 << 20);
    for (ssize_t n; rfd >= 0 && (n = ::read(rfd, buf.data(), buf.size())) > 0;) {
      hasher.update(std::string_view(buf.data(), static_cast<size_t>(n)));
    }
    if (rfd >= 0) ::close(rfd);
  }
  if (progress != nullptr) progress->add(have);
  int delay = opts_.backoff_ms;
  for (int attempt = 0;; ++attempt) {
    if (have == end - begin) break;
    int fd = ::open(part_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return store::errno_status(errno, "cannot open download", part_path);
    HttpRequest req;
    req.url = url(name, "blobs", d.digest.str());
    req.max_recv_bytes_per_second = opts_.max_recv_bytes_per_second;
    req.redirects = opts_.allow_cross_origin_redirects ? Redirects::kAny : Redirects::kSameOrigin;
    uint64_t from = begin + have;
    bool ranged = from > 0 || end < d.size;
    if (ranged) req.headers.push_back("Range: bytes=" + std::to_string(from) + "-" + std::to_string(end - 1));
    Status write_error;
    bool overflow = false;
    bool restart = false;
    BodySink sink = [&](long status, std::string_view chunk) {
      if (status == 200 && ranged) {
        restart = true;  // the server ignored the range and sends the whole blob
        return false;
      }
      if (have + chunk.size() > end - begin) {
        overflow = true;  // longer than declared: cut off
        return false;
      }
      Status s = store::write_all(fd, chunk.data(), chunk.size(), part_path);
      if (!s.ok()) {
        write_error = s;
        return false;
      }
      if (streamed != nullptr) hasher.update(chunk);
      have += chunk.size();
      if (progress != nullptr) progress->add(chunk.size());
      // Pace to the limit, shared by every range of this blob (curl's own limiter is per
      // transfer and lets a loopback burst through).
      if (pacer != nullptr) pacer->pace(chunk.size());
      return true;
    };
    // A 200 to a ranged request means the server ignored the range: a whole-blob download
    // starts over; a parallel part gives up (the caller falls back to one stream).
    auto resp = http.send(req, &sink);
    ::close(fd);
    if (restart) resp = HttpResponse{200, {}, {}};
    if (!write_error.ok()) return write_error;
    if (overflow) {
      ::unlink(part_path.c_str());
      return make_error(ErrorCode::kDataLoss,
                        "{}: the registry sent more than the declared {} bytes; the download was cut off and discarded",
                        req.url, d.size);
    }
    Status s;
    if (resp.ok()) {
      if (resp->status != 200 && resp->status != 206) s = http_status_error(req, *resp);
    } else {
      s = resp.status();
    }
    if (restart) {
      if (!whole) return make_error(ErrorCode::kUnimplemented, "{}: registry ignores Range", req.url);
      log::info("{}: registry ignored the Range request; starting over", req.url);
      ::truncate(part_path.c_str(), 0);
      have = 0;
      if (streamed != nullptr) hasher.finish();  // reset
      continue;
    }
    if (s.ok() && have == end - begin) break;
    if (s.ok())
      s = make_error(ErrorCode::kUnavailable, "{}: connection closed after {} of {} bytes", req.url, have, end - begin);
    if (!retryable(s) || attempt >= opts_.retries) return s;
    log::info("{} (resuming in {} ms)", s.message(), delay);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    delay *= 2;
  }
  if (streamed != nullptr) *streamed = hasher.finish();
  return ok_status();
}

Status RegistryClient::download_blob(const std::string& name, const store::Descriptor& d, store::Store& st) const {
  if (st.has_blob(d.digest)) return ok_status();
  // One downloader per blob across processes; a second pull of the same blob waits, then
  // finds it done (or resumes what the first left).
  const std::string lock_path = st.download_lock_path(d.digest);
  HEARTH_ASSIGN_OR_RETURN(store::FileLock blob_lock,
                          store::FileLock::acquire(lock_path, store::FileLock::Mode::kExclusive,
                                                   "waiting for another hearth process downloading the same blob"));
  Status s = st.has_blob(d.digest) ? ok_status() : download_locked(name, d, st);
  // Once the blob is in place its lock guards nothing: removed while still held, so that a
  // waiter that then takes it finds the blob, and tmp is left clean.
  if (st.has_blob(d.digest)) ::unlink(lock_path.c_str());
  return s;
}

Status RegistryClient::download_locked(const std::string& name, const store::Descriptor& d, store::Store& st) const {
  std::string partial = st.partial_path(d.digest);
  // The declared size is remote input too: refuse early what cannot fit on this disk.
  struct statvfs fs;
  uint64_t have_already = file_size_or_zero(partial);
  if (::statvfs(st.tmp_dir().c_str(), &fs) == 0) {
    uint64_t avail = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    if (d.size > have_already && d.size - have_already > avail) {
      return make_error(ErrorCode::kResourceExhausted,
                        "blob {} needs {} more bytes but only {} are free in {} (free space and retry)", d.digest.str(),
                        d.size - have_already, avail, st.tmp_dir());
    }
  }
  RatePacer pacer(opts_.max_recv_bytes_per_second);
  Progress::Listener listener;
  if (opts_.on_blob_progress) {
    listener = [cb = opts_.on_blob_progress, digest = d.digest](uint64_t done, uint64_t total) { cb(digest, done, total); };
  }
  Progress progress("pull " + std::string(d.digest.hex().substr(0, 12)), d.size,
                    opts_.progress || (stderr_is_terminal() && d.size >= (1u << 20)), std::move(listener));
  int parts =
      (d.size >= opts_.parallel_threshold && opts_.parallel > 1) ? std::min(opts_.parallel, kMaxParallelRanges) : 1;
  if (parts == 1) {
    Digest streamed;
    HEARTH_TRY(download_range(name, d, partial, 0, d.size, true, &progress, &streamed, &pacer));
    progress.finish();
    return st.commit_partial(d.digest, d.size, streamed);
  }
  // Parallel ranges: part 0 goes straight into the partial file, part i into
  // "<hex>.part<i>.partial"; each resumes from its own size. Then the parts are appended.
  uint64_t span = (d.size + parts - 1) / parts;
  log::debug("pull {}: {} bytes in {} parallel ranges", d.digest.str(), d.size, parts);
  std::vector<std::string> paths;
  std::vector<Status> results(parts);
  std::vector<std::thread> threads;
  for (int i = 0; i < parts; ++i) {
    paths.push_back(
        i == 0 ? partial : st.tmp_dir() + "/" + std::string(d.digest.hex()) + ".part" + std::to_string(i) + ".partial");
  }
  for (int i = 0; i < parts; ++i) {
    uint64_t begin = std::min<uint64_t>(d.size, span * i), end = std::min<uint64_t>(d.size, span * (i + 1));
    threads.emplace_back([&, i, begin, end] {
      results[i] = download_range(name, d, paths[i], begin, end, false, &progress, nullptr, &pacer);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    if (r.code() == ErrorCode::kUnimplemented) {
      for (int i = 1; i < parts; ++i) ::unlink(paths[i].c_str());
      ::truncate(partial.c_str(), 0);
      Digest streamed;
      HEARTH_TRY(download_range(name, d, partial, 0, d.size, true, &progress, &streamed, &pacer));
      progress.finish();
      return st.commit_partial(d.digest, d.size, streamed);
    }
    HEARTH_TRY(r);
  }
  progress.finish();
  int out = ::open(partial.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (out < 0) return store::errno_status(errno, "cannot open download", partial);
  std::vector<char> buf(1 << 20);
  Status s;
  for (int i = 1; i < parts && s.ok(); ++i) {
    int in = ::open(paths[i].c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
      s = store::errno_status(errno, "cannot open download part", paths[i]);
      break;
    }
    for (ssize_t n; s.ok() && (n = ::read(in, buf.data(), buf.size())) > 0;) {
      s = store::write_all(out, buf.data(), static_cast<size_t>(n), partial);
    }
    ::close(in);
  }
  ::close(out);
  for (int i = 1; i < parts; ++i) ::unlink(paths[i].c_str());
  if (!s.ok()) {
    ::unlink(partial.c_str());
    return s;
  }
  return st.commit_partial(d.digest, d.size);  // re-hashes the assembled file
}

Status RegistryClient::upload_blob(const std::string& name, const store::Descriptor& d, const std::string& path) const {
  HEARTH_ASSIGN_OR_RETURN(bool present, has_blob(name, d.digest));
  if (present) return ok_status();
  HttpClient http;
  HttpRequest start;
  start.method = "POST";
  start.url = base_ + "/v2/" + name + "/blobs/uploads/";
  HEARTH_ASSIGN_OR_RETURN(HttpResponse resp, send_retrying(http, start, opts_));
  if (resp.status != 202) return http_status_error(start, resp);
  std::string location = resolve_url(start.url, resp.header("location"));
  auto with_digest = [&](const std::string& loc) {
    return loc + (loc.find('?') == std::string::npos ? "?" : "&") + "digest=" + d.digest.str();
  };
  Progress progress("push " + std::string(d.digest.str().substr(7, 12)), d.size,
                    opts_.progress || (stderr_is_terminal() && d.size >= (1u << 20)));
  const uint64_t chunk = std::max<uint64_t>(opts_.upload_chunk, 4096);
  if (d.size <= chunk) {
    HttpRequest put;
    put.method = "PUT";
    put.url = with_digest(location);
    put.headers = {"Content-Type: application/octet-stream"};
    put.upload_path = path;
    put.upload_length = d.size;
    HEARTH_ASSIGN_OR_RETURN(HttpResponse r, http.send(put));
    if (r.status != 201) return http_status_error(put, r);
    progress.add(d.size);
    return ok_status();
  }
  log::debug("push {}: {} bytes in PATCH chunks of {}", d.digest.str(), d.size, chunk);
  for (uint64_t off = 0; off < d.size;) {
    uint64_t len = std::min<uint64_t>(chunk, d.size - off);
    HttpRequest patch;
    patch.method = "PATCH";
    patch.url = location;
    patch.headers = {"Content-Type: application/octet-stream",
                     "Content-Range: " + std::to_string(off) + "-" + std::to_string(off + len - 1)};
    patch.upload_path = path;
    patch.upload_offset = off;
    patch.upload_length = len;
    HEARTH_ASSIGN_OR_RETURN(HttpResponse r, http.send(patch));
    if (r.status != 202) return http_status_error(patch, r);
    location = resolve_url(location, r.header("location"));
    off += len;
    progress.add(len);
  }
  HttpRequest put;
  put.method = "PUT";
  put.url = with_digest(location);
  put.headers = {"Content-Type: application/octet-stream"};
  HEARTH_ASSIGN_OR_RETURN(HttpResponse r, http.send(put));
  if (r.status != 201) return http_status_error(put, r);
  return ok_status();
}

Result<bool> RegistryClient::put_manifest(const std::string& name, const std::string& reference,
                                          const std::string& bytes, const std::string& media_type) const {
  HttpClient http;
  HttpRequest req;
  req.method = "PUT";
  req.url = url(name, "manifests", reference);
  req.headers = {"Content-Type: " + media_type};
  req.body = bytes;
  HEARTH_ASSIGN_OR_RETURN(HttpResponse resp, send_retrying(http, req, opts_));
  if (resp.status != 201 && resp.status != 200) return http_status_error(req, resp);
  return !resp.header("oci-subject").empty();
}

Result<store::Index> RegistryClient::referrers(const std::string& name, const Digest& subject) const {
  HttpClient http;
  HttpRequest req;
  req.url = url(name, "referrers", subject.str());
  req.headers = {"Accept: " + std::string(store::kOciIndexMediaType)};
  req.max_body_bytes = store::kMaxManifestBytes;
  req.redirects = opts_.allow_cross_origin_redirects ? Redirects::kAny : Redirects::kSameOrigin;
  HEARTH_ASSIGN_OR_RETURN(HttpResponse resp, send_retrying(http, req, opts_));
  if (resp.status == 200 && resp.header("content-type").find(store::kOciIndexMediaType) != std::string::npos) {
    return store::parse_index(resp.body);
  }
  // Tag-schema fallback.
  auto fallback = get_manifest(name, referrers_fallback_tag(subject));
  if (!fallback.ok()) {
    if (fallback.status().code() == ErrorCode::kNotFound) return store::Index{};
    return fallback.status();
  }
  return store::parse_index(fallback->bytes);
}

Result<std::vector<std::string>> RegistryClient::tags(const std::string& name) const {
  HttpClient http;
  HttpRequest req;
  req.url = base_ + "/v2/" + name + "/tags/list";
  HEARTH_ASSIGN_OR_RETURN(HttpResponse resp, send_retrying(http, req, opts_));
  if (resp.status != 200) return http_status_error(req, resp);
  auto j = nlohmann::json::parse(resp.body, nullptr, false);
  std::vector<std::string> out;
  if (j.is_object() && j.contains("tags") && j["tags"].is_array()) {
    for (const auto& t : j["tags"]) {
      if (t.is_string()) out.push_back(t.get<std::string>());
    }
  }
  return out;
}

}  // namespace hearth::registry
