// libFuzzer target: the in-toto statement inside a signature bundle (parsed only after the
// signature verified, but a trusted key can still sign a malformed statement). parse_statement
// must never crash; a statement that parses serializes and parses back equal, and comparing it
// with a manifest never crashes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "hearth/trust/model_statement.h"

namespace {

hearth::store::Manifest sample_manifest() {
  hearth::store::Manifest m;
  m.artifact_type = std::string(hearth::store::kModelArtifactType);
  m.config.media_type = std::string(hearth::store::kModelConfigMediaType);
  m.config.digest = hearth::store::sha256_of(std::string_view("config"));
  m.config.size = 6;
  hearth::store::Descriptor w;
  w.media_type = std::string(hearth::store::kModelWeightMediaType);
  w.digest = hearth::store::sha256_of(std::string_view("weights"));
  w.size = 7;
  w.annotations[std::string(hearth::store::kAnnotationTitle)] = "model.gguf";
  m.layers.push_back(w);
  m.annotations[std::string(hearth::store::kAnnotationVersion)] = "1";
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const hearth::store::Manifest manifest = sample_manifest();
  auto s = hearth::trust::parse_statement(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!s.ok()) {
    if (s.status().message().empty()) std::abort();
    return 0;
  }
  (void)hearth::trust::match_statement(*s, manifest);
  auto again = hearth::trust::parse_statement(hearth::trust::serialize_statement(*s));
  if (!again.ok()) std::abort();
  if (again->model_name != s->model_name || again->version != s->version ||
      again->resources.size() != s->resources.size() || again->has_layout != s->has_layout ||
      again->layers.size() != s->layers.size() || !(again->root_digest() == s->root_digest())) {
    std::abort();
  }
  return 0;
}
