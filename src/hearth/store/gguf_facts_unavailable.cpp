// read_gguf_facts when the gguf module is not part of the build (see CMakeLists.txt).
#include "hearth/store/model_config.h"

namespace hearth::store {

Result<ModelFacts> read_gguf_facts(const std::string& path) {
  return make_error(ErrorCode::kUnimplemented, path, ": this build has no gguf reader (module gguf is missing)");
}

Result<ModelFacts> read_gguf_facts(std::span<const std::byte>, const std::string& name) {
  return read_gguf_facts(name);
}

}  // namespace hearth::store
