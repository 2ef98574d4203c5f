// SHA-256 digests of files and buffers, as lowercase hex (for provenance statements).
// OpenSSL is seen only by sha256.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "hearth/core/status.h"

namespace hearth::quantize {

// 64 lowercase hex characters.
std::string sha256_hex(std::span<const std::byte> data);
// Streams the file; `size_out` (optional) receives its length.
Result<std::string> sha256_file_hex(const std::string& path, uint64_t* size_out = nullptr);

}  // namespace hearth::quantize
