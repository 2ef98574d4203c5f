#include "hearth/registry/tar_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace hearth::registry {
namespace {

constexpr size_t kBlock = 512;

constexpr uint64_t kOctalSizeLimit = uint64_t{1} << 33;  // 11 octal digits hold up to 8 GiB - 1

void put_octal(char* field, size_t width, uint64_t value) {
  // width includes the terminating NUL; callers keep value below 8^(width-1).
  std::string digits(width - 1, '0');
  for (size_t i = width - 1; i-- > 0 && value > 0; value >>= 3) digits[i] = static_cast<char>('0' + (value & 7));
  std::memcpy(field, digits.data(), width - 1);
  field[width - 1] = '\0';
}

// Base-256: high bit of the first byte set, the value big-endian in the remaining bytes.
void put_base256(char* field, size_t width, uint64_t value) {
  std::memset(field, 0, width);
  field[0] = static_cast<char>(0x80);
  for (size_t i = width; i-- > 1 && value > 0; value >>= 8) field[i] = static_cast<char>(value & 0xFF);
}

Result<uint64_t> get_number(const char* field, size_t width) {
  const auto* u = reinterpret_cast<const unsigned char*>(field);
  if (u[0] & 0x80) {
    if (u[0] != 0x80) return make_error(ErrorCode::kInvalidArgument, "tar: negative or oversized base-256 field");
    uint64_t v = 0;
    for (size_t i = 1; i < width; ++i) {
      if (v > (UINT64_MAX >> 8)) return make_error(ErrorCode::kInvalidArgument, "tar: base-256 field overflows");
      v = (v << 8) | u[i];
    }
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < width && field[i] == ' ') ++i;
  for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (v > (UINT64_MAX >> 3)) return make_error(ErrorCode::kInvalidArgument, "tar: octal field overflows");
    v = (v << 3) | static_cast<uint64_t>(field[i] - '0');
  }
  for (; i < width; ++i) {
    if (field[i] != '\0' && field[i] != ' ') return make_error(ErrorCode::kInvalidArgument, "tar: bad octal field");
  }
  return v;
}

}  // namespace

Result<std::string> tar_header(const std::string& name, uint64_t size, char type) {
  std::string block(kBlock, '\0');
  char* h = block.data();
  if (name.size() > 100) {
    // ustar prefix: split at a '/' so that prefix <= 155 and name <= 100.
    size_t cut = name.rfind('/', 155);
    if (cut == std::string::npos || name.size() - cut - 1 > 100) {
      return make_error(ErrorCode::kInvalidArgument, "tar: name too long: {}", name);
    }
    std::memcpy(h + 345, name.data(), cut);
    std::memcpy(h, name.data() + cut + 1, name.size() - cut - 1);
  } else {
    std::memcpy(h, name.data(), name.size());
  }
  put_octal(h + 100, 8, type == '5' ? 0755 : 0644);
  put_octal(h + 108, 8, 0);
  put_octal(h + 116, 8, 0);
  if (size < kOctalSizeLimit) {
    put_octal(h + 124, 12, size);
  } else {
    put_base256(h + 124, 12, size);
  }
  put_octal(h + 136, 12, 0);
  h[156] = type;
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memset(h + 148, ' ', 8);
  uint32_t sum = 0;
  for (unsigned char c : std::string_view(h, kBlock)) sum += c;
  put_octal(h + 148, 7, sum);
  h[155] = ' ';
  return block;
}

Result<TarHeader> parse_tar_header(std::string_view block) {
  if (block.size() != kBlock) return make_error(ErrorCode::kInvalidArgument, "tar: a header is 512 bytes");
  const char* h = block.data();
  TarHeader out;
  bool zero = true;
  for (char c : block) zero = zero && c == 0;
  if (zero) {
    out.end = true;
    return out;
  }
  HEARTH_ASSIGN_OR_RETURN(uint64_t want_sum, get_number(h + 148, 8));
  uint32_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
  if (sum != want_sum) return make_error(ErrorCode::kDataLoss, "tar header checksum mismatch");
  TarEntry& e = out.entry;
  std::string name(h, strnlen(h, 100));
  std::string prefix(h + 345, strnlen(h + 345, 155));
  e.name = prefix.empty() ? name : prefix + "/" + name;
  HEARTH_ASSIGN_OR_RETURN(e.size, get_number(h + 124, 12));
  if (e.size > (UINT64_MAX >> 1)) return make_error(ErrorCode::kInvalidArgument, "tar: implausible entry size");
  char type = h[156];
  if (type == '5') {
    e.is_directory = true;
  } else if (type != '0' && type != '\0') {
    return make_error(ErrorCode::kInvalidArgument, "entry '{}' is not a regular file or directory (type '{}')",
                      e.name.substr(0, 100), std::string(1, type));
  }
  return out;
}

