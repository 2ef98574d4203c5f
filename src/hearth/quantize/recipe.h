// Quantization recipes: the ecosystem's file types (LLAMA_FTYPE ids, as stored in
// general.file_type) and the per-tensor type choice of its mixed-precision recipes
// (llama.cpp src/llama-quant.cpp, llama_tensor_get_type): which tensors keep more bits
// (output, attn_v, ffn_down, attn_output, ...), the rules for Mixtral-style 8-expert models,
// and the fallback when a row does not fit the chosen type's block size.
// Pure functions over names and shapes: no file access.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/core/tensor_type.h"

namespace hearth::quantize {

// LLAMA_FTYPE ids (llama.h). Only the ones hearth can produce.
enum class FileType : uint32_t {
  kAllF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 7,
  kQ5_0 = 8,
  kQ5_1 = 9,
  kQ2_K = 10,
  kQ3_K_S = 11,
  kQ3_K_M = 12,
  kQ3_K_L = 13,
  kQ4_K_S = 14,
  kQ4_K_M = 15,
  kQ5_K_S = 16,
  kQ5_K_M = 17,
  kQ6_K = 18,
  kIQ4_NL = 25,
  kIQ4_XS = 30,
  kBF16 = 32,
};

// "Q4_K_M" (case-insensitive; the aliases Q3_K, Q4_K, Q5_K mean the _M variants, as in the
// ecosystem's quantize tool), or the numeric id. nullopt when unknown.
std::optional<FileType> parse_file_type(std::string_view name);
std::string_view file_type_name(FileType t);
// Every file type hearth produces, in the order of the ecosystem's list.
const std::vector<FileType>& all_file_types();
// The base tensor type of a file type (Q4_K for Q4_K_S and Q4_K_M, ...).
TensorType base_type(FileType t);

struct Recipe {
  FileType ftype = FileType::kQ4_K_M;
  bool pure = false;                               // every quantized tensor gets the base type
  bool has_imatrix = false;                        // changes the Q4_0/Q5_0 ffn_down rule
  std::optional<TensorType> output_type;           // --output-tensor-type
  std::optional<TensorType> token_embedding_type;  // --token-embedding-type
};

// What the recipe needs to know about the model (from its GGUF metadata).
struct ModelFacts {
  std::string arch;  // general.architecture
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_expert = 0;    // 0 for dense models
  bool has_output = true;  // false when output.weight is absent (tied to token_embd)
};

struct TensorShape {
  std::string_view name;
  uint32_t n_dims = 0;
  uint64_t ne[4] = {1, 1, 1, 1};
};

struct TypeChoice {
  TensorType type;         // the type to store
  bool quantized = false;  // false: the tensor is copied unchanged (norms, 1-D, router, ...)
  TensorType wanted;       // the recipe's choice before any shape fallback
  bool fallback = false;   // `type` differs from `wanted` because the row did not fit
  std::string note;        // e.g. "ncols 172 not divisible by 256 (q4_k) -> q5_0 -> f16"
};

// Whether the ecosystem quantizes this tensor at all: names ending in "weight", 2-D or
// 3-D, not norms, not the MoE router (ffn_gate_inp), not position/token-type embeddings.
bool allows_quantization(const TensorShape& t);

// The type that `t`, currently stored as `current`, gets under `recipe`.
// Errors: an explicit --output-tensor-type/--token-embedding-type whose block size does not
// divide the row (InvalidArgument), or a layer index outside n_layer for per-layer rules.
Result<TypeChoice> choose_type(const Recipe& recipe, const TensorShape& t, TensorType current, const ModelFacts& m);

// The ecosystem's use_more_bits(i_layer, n_layers): the layers that Q4_K_M/Q5_K_M give Q6_K.
bool use_more_bits(int64_t i_layer, int64_t n_layers);

}  // namespace hearth::quantize
