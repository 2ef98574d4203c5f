// KV cache element types: F32, F16 and ggml's Q8_0 / Q4_0 blocks (32 elements, an f16 scale),
// with separate types for K and V (llama.cpp's --cache-type-k / --cache-type-v). A quantized
// cache row (n_head_kv * head_dim elements) must be a whole number of blocks, so element e of a
// flat cache lives in block e / 32 whatever the row length; attention kernels address caches by
// element index and decode blocks as they read them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "hearth/core/tensor_type.h"

namespace hearth::kernels {

enum class KvType { kF32, kF16, kQ8_0, kQ4_0 };

// Elements per block of a quantized KV type, and bytes per block (ggml's block_q8_0 / block_q4_0).
inline constexpr int64_t kKvBlock = 32;
inline constexpr size_t kKvQ8_0BlockBytes = 34;
inline constexpr size_t kKvQ4_0BlockBytes = 18;

// The K and V types of a cache. One KvType converts to "both" (--kv-type).
struct KvTypes {
  KvType k = KvType::kF16;
  KvType v = KvType::kF16;
  constexpr KvTypes() = default;
  constexpr KvTypes(KvType both) : k(both), v(both) {}  // NOLINT: implicit on purpose (one type for K and V)
  constexpr KvTypes(KvType k_type, KvType v_type) : k(k_type), v(v_type) {}
  friend constexpr bool operator==(const KvTypes&, const KvTypes&) = default;
};

// The tensor type of the same layout (F32, F16, Q8_0, Q4_0).
TensorType kv_tensor_type(KvType t);
// "f32", "f16", "q8_0", "q4_0" (llama.cpp's spellings); parse_kv_type is its inverse.
std::string_view kv_type_name(KvType t);
std::optional<KvType> parse_kv_type_name(std::string_view name);
bool kv_type_quantized(KvType t);
// Bytes of n elements (a quantized n is rounded up to whole blocks; callers check that rows
// are a multiple of kKvBlock before they allocate).
size_t kv_row_bytes(KvType t, int64_t n);
// Element idx of a cache of type t at base (scalar; the reference path and soft-capped attention).
float kv_value(const void* base, KvType t, int64_t idx);

}  // namespace hearth::kernels
