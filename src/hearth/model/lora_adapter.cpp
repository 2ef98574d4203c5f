// LoraAdapter: validation of an untrusted adapter file against its base model, and conversion
// of the factors to f32.
#include "hearth/model/lora_adapter.h"

#include <cmath>
#include <cstring>
#include <map>

#include "hearth/core/checked_math.h"
#include "hearth/gguf/gguf.h"
#include "hearth/kernels/fp16.h"

namespace hearth::model {
namespace {

constexpr std::string_view kSuffixA = ".lora_a";
constexpr std::string_view kSuffixB = ".lora_b";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The f32 values of an F32 or F16 tensor; an error for any other type or a non-finite value.
Result<std::vector<float>> factor_values(const gguf::TensorInfo& t, std::string_view file) {
  if (t.type != TensorType::F32 && t.type != TensorType::F16) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: tensor '{}': type {} is not supported; LoRA factors must be F32 or F16", file, t.name,
                      type_name(t.type));
  }
  const size_t n = static_cast<size_t>(t.n_elements);
  const size_t elem = t.type == TensorType::F32 ? 4 : 2;
  if (t.data.size() < n * elem) {
    return make_error(ErrorCode::kDataLoss, "{}: tensor '{}': {} bytes for {} elements", file, t.name, t.data.size(),
                      n);
  }
  std::vector<float> v(n);
  if (t.type == TensorType::F32) {
    std::memcpy(v.data(), t.data.data(), n * sizeof(float));
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, t.data.data() + i * 2, 2);
      v[i] = kernels::fp16_to_fp32(h);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': element {} is not finite", file, t.name, i);
    }
  }
  return v;
}

// "value" in quotes, or "missing".
std::string quoted(const Result<std::string_view>& v) { return v.ok() ? fmt::format("\"{}\"", *v) : "missing"; }

}  // namespace

