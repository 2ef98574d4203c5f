// libFuzzer target: a bundle (.tar) from anywhere. read_tar (through an in-memory file) and
// parse_tar_header must never crash, hang or read past the end; every entry it yields has a
// size within the input, and its chunks add up to at most that size.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "hearth/registry/tar_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 512) (void)hearth::registry::parse_tar_header(std::string_view(reinterpret_cast<const char*>(data), 512));
  static const int fd = ::memfd_create("tar_reader_fuzz", MFD_CLOEXEC);
  if (fd < 0) std::abort();
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  size_t entries = 0;
  (void)hearth::registry::read_tar(
      path, [&](const hearth::registry::TarEntry& e, hearth::registry::TarChunkReader& read) -> hearth::Status {
        if (++entries > size / 512 + 1) std::abort();  // each entry costs at least one header block
        uint64_t got = 0;
        if (entries % 2 == 0) {  // read every other entry, skip the rest
          for (;;) {
            auto chunk = read();
            if (!chunk.ok()) return chunk.status();
            if (chunk->empty()) break;
            got += chunk->size();
            if (got > e.size) std::abort();
          }
        }
        return hearth::ok_status();
      });
  return 0;
}