Status TarWriter::header(const std::string& name, uint64_t size, char type) {
  HEARTH_ASSIGN_OR_RETURN(std::string block, tar_header(name, size, type));
  return out_.write(block);
}

Status TarWriter::pad(uint64_t size) {
  static const char zeros[kBlock] = {0};
  size_t rem = size % kBlock;
  if (rem == 0) return ok_status();
  return out_.write(std::string_view(zeros, kBlock - rem));
}

Status TarWriter::add_directory(const std::string& name) { return header(name, 0, '5'); }

Status TarWriter::add_bytes(const std::string& name, std::string_view bytes) {
  HEARTH_TRY(header(name, bytes.size(), '0'));
  HEARTH_TRY(out_.write(bytes));
  return pad(bytes.size());
}

Status TarWriter::add_file(const std::string& name, const std::string& path, uint64_t size) {
  HEARTH_TRY(header(name, size, '0'));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::kIo, "{}: cannot open: {}", path, std::strerror(errno));
  std::vector<char> buf(1 << 20);
  uint64_t left = size;
  Status s;
  while (left > 0 && s.ok()) {
    ssize_t n = ::read(fd, buf.data(), std::min<uint64_t>(buf.size(), left));
    if (n <= 0) {
      s = make_error(ErrorCode::kIo, "{}: short read while archiving", path);
      break;
    }
    s = out_.write(std::string_view(buf.data(), static_cast<size_t>(n)));
    left -= static_cast<uint64_t>(n);
  }
  ::close(fd);
  HEARTH_TRY(s);
  return pad(size);
}

Status TarWriter::finish() {
  static const char zeros[2 * kBlock] = {0};
  return out_.write(std::string_view(zeros, sizeof zeros));
}

Status read_tar(const std::string& path, const std::function<Status(const TarEntry&, TarChunkReader&)>& on_entry) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::kNotFound, "{}: cannot open: {}", path, std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  auto read_exact = [&](char* buf, size_t n) -> Status {
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::read(fd, buf + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return make_error(ErrorCode::kDataLoss, "{}: truncated archive", path);
      got += static_cast<size_t>(r);
    }
    return ok_status();
  };
  // Chunks of up to 1 MiB, never more than the archive holds (small archives are common in
  // tests and fuzzing, where zero-filling 1 MiB per archive dominated).
  struct stat st {};
  const uint64_t archive_size = ::fstat(fd, &st) == 0 && st.st_size > 0 ? static_cast<uint64_t>(st.st_size) : 0;
  std::vector<char> buf(static_cast<size_t>(std::clamp<uint64_t>(archive_size, kBlock, uint64_t{1} << 20)));
  for (;;) {
    char h[kBlock];
    HEARTH_TRY(read_exact(h, kBlock));
    auto parsed = parse_tar_header(std::string_view(h, kBlock));
    if (!parsed.ok()) return parsed.status().with_context(path);
    if (parsed->end) return ok_status();
    TarEntry e = std::move(parsed->entry);
    uint64_t left = e.is_directory ? 0 : e.size;
    TarChunkReader reader = [&]() -> Result<std::string_view> {
      if (left == 0) return std::string_view();
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      HEARTH_TRY(read_exact(buf.data(), n));
      left -= n;
      return std::string_view(buf.data(), n);
    };
    HEARTH_TRY(on_entry(e, reader));
    if (left > 0) {
      // Skipped without reading; a seek past the end shows up as a truncated archive on the
      // next header read.
      if (left > static_cast<uint64_t>(INT64_MAX) || ::lseek(fd, static_cast<off_t>(left), SEEK_CUR) < 0) {
        return make_error(ErrorCode::kDataLoss, "{}: cannot skip an entry's content", path);
      }
      left = 0;
    }
    uint64_t data = e.is_directory ? 0 : e.size;
    if (data % kBlock != 0) {
      char padding[kBlock];
      HEARTH_TRY(read_exact(padding, kBlock - data % kBlock));
    }
  }
}

}  // namespace hearth::registry
