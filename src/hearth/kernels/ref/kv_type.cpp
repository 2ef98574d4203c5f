// KV cache element types (kv_type.h): names, row sizes and the scalar element decode.
#include "hearth/kernels/kv_type.h"

#include "hearth/kernels/fp16.h"
#include "hearth/kernels/quant_blocks.h"

namespace hearth::kernels {

static_assert(sizeof(BlockQ8_0) == kKvQ8_0BlockBytes && kQK8_0 == kKvBlock);
static_assert(sizeof(BlockQ4_0) == kKvQ4_0BlockBytes && kQK4_0 == kKvBlock);

TensorType kv_tensor_type(KvType t) {
  switch (t) {
    case KvType::kF32: return TensorType::F32;
    case KvType::kF16: return TensorType::F16;
    case KvType::kQ8_0: return TensorType::Q8_0;
    case KvType::kQ4_0: return TensorType::Q4_0;
  }
  return TensorType::F32;
}

std::string_view kv_type_name(KvType t) {
  switch (t) {
    case KvType::kF32: return "f32";
    case KvType::kF16: return "f16";
    case KvType::kQ8_0: return "q8_0";
    case KvType::kQ4_0: return "q4_0";
  }
  return "?";
}

std::optional<KvType> parse_kv_type_name(std::string_view name) {
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0, KvType::kQ4_0}) {
    if (name == kv_type_name(t)) return t;
  }
  return std::nullopt;
}

bool kv_type_quantized(KvType t) { return t == KvType::kQ8_0 || t == KvType::kQ4_0; }

size_t kv_row_bytes(KvType t, int64_t n) {
  const auto un = static_cast<size_t>(n);
  const size_t blocks = (un + kKvBlock - 1) / kKvBlock;
  switch (t) {
    case KvType::kF32: return un * 4;
    case KvType::kF16: return un * 2;
    case KvType::kQ8_0: return blocks * kKvQ8_0BlockBytes;
    case KvType::kQ4_0: return blocks * kKvQ4_0BlockBytes;
  }
  return 0;
}

float kv_value(const void* base, KvType t, int64_t idx) {
  switch (t) {
    case KvType::kF32: return static_cast<const float*>(base)[idx];
    case KvType::kF16: return fp16_to_fp32(static_cast<const uint16_t*>(base)[idx]);
    case KvType::kQ8_0: {
      const BlockQ8_0& b = static_cast<const BlockQ8_0*>(base)[idx / kKvBlock];
      return fp16_to_fp32(b.d) * static_cast<float>(b.qs[idx % kKvBlock]);
    }
    case KvType::kQ4_0: {
      // qs[j] holds element j (low nibble) and j + 16 (high nibble); x = d * (q - 8).
      const BlockQ4_0& b = static_cast<const BlockQ4_0*>(base)[idx / kKvBlock];
      const int64_t j = idx % kKvBlock;
      const int q = j < kKvBlock / 2 ? (b.qs[j] & 0x0F) : (b.qs[j - kKvBlock / 2] >> 4);
      return fp16_to_fp32(b.d) * static_cast<float>(q - 8);
    }
  }
  return 0.0f;
}

}  // namespace hearth::kernels
