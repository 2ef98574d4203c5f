#include "hearth/model/model.h"

#include "hearth/core/log.h"
#include "hearth/model/architecture.h"

namespace hearth::model {

Result<std::unique_ptr<Model>> Model::load(const std::string& path) {
  auto m = std::unique_ptr<Model>(new Model());
  HEARTH_ASSIGN_OR_RETURN(m->file_, gguf::GgufModelFile::open(path));
  const gguf::GgufFile& f = m->file_->file();
  auto arch = f.get_string("general.architecture");
  if (!arch.ok()) {
    return make_error(ErrorCode::kInvalidArgument, f.name(),
                      ": metadata 'general.architecture' is missing or not a string; is this a model file?");
  }
  const Architecture* a = find_architecture(*arch);
  if (a == nullptr) {
    std::string known;
    for (auto n : architecture_names()) known += (known.empty() ? "" : ", ") + std::string(n);
    return make_error(ErrorCode::kUnimplemented, f.name(), ": architecture '", std::string(*arch),
                      "' is not supported (supported: ", known, ")");
  }
  if (f.tensors().empty()) {
    return make_error(ErrorCode::kInvalidArgument, f.name(),
                      ": the file has no tensors (a vocab-only file cannot be run)");
  }
  m->hp_.arch = std::string(*arch);
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (embd == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, f.name(), ": tensor 'token_embd.weight' is missing");
  }
  if (embd->ne[1] < 1 || embd->ne[1] > (uint64_t{1} << 24)) {
    return make_error(ErrorCode::kInvalidArgument, f.name(), ": token_embd.weight has an implausible vocab size ",
                      std::to_string(embd->ne[1]));
  }
  m->hp_.n_vocab = static_cast<int64_t>(embd->ne[1]);
  WeightBinder binder(f);
  HEARTH_TRY(a->load(f, m->hp_, m->w_, binder));
  for (const auto& name : binder.unused()) log::warn("{}: tensor '{}' is not used by the {} architecture", f.name(), name, a->name);
  if (auto toks = f.get_array("tokenizer.ggml.tokens", gguf::ValueType::STRING); toks.ok()) {
    if (static_cast<int64_t>((*toks)->count) > m->hp_.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, f.name(), ": the tokenizer has ", std::to_string((*toks)->count),
                        " tokens but token_embd.weight only ", std::to_string(m->hp_.n_vocab), " rows");
    }
  }
  return m;
}

uint64_t Model::weight_bytes() const {
  uint64_t total = 0;
  for (const auto& t : file_->file().tensors()) total += t.n_bytes;
  return total;
}

}  // namespace hearth::model
