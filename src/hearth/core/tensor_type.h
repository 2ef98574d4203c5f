// TensorType: the ggml tensor element types (ids as stored in GGUF) and their block geometry.
// Shared vocabulary of gguf, kernels and model; the block layouts themselves are in kernels/.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace hearth {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  // 4 and 5 (Q4_2, Q4_3) were removed from the format.
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  // 16..19, 21, 22, 29: the other IQ* types, not supported (yet).
  IQ4_NL = 20,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct TensorTypeTraits {
  std::string_view name;  // "q4_0", as printed by the ecosystem's tools
  uint32_t block_size;    // elements per block
  uint32_t type_size;     // bytes per block
};

// Traits of a type id read from a file; nullopt when hearth does not know (or support) it.
std::optional<TensorTypeTraits> tensor_type_traits(uint32_t type_id);
// Traits of a known type (asserts it is known).
TensorTypeTraits traits_of(TensorType type);
inline std::string_view type_name(TensorType t) { return traits_of(t).name; }
// Parses "q4_0", "Q4_0", "f16", ... ; nullopt when unknown.
std::optional<TensorType> parse_tensor_type(std::string_view name);
// Bytes of a row of n elements; nullopt if n is not a multiple of the block size.
std::optional<uint64_t> row_bytes(TensorType type, uint64_t n);

}  // namespace hearth
