// libFuzzer target: an OCI manifest or index from a hostile registry. parse_manifest and
// parse_index must never crash or abort; a manifest that parses serializes and parses back to
// the same digests, sizes and media types.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hearth/store/oci_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)hearth::store::parse_index(text);
  auto m = hearth::store::parse_manifest(text);
  if (!m.ok()) {
    if (m.status().message().empty()) std::abort();
    return 0;
  }
  (void)hearth::store::manifest_version(*m);
  auto again = hearth::store::parse_manifest(hearth::store::serialize_manifest(*m));
  if (!again.ok()) std::abort();
  if (!(again->config.digest == m->config.digest) || again->config.size != m->config.size ||
      again->layers.size() != m->layers.size()) {
    std::abort();
  }
  for (size_t i = 0; i < m->layers.size(); ++i) {
    if (!(again->layers[i].digest == m->layers[i].digest) || again->layers[i].media_type != m->layers[i].media_type) {
      std::abort();
    }
  }
  return 0;
}
