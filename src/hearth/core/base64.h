// Standard base64 (RFC 4648 §4, with padding), as DSSE, sigstore bundles and the embeddings
// API use it. Decoding is strict: wrong length, bad characters or bad padding are errors.
#pragma once

#include <string>
#include <string_view>

#include "hearth/core/status.h"

namespace hearth {

std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

}  // namespace hearth
