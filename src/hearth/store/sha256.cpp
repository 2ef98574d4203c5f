// The OpenSSL adapter for hashing (see digest.h).
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "hearth/store/digest.h"

namespace hearth::store {

Sha256::Sha256() {
  auto* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  ctx_ = ctx;
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(std::span<const std::byte> data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}

void Sha256::update(std::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}

Digest Sha256::finish() {
  std::array<uint8_t, 32> raw{};
  unsigned int len = 0;
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  EVP_DigestFinal_ex(ctx, raw.data(), &len);
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);  // reusable after finish
  return Digest::from_raw(raw);
}

Digest sha256_of(std::span<const std::byte> data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

Digest sha256_of(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

Result<Digest> sha256_file(const std::string& path, uint64_t* size_out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo, path,
                      ": cannot open: ", std::strerror(errno));
  }
  Sha256 h;
  std::vector<std::byte> buf(1 << 20);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return make_error(ErrorCode::kIo, path, ": read failed: ", std::strerror(e));
    }
    if (n == 0) break;
    h.update(std::span<const std::byte>(buf.data(), static_cast<size_t>(n)));
    total += static_cast<uint64_t>(n);
  }
  ::close(fd);
  if (size_out != nullptr) *size_out = total;
  return h.finish();
}

}  // namespace hearth::store
