// The ecosystem's mixed-precision recipes (llama.cpp src/llama-quant.cpp: tensor_get_category,
// llama_tensor_get_type_impl, tensor_type_fallback), restricted to the file types hearth makes.
#include "hearth/quantize/recipe.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

namespace hearth::quantize {
namespace {

struct FileTypeName {
  FileType type;
  std::string_view name;
};

// In the order of the ecosystem's QUANT_OPTIONS.
constexpr FileTypeName kNames[] = {
    {FileType::kQ4_0, "Q4_0"},     {FileType::kQ4_1, "Q4_1"},     {FileType::kQ5_0, "Q5_0"},
    {FileType::kQ5_1, "Q5_1"},     {FileType::kQ2_K, "Q2_K"},     {FileType::kQ3_K_S, "Q3_K_S"},
    {FileType::kQ3_K_M, "Q3_K_M"}, {FileType::kQ3_K_L, "Q3_K_L"}, {FileType::kIQ4_NL, "IQ4_NL"},
    {FileType::kIQ4_XS, "IQ4_XS"}, {FileType::kQ4_K_S, "Q4_K_S"}, {FileType::kQ4_K_M, "Q4_K_M"},
    {FileType::kQ5_K_S, "Q5_K_S"}, {FileType::kQ5_K_M, "Q5_K_M"}, {FileType::kQ6_K, "Q6_K"},
    {FileType::kQ8_0, "Q8_0"},     {FileType::kF16, "F16"},       {FileType::kBF16, "BF16"},
    {FileType::kAllF32, "F32"},
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// Broad tensor categories, matched in the ecosystem's order (first match wins).
enum class Category {
  kTokenEmbd,
  kAttnQ,
  kAttnV,
  kAttnK,
  kAttnQkv,
  kAttnKvB,
  kAttnOutput,
  kFfnUp,
  kFfnGate,
  kFfnDown,
  kOutput,
  kOther
};

Category category_of(std::string_view name) {
  if (name == "output.weight") return Category::kOutput;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Category::kTokenEmbd;
  if (contains(name, "attn_qkv.weight")) return Category::kAttnQkv;
  if (contains(name, "attn_kv_b.weight")) return Category::kAttnKvB;
  if (contains(name, "attn_v.weight")) return Category::kAttnV;
  if (contains(name, "attn_k.weight")) return Category::kAttnK;
  if (contains(name, "attn_q.weight")) return Category::kAttnQ;
  if (contains(name, "attn_output.weight")) return Category::kAttnOutput;
  if (contains(name, "ffn_up")) return Category::kFfnUp;
  if (contains(name, "ffn_gate")) return Category::kFfnGate;
  if (contains(name, "ffn_down")) return Category::kFfnDown;
  return Category::kOther;
}

// "blk.N." -> N; nullopt for tensors outside the layers.
std::optional<int64_t> layer_of(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return std::nullopt;
  int64_t v = 0;
  const char* b = name.data() + 4;
  const char* e = name.data() + name.size();
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || p == b || p == e || *p != '.') return std::nullopt;
  return v;
}

bool is_quantized_type(TensorType t) { return t != TensorType::F32 && t != TensorType::F16 && t != TensorType::BF16; }

bool fits(TensorType t, uint64_t ncols) { return ncols % traits_of(t).block_size == 0; }

// The ecosystem's model-type detection for the one rule that uses it (LLM_TYPE_70B: a llama
// with 80 layers and grouped-query attention).
bool is_llama_70b(const ModelFacts& m) {
  return m.arch == "llama" && m.n_layer == 80 && m.n_expert == 0 && m.n_head_kv > 0 && m.n_head != m.n_head_kv;
}

// llama_tensor_get_type_impl for the file types in FileType.
Result<TensorType> recipe_type(const Recipe& r, const TensorShape& t, Category cat, TensorType new_type,
                               const ModelFacts& m) {
  using F = FileType;
  const F ft = r.ftype;
  const int64_t n_gqa = m.n_head_kv > 0 ? m.n_head / m.n_head_kv : 1;
  auto layer = [&]() -> Result<int64_t> {
    auto l = layer_of(t.name);
    if (!l || *l < 0 || *l >= m.n_layer) {
      return make_error(ErrorCode::kInvalidArgument, "tensor '{}': cannot find its layer in [0, {})", t.name,
                        m.n_layer);
    }
    return *l;
  };

  if (cat == Category::kOutput || (!m.has_output && cat == Category::kTokenEmbd)) {
    // Tied embeddings take the output's type.
    if (r.output_type) return *r.output_type;
    if (m.arch == "falcon" || !fits(new_type, t.ne[0])) return TensorType::Q8_0;
    if (new_type != TensorType::Q8_0) return TensorType::Q6_K;
    return new_type;
  }
  if (cat == Category::kTokenEmbd) {
    return r.token_embedding_type ? *r.token_embedding_type : new_type;
  }
  if (cat == Category::kAttnV || cat == Category::kAttnQkv || cat == Category::kAttnKvB) {
    HEARTH_ASSIGN_OR_RETURN(int64_t il, layer());
    const int64_t n = m.n_layer;
    if (ft == F::kQ2_K) {
      new_type = n_gqa >= 4 ? TensorType::Q4_K : TensorType::Q3_K;
    } else if (ft == F::kQ3_K_M) {
      new_type = il < 2 ? TensorType::Q5_K : TensorType::Q4_K;
    } else if (ft == F::kQ3_K_L) {
      new_type = TensorType::Q5_K;
    } else if ((ft == F::kIQ4_NL || ft == F::kIQ4_XS) && n_gqa >= 4) {
      new_type = TensorType::Q5_K;
    } else if ((ft == F::kQ4_K_M || ft == F::kQ5_K_M) && use_more_bits(il, n)) {
      new_type = TensorType::Q6_K;
    } else if (ft == F::kQ4_K_S && il < 4) {
      new_type = TensorType::Q5_K;
    }
    if (is_llama_70b(m) && (new_type == TensorType::Q3_K || new_type == TensorType::Q4_K)) new_type = TensorType::Q5_K;
    if (m.n_expert == 8) new_type = TensorType::Q8_0;
    return new_type;
  }
  if (cat == Category::kAttnK) {
    if (m.n_expert == 8) new_type = TensorType::Q8_0;
    return new_type;
  }
  if (cat == Category::kFfnDown) {
    HEARTH_ASSIGN_OR_RETURN(int64_t il, layer());
    const int64_t n = m.n_layer;
    const bool falcon = m.arch == "falcon";
    if (ft == F::kQ2_K) {
      new_type = TensorType::Q3_K;
    } else if (ft == F::kQ3_K_M) {
      new_type = il < n / 16 ? TensorType::Q5_K : !falcon || use_more_bits(il, n) ? TensorType::Q4_K : TensorType::Q3_K;
    } else if (ft == F::kQ3_K_L) {
      new_type = falcon ? TensorType::Q4_K : TensorType::Q5_K;
    } else if (ft == F::kQ4_K_M) {
      if (falcon) {
        new_type = il < n / 16 ? TensorType::Q6_K : use_more_bits(il, n) ? TensorType::Q5_K : TensorType::Q4_K;
      } else if (use_more_bits(il, n)) {
        new_type = TensorType::Q6_K;
      }
    } else if (il < n / 8 && (ft == F::kIQ4_NL || ft == F::kIQ4_XS) && !r.has_imatrix) {
      new_type = TensorType::Q5_K;
    } else if (ft == F::kQ5_K_M && use_more_bits(il, n)) {
      new_type = TensorType::Q6_K;
    } else if (ft == F::kQ4_K_S && !falcon && il < n / 8) {
      new_type = TensorType::Q5_K;
    } else if ((ft == F::kQ4_0 || ft == F::kQ5_0) && r.has_imatrix && il < n / 8) {
      // Guards the first ffn_down layers, only with an imatrix (so that the plain recipe
      // stays what it always was).
      new_type = ft == F::kQ4_0 ? TensorType::Q4_1 : TensorType::Q5_1;
    }
    return new_type;
  }
  if (cat == Category::kAttnOutput) {
    if (m.arch != "falcon") {
      if (m.n_expert == 8) {
        if (ft == F::kQ2_K || ft == F::kQ3_K_S || ft == F::kQ3_K_M || ft == F::kQ4_K_S || ft == F::kQ4_K_M ||
            ft == F::kIQ4_NL || ft == F::kIQ4_XS) {
          new_type = TensorType::Q5_K;
        }
      } else if (ft == F::kQ2_K) {
        new_type = TensorType::Q3_K;
      } else if (ft == F::kQ3_K_M) {
        new_type = TensorType::Q4_K;
      } else if (ft == F::kQ3_K_L) {
        new_type = TensorType::Q5_K;
      }
    } else if (ft == F::kQ3_K_L) {
      new_type = TensorType::Q4_K;
    }
    return new_type;
  }
  return new_type;
}

// tensor_type_fallback: the ecosystem's replacement when the row does not fit the block.
// The ecosystem maps Q2_K/Q3_K to Q4_0, Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0 and IQ4_XS to
// IQ4_NL; a row that fits none of the 32-element types becomes F16 (as the reference files show
// for the 172-wide ffn_down of stories260K, also for the 32-element file types).
TensorType fallback_for(TensorType t) {
  switch (t) {
    case TensorType::Q2_K:
    case TensorType::Q3_K: return TensorType::Q4_0;
    case TensorType::Q4_K: return TensorType::Q5_0;
    case TensorType::Q5_K: return TensorType::Q5_1;
    case TensorType::Q6_K: return TensorType::Q8_0;
    case TensorType::IQ4_XS: return TensorType::IQ4_NL;
    default: return TensorType::F16;
  }
}

}  // namespace

std::optional<FileType> parse_file_type(std::string_view name) {
  for (const auto& n : kNames) {
    if (iequals(n.name, name)) return n.type;
  }
  if (iequals(name, "Q3_K")) return FileType::kQ3_K_M;
  if (iequals(name, "Q4_K")) return FileType::kQ4_K_M;
  if (iequals(name, "Q5_K")) return FileType::kQ5_K_M;
  uint32_t id = 0;
  auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
  if (ec == std::errc() && p == name.data() + name.size() && !name.empty()) {
    for (const auto& n : kNames) {
      if (static_cast<uint32_t>(n.type) == id) return n.type;
    }
  }
  return std::nullopt;
}

std::string_view file_type_name(FileType t) {
  for (const auto& n : kNames) {
    if (n.type == t) return n.name;
  }
  return "unknown";
}

const std::vector<FileType>& all_file_types() {
  static const std::vector<FileType> kAll = [] {
    std::vector<FileType> v;
    for (const auto& n : kNames) v.push_back(n.type);
    return v;
  }();
  return kAll;
}

TensorType base_type(FileType t) {
  switch (t) {
    case FileType::kAllF32: return TensorType::F32;
    case FileType::kF16: return TensorType::F16;
    case FileType::kBF16: return TensorType::BF16;
    case FileType::kQ4_0: return TensorType::Q4_0;
    case FileType::kQ4_1: return TensorType::Q4_1;
    case FileType::kQ5_0: return TensorType::Q5_0;
    case FileType::kQ5_1: return TensorType::Q5_1;
    case FileType::kQ8_0: return TensorType::Q8_0;
    case FileType::kQ2_K: return TensorType::Q2_K;
    case FileType::kQ3_K_S:
    case FileType::kQ3_K_M:
    case FileType::kQ3_K_L: return TensorType::Q3_K;
    case FileType::kQ4_K_S:
    case FileType::kQ4_K_M: return TensorType::Q4_K;
    case FileType::kQ5_K_S:
    case FileType::kQ5_K_M: return TensorType::Q5_K;
    case FileType::kQ6_K: return TensorType::Q6_K;
    case FileType::kIQ4_NL: return TensorType::IQ4_NL;
    case FileType::kIQ4_XS: return TensorType::IQ4_XS;
  }
  return TensorType::F32;
}

bool use_more_bits(int64_t i_layer, int64_t n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

bool allows_quantization(const TensorShape& t) {
  const std::string_view name = t.name;
  if (t.n_dims < 2) return false;
  if (name.size() < 6 || name.substr(name.size() - 6) != "weight") return false;
  static constexpr std::string_view kNever[] = {"_norm.weight",
                                                "ffn_gate_inp.weight",
                                                "altup",
                                                "laurel",
                                                "per_layer_model_proj",
                                                "ssm_conv1d",
                                                "shortconv.conv.weight",
                                                "time_mix_first.weight",
                                                "time_mix_w0.weight",
                                                "time_mix_w1.weight",
                                                "time_mix_w2.weight",
                                                "time_mix_v0.weight",
                                                "time_mix_v1.weight",
                                                "time_mix_v2.weight",
                                                "time_mix_a0.weight",
                                                "time_mix_a1.weight",
                                                "time_mix_a2.weight",
                                                "time_mix_g1.weight",
                                                "time_mix_g2.weight",
                                                "time_mix_decay_w1.weight",
                                                "time_mix_decay_w2.weight",
                                                "time_mix_lerp_fused.weight",
                                                "attn_rel_b.weight",
                                                ".position_embd",
                                                ".rel_pos",
                                                ".patch_embd"};
  for (std::string_view part : kNever) {
    if (contains(name, part)) return false;
  }
  return name != "position_embd.weight" && name != "token_types.weight";
}

Result<TypeChoice> choose_type(const Recipe& r, const TensorShape& t, TensorType current, const ModelFacts& m) {
  TypeChoice c{current, false, current, false, {}};
  if (!allows_quantization(t)) return c;
  const Category cat = category_of(t.name);
  const uint64_t ncols = t.ne[0];
  auto explicit_type = [&](TensorType want, std::string_view flag) -> Result<TypeChoice> {
    if (!fits(want, ncols)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "tensor '{}': {} {} needs rows that are a multiple of {}, but the row has {} elements", t.name,
                        flag, type_name(want), traits_of(want).block_size, ncols);
    }
    return TypeChoice{want, want != current, want, false, {}};
  };
  // Explicit types win over the recipe (and are never silently replaced).
  if (r.token_embedding_type && cat == Category::kTokenEmbd)
    return explicit_type(*r.token_embedding_type, "--token-embedding-type");
  if (r.output_type && (cat == Category::kOutput || (!m.has_output && cat == Category::kTokenEmbd))) {
    return explicit_type(*r.output_type, "--output-tensor-type");
  }

  TensorType type = base_type(r.ftype);
  if (is_quantized_type(type)) {
    if (!r.pure) {
      HEARTH_ASSIGN_OR_RETURN(type, recipe_type(r, t, cat, type, m));
    }
    c.wanted = type;
    if (!fits(type, ncols)) {
      std::string note = "ncols " + std::to_string(ncols) + " not divisible by " +
                         std::to_string(traits_of(type).block_size) + " (" + std::string(type_name(type)) + ")";
      TensorType fb = fallback_for(type);
      if (!fits(fb, ncols)) fb = TensorType::F16;
      note += " -> " + std::string(type_name(fb));
      type = fb;
      c.fallback = true;
      c.note = std::move(note);
    }
  } else {
    c.wanted = type;
  }
  c.type = type;
  c.quantized = type != current;
  return c;
}

}  // namespace hearth::quantize
