#include "hearth/tokenizer/vocab_gguf.h"

#include <cstring>
#include <string>

#include "hearth/gguf/gguf.h"
#include "hearth/tokenizer/tokenizer.h"

namespace hearth::tokenizer {
namespace {

using gguf::ValueType;

// Optional keys: absent is fine, a present key of the wrong type is an error.
template <typename T>
Status read_optional(Result<T> r, std::optional<T>& out) {
  if (r.ok()) {
    out = std::move(r).value();
    return ok_status();
  }
  if (r.status().code() == ErrorCode::kNotFound) return ok_status();
  return r.status();
}

Status read_id(const gguf::GgufFile& f, std::string_view key, std::optional<uint32_t>& out) {
  if (f.find(key) == nullptr) return ok_status();
  auto r = f.get_int(key);
  if (!r.ok()) return r.status();
  // -1 (or any negative) means "none"; ids beyond the vocabulary are rejected by Vocab::build.
  if (*r >= 0 && *r <= static_cast<int64_t>(UINT32_MAX)) out = static_cast<uint32_t>(*r);
  return ok_status();
}

Status read_strings(const gguf::GgufFile& f, std::string_view key, std::vector<std::string>& out, bool required) {
  if (!required && f.find(key) == nullptr) return ok_status();
  HEARTH_ASSIGN_OR_RETURN(const gguf::ArrayValue* a, f.get_array(key, ValueType::STRING));
  out.reserve(a->strings.size());
  for (std::string_view s : a->strings) out.emplace_back(s);
  return ok_status();
}

template <typename T>
bool read_le(const gguf::ArrayValue& a, uint64_t i, T& v) {
  if ((i + 1) * sizeof(T) > a.raw.size()) return false;
  std::memcpy(&v, a.raw.data() + i * sizeof(T), sizeof(T));  // GGUF is little-endian, as is x86
  return true;
}

Status read_scores(const gguf::GgufFile& f, const std::string& name, std::vector<float>& out) {
  const gguf::KeyValue* kv = f.find("tokenizer.ggml.scores");
  if (kv == nullptr) return ok_status();
  const auto* a = std::get_if<gguf::ArrayValue>(&kv->value);
  if (a == nullptr || (a->elem_type != ValueType::FLOAT32 && a->elem_type != ValueType::INT32)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: tokenizer.ggml.scores must be an array of float32 or int32",
                      name);
  }
  out.resize(a->count);
  for (uint64_t i = 0; i < a->count; ++i) {
    bool ok;
    if (a->elem_type == ValueType::FLOAT32) {
      ok = read_le(*a, i, out[i]);
    } else {
      int32_t v = 0;
      ok = read_le(*a, i, v);
      out[i] = static_cast<float>(v);
    }
    if (!ok) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tokenizer.ggml.scores is truncated", name);
    }
  }
  return ok_status();
}

Status read_token_types(const gguf::GgufFile& f, const std::string& name, std::vector<int32_t>& out) {
  if (f.find("tokenizer.ggml.token_type") == nullptr) return ok_status();
  HEARTH_ASSIGN_OR_RETURN(const gguf::ArrayValue* a, f.get_array("tokenizer.ggml.token_type", ValueType::INT32));
  out.resize(a->count);
  for (uint64_t i = 0; i < a->count; ++i) {
    if (!read_le(*a, i, out[i])) {
      return make_error(ErrorCode::kInvalidArgument, "{}: tokenizer.ggml.token_type is truncated", name);
    }
  }
  return ok_status();
}

}  // namespace

Result<VocabSpec> vocab_spec_from_gguf(const gguf::GgufFile& f) {
  VocabSpec spec;
  spec.source = f.name();
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model.ok()) return model.status().with_context(f.name());
  spec.model = std::string(*model);
  std::optional<std::string_view> pre;
  HEARTH_TRY(read_optional(f.get_string("tokenizer.ggml.pre"), pre));
  if (pre) spec.pre = std::string(*pre);

  HEARTH_TRY(read_strings(f, "tokenizer.ggml.tokens", spec.tokens, /*required=*/true));
  HEARTH_TRY(read_scores(f, spec.source, spec.scores));
  HEARTH_TRY(read_token_types(f, spec.source, spec.token_types));
  HEARTH_TRY(read_strings(f, "tokenizer.ggml.merges", spec.merges, /*required=*/false));

  const std::pair<std::string_view, std::optional<uint32_t>*> ids[] = {
      {"tokenizer.ggml.bos_token_id", &spec.bos_id},         {"tokenizer.ggml.eos_token_id", &spec.eos_id},
      {"tokenizer.ggml.eot_token_id", &spec.eot_id},         {"tokenizer.ggml.eom_token_id", &spec.eom_id},
      {"tokenizer.ggml.unknown_token_id", &spec.unk_id},     {"tokenizer.ggml.seperator_token_id", &spec.sep_id},
      {"tokenizer.ggml.padding_token_id", &spec.pad_id},     {"tokenizer.ggml.mask_token_id", &spec.mask_id},
      {"tokenizer.ggml.prefix_token_id", &spec.fim_pre_id},  // deprecated spellings first
      {"tokenizer.ggml.suffix_token_id", &spec.fim_suf_id},  {"tokenizer.ggml.middle_token_id", &spec.fim_mid_id},
      {"tokenizer.ggml.fim_pre_token_id", &spec.fim_pre_id}, {"tokenizer.ggml.fim_suf_token_id", &spec.fim_suf_id},
      {"tokenizer.ggml.fim_mid_token_id", &spec.fim_mid_id}, {"tokenizer.ggml.fim_pad_token_id", &spec.fim_pad_id},
      {"tokenizer.ggml.fim_rep_token_id", &spec.fim_rep_id}, {"tokenizer.ggml.fim_sep_token_id", &spec.fim_sep_id},
  };
  for (const auto& [key, slot] : ids) {
    Status s = read_id(f, key, *slot);
    if (!s.ok()) return s.with_context(f.name());
  }
  const std::pair<std::string_view, std::optional<bool>*> flags[] = {
      {"tokenizer.ggml.add_bos_token", &spec.add_bos},
      {"tokenizer.ggml.add_eos_token", &spec.add_eos},
      {"tokenizer.ggml.add_sep_token", &spec.add_sep},
      {"tokenizer.ggml.add_space_prefix", &spec.add_space_prefix},
  };
  for (const auto& [key, slot] : flags) {
    Status s = read_optional(f.get_bool(key), *slot);
    if (!s.ok()) return s.with_context(f.name());
  }
  return spec;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::GgufFile& file) {
  HEARTH_ASSIGN_OR_RETURN(VocabSpec spec, vocab_spec_from_gguf(file));
  return create(std::move(spec));
}

}  // namespace hearth::tokenizer
