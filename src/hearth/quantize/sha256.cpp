// The OpenSSL adapter for SHA-256 (EVP interface).
#include "hearth/quantize/sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace hearth::quantize {
namespace {

struct CtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_MD_CTX, CtxFree>;

Ctx new_ctx() {
  Ctx c(EVP_MD_CTX_new());
  if (c) EVP_DigestInit_ex(c.get(), EVP_sha256(), nullptr);
  return c;
}

std::string finish_hex(EVP_MD_CTX* c) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(c, md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

}  // namespace

std::string sha256_hex(std::span<const std::byte> data) {
  Ctx c = new_ctx();
  EVP_DigestUpdate(c.get(), data.data(), data.size());
  return finish_hex(c.get());
}

Result<std::string> sha256_file_hex(const std::string& path, uint64_t* size_out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::kIo, path, ": cannot open for hashing: ", std::strerror(errno));
  Ctx c = new_ctx();
  if (!c) {
    ::close(fd);
    return make_error(ErrorCode::kResourceExhausted, path, ": cannot create a sha256 context");
  }
  std::vector<unsigned char> buf(size_t{1} << 20);
  uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return make_error(ErrorCode::kIo, path, ": read failed while hashing: ", std::strerror(err));
    }
    if (n == 0) break;
    EVP_DigestUpdate(c.get(), buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  ::close(fd);
  if (size_out) *size_out = total;
  return finish_hex(c.get());
}

}  // namespace hearth::quantize
