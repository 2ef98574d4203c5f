// Model: a loaded GGUF model — the mapping, its hyper-parameters and weight views.
// Weights stay in their stored types inside the mapping; nothing is copied.
#pragma once

#include <memory>
#include <string>

#include "hearth/core/status.h"
#include "hearth/gguf/gguf.h"
#include "hearth/model/model_weights.h"

namespace hearth::model {

class Model {
 public:
  // Loads a GGUF file: parses it, finds its architecture, validates every weight's shape
  // and type against the hyper-parameters. Errors name the file and the problem.
  static Result<std::unique_ptr<Model>> load(const std::string& path);

  const HParams& hparams() const { return hp_; }
  const ModelWeights& weights() const { return w_; }
  const gguf::GgufFile& gguf() const { return file_->file(); }
  const std::string& path() const { return file_->path(); }
  uint64_t file_bytes() const { return file_->mapping().size(); }
  // Bytes of weight data (all tensors).
  uint64_t weight_bytes() const;

 private:
  std::unique_ptr<gguf::GgufModelFile> file_;
  HParams hp_;
  ModelWeights w_;
};

}  // namespace hearth::model