std::unordered_map<std::string, const TensorView*> lora_targets(const Model& base) {
  std::unordered_map<std::string, const TensorView*> out;
  const ModelWeights& w = base.weights();
  for (size_t il = 0; il < w.layers.size(); ++il) {
    const LayerWeights& l = w.layers[il];
    const std::string p = "blk." + std::to_string(il) + ".";
    const std::pair<const char*, const TensorView*> named[] = {
        {"attn_q.weight", &l.wq},        {"attn_k.weight", &l.wk},         {"attn_v.weight", &l.wv},
        {"attn_output.weight", &l.wo},   {"ffn_gate.weight", &l.ffn_gate}, {"ffn_up.weight", &l.ffn_up},
        {"ffn_down.weight", &l.ffn_down}};
    for (const auto& [suffix, view] : named) {
      if (view->valid()) out.emplace(p + suffix, view);
    }
  }
  return out;
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::load(const std::string& path, const Model& base) {
  HEARTH_ASSIGN_OR_RETURN(MappedFile map, MappedFile::open(path));
  return load(map, base);
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::load(const MappedFile& file, const Model& base) {
  return parse(file.bytes(), file.path(), base);
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapter::parse(std::span<const std::byte> bytes, std::string_view name,
                                                              const Model& base) {
  HEARTH_ASSIGN_OR_RETURN(gguf::GgufFile f, gguf::parse_gguf(bytes, name));
  auto general_type = f.get_string("general.type");
  if (!general_type.ok() || *general_type != "adapter") {
    return make_error(ErrorCode::kInvalidArgument, "{}: general.type is {}, not \"adapter\": not a LoRA adapter file",
                      name, quoted(general_type));
  }
  auto adapter_type = f.get_string("adapter.type");
  if (!adapter_type.ok() || *adapter_type != "lora") {
    return make_error(ErrorCode::kInvalidArgument, "{}: adapter.type is {}, not \"lora\"", name, quoted(adapter_type));
  }
  auto alpha = f.get_f32("adapter.lora.alpha");
  if (!alpha.ok())
    return make_error(ErrorCode::kInvalidArgument, "{}: adapter.lora.alpha: {}", name, alpha.status().message());
  if (!std::isfinite(*alpha) || *alpha <= 0.0f) {
    return make_error(ErrorCode::kInvalidArgument, "{}: adapter.lora.alpha is {}; it must be finite and > 0", name,
                      *alpha);
  }
  if (auto arch = f.get_string("general.architecture"); arch.ok() && *arch != base.hparams().arch) {
    return make_error(ErrorCode::kInvalidArgument, "{}: adapter is for architecture '{}', the base model is '{}'", name,
                      *arch, base.hparams().arch);
  }
  if (f.tensors().empty()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: the adapter has no tensors", name);
  }

  // Pair the factors by base tensor name (sorted, so that the order does not depend on the file).
  struct Pair {
    const gguf::TensorInfo* a = nullptr;
    const gguf::TensorInfo* b = nullptr;
  };
  std::map<std::string, Pair> pairs;
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (ends_with(t.name, kSuffixA)) {
      pairs[std::string(t.name.substr(0, t.name.size() - kSuffixA.size()))].a = &t;
    } else if (ends_with(t.name, kSuffixB)) {
      pairs[std::string(t.name.substr(0, t.name.size() - kSuffixB.size()))].b = &t;
    } else {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}' is not a LoRA factor (names end in {} or {})",
                        name, t.name, kSuffixA, kSuffixB);
    }
  }

  const auto targets = lora_targets(base);
  auto out = std::shared_ptr<LoraAdapter>(new LoraAdapter());
  out->path_ = std::string(name);
  out->alpha_ = *alpha;
  out->base_ = &base;
  out->weights_.reserve(pairs.size());
  for (const auto& [base_name, p] : pairs) {
    if (p.a == nullptr || p.b == nullptr) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}{}' has no matching '{}{}'", name, base_name,
                        p.a ? kSuffixA : kSuffixB, base_name, p.a ? kSuffixB : kSuffixA);
    }
    auto it = targets.find(base_name);
    if (it == targets.end()) {
      if (base.gguf().find_tensor(base_name) != nullptr) {
        return make_error(ErrorCode::kUnimplemented,
                          "{}: tensor '{}': hearth applies adapters to attention q/k/v/output and dense FFN weights "
                          "only, not to '{}'",
                          name, p.a->name, base_name);
      }
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': the base model {} has no tensor '{}'", name,
                        p.a->name, base.path(), base_name);
    }
    const TensorView& w = *it->second;
    const int64_t cols = w.ne[0], rows = w.ne[1];
    const gguf::TensorInfo& ta = *p.a;
    const gguf::TensorInfo& tb = *p.b;
    if (ta.n_dims != 2 || tb.n_dims != 2) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': LoRA factors are 2-D, this one has {} dims",
                        name, ta.n_dims != 2 ? ta.name : tb.name, ta.n_dims != 2 ? ta.n_dims : tb.n_dims);
    }
    const uint64_t rank = ta.ne[1];
    if (ta.ne[0] != static_cast<uint64_t>(cols)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: tensor '{}': ne[0] is {}, the base tensor '{}' has {} columns", name, ta.name, ta.ne[0],
                        base_name, cols);
    }
    if (tb.ne[1] != static_cast<uint64_t>(rows)) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': ne[1] is {}, the base tensor '{}' has {} rows",
                        name, tb.name, tb.ne[1], base_name, rows);
    }
    if (tb.ne[0] != rank) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': rank {} differs from the rank {} of '{}'", name,
                        tb.name, tb.ne[0], rank, ta.name);
    }
    if (rank < 1 || rank > static_cast<uint64_t>(kMaxRank)) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': rank {} is outside [1, {}]", name, ta.name, rank,
                        kMaxRank);
    }
    const auto n_a = checked_mul<uint64_t>(rank, static_cast<uint64_t>(cols));
    const auto n_b = checked_mul<uint64_t>(rank, static_cast<uint64_t>(rows));
    if (!n_a || !n_b || *n_a != ta.n_elements || *n_b != tb.n_elements) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}': element counts do not match its shape", name,
                        ta.name);
    }
    LoraWeight lw;
    lw.name = base_name;
    lw.target = &w;
    lw.rank = static_cast<int64_t>(rank);
    lw.rows = rows;
    lw.cols = cols;
    HEARTH_ASSIGN_OR_RETURN(lw.a, factor_values(ta, name));
    HEARTH_ASSIGN_OR_RETURN(lw.b, factor_values(tb, name));
    lw.alpha_over_rank = *alpha / static_cast<float>(rank);
    out->max_rank_ = std::max(out->max_rank_, lw.rank);
    out->index_.emplace(&w, out->weights_.size());
    out->weights_.push_back(std::move(lw));
  }
  return std::shared_ptr<const LoraAdapter>(std::move(out));
}

const LoraWeight* LoraAdapter::find(std::string_view base_name) const {
  for (const LoraWeight& w : weights_) {
    if (w.name == base_name) return &w;
  }
  return nullptr;
}

}  // namespace hearth::model
