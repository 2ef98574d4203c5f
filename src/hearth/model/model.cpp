#include "hearth/model/model.h"

#include <cstdlib>
#include <cstring>

#include "hearth/core/log.h"
#include "hearth/model/architecture.h"

namespace hearth::model {

namespace {

// HEARTH_REPACK=0: read every weight as stored; =all: repack every weight the table packs,
// however much memory the expanded layouts take; unset or 1: repack within the budget.
std::pair<const kernels::KernelTable*, uint64_t> repack_from_env() {
  const char* env = std::getenv("HEARTH_REPACK");
  const bool repack = env == nullptr || std::strcmp(env, "0") != 0;
  const uint64_t budget = env != nullptr && std::strcmp(env, "all") == 0 ? UINT64_MAX : Model::kRepackGrowthBudget;
  return {repack ? &kernels::active_kernels() : nullptr, budget};
}

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const LoadOptions& options) {
  auto [kt, budget] = repack_from_env();
  return load(path, kt, budget, options);
}

Result<std::unique_ptr<Model>> Model::load(std::shared_ptr<const MappedFile> mapping, const LoadOptions& options) {
  auto [kt, budget] = repack_from_env();
  return load(std::move(mapping), kt, budget, options);
}

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const kernels::KernelTable* kernels,
                                           uint64_t growth_budget, const LoadOptions& options) {
  HEARTH_ASSIGN_OR_RETURN(MappedFile map, MappedFile::open(path));
  return load(std::make_shared<const MappedFile>(std::move(map)), kernels, growth_budget, options);
}

Result<std::unique_ptr<Model>> Model::load(std::shared_ptr<const MappedFile> mapping,
                                           const kernels::KernelTable* kernels, uint64_t growth_budget,
                                           const LoadOptions& options) {
  if (mapping == nullptr) return make_error(ErrorCode::kInvalidArgument, "Model::load: no mapping");
  auto m = std::unique_ptr<Model>(new Model());
  m->map_ = std::move(mapping);
  try {
    HEARTH_ASSIGN_OR_RETURN(m->file_, gguf::parse_gguf(m->map_->bytes(), m->map_->path()));
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kResourceExhausted, "{}: out of memory while opening gguf", m->map_->path());
  }
  const gguf::GgufFile& f = m->file_;
  auto arch = f.get_string("general.architecture");
  if (!arch.ok()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: metadata 'general.architecture' is missing or not a string; is this a model file?",
                      f.name());
  }
  const Architecture* a = find_architecture(*arch);
  if (a == nullptr) {
    std::string known;
    for (auto n : architecture_names()) known += (known.empty() ? "" : ", ") + std::string(n);
    return make_error(ErrorCode::kUnimplemented, "{}: architecture '{}' is not supported (supported: {})", f.name(),
                      *arch, known);
  }
  if (f.tensors().empty()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: the file has no tensors (a vocab-only file cannot be run)",
                      f.name());
  }
  m->hp_.arch = std::string(*arch);
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  if (embd == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "{}: tensor 'token_embd.weight' is missing", f.name());
  }
  if (embd->ne[1] < 1 || embd->ne[1] > (uint64_t{1} << 24)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: token_embd.weight has an implausible vocab size {}", f.name(),
                      embd->ne[1]);
  }
  m->hp_.n_vocab = static_cast<int64_t>(embd->ne[1]);
  WeightBinder binder(f);
  HEARTH_TRY(a->load(f, m->hp_, m->w_, binder));
  m->block_ = a->block(m->hp_);
  for (const auto& name : binder.unused())
    log::warn("{}: tensor '{}' is not used by the {} architecture", f.name(), name, a->name);
  if (auto toks = f.get_array("tokenizer.ggml.tokens", gguf::ValueType::STRING); toks.ok()) {
    // One embedding row per token, no more and no fewer: a smaller vocabulary leaves rows that
    // sampling can pick but the tokenizer cannot decode.
    if (static_cast<int64_t>((*toks)->count) != m->hp_.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: the tokenizer has {} tokens but token_embd.weight has {} rows; they must match (the file "
                        "is corrupt or was converted wrongly)",
                        f.name(), (*toks)->count, m->hp_.n_vocab);
    }
  }
  if (kernels != nullptr) m->repack(*kernels, growth_budget, options.n_threads);
  return m;
}

uint64_t Model::bytes_read(const gguf::TensorInfo& t, std::string_view isa) const {
  if (isa == packed_.isa()) {
    if (const uint64_t packed = packed_.packed_size_of(t.data.data()); packed > 0) return packed;
  }
  return t.n_bytes;
}

uint64_t Model::weight_bytes() const {
  uint64_t total = 0;
  for (const auto& t : file_.tensors()) total += t.n_bytes;
  return total;
}

}  // namespace hearth::model
