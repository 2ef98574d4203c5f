#include "hearth/core/tensor_type.h"

#include <array>
#include <cassert>
#include <cctype>
#include <string>

namespace hearth {
namespace {

struct Entry {
  TensorType type;
  TensorTypeTraits traits;
};

// Block sizes and byte sizes as in ggml's type table (QK_K = 256, K_SCALE_SIZE = 12).
constexpr std::array<Entry, 22> kTypes = {{
    {TensorType::F32, {"f32", 1, 4}},
    {TensorType::F16, {"f16", 1, 2}},
    {TensorType::Q4_0, {"q4_0", 32, 2 + 16}},
    {TensorType::Q4_1, {"q4_1", 32, 2 + 2 + 16}},
    {TensorType::Q5_0, {"q5_0", 32, 2 + 4 + 16}},
    {TensorType::Q5_1, {"q5_1", 32, 2 + 2 + 4 + 16}},
    {TensorType::Q8_0, {"q8_0", 32, 2 + 32}},
    {TensorType::Q8_1, {"q8_1", 32, 2 + 2 + 32}},
    {TensorType::Q2_K, {"q2_k", 256, 16 + 64 + 2 + 2}},
    {TensorType::Q3_K, {"q3_k", 256, 32 + 64 + 12 + 2}},
    {TensorType::Q4_K, {"q4_k", 256, 2 + 2 + 12 + 128}},
    {TensorType::Q5_K, {"q5_k", 256, 2 + 2 + 12 + 32 + 128}},
    {TensorType::Q6_K, {"q6_k", 256, 128 + 64 + 16 + 2}},
    {TensorType::Q8_K, {"q8_k", 256, 4 + 256 + 32}},
    {TensorType::IQ4_NL, {"iq4_nl", 32, 2 + 16}},
    {TensorType::IQ4_XS, {"iq4_xs", 256, 2 + 2 + 4 + 128}},
    {TensorType::I8, {"i8", 1, 1}},
    {TensorType::I16, {"i16", 1, 2}},
    {TensorType::I32, {"i32", 1, 4}},
    {TensorType::I64, {"i64", 1, 8}},
    {TensorType::F64, {"f64", 1, 8}},
    {TensorType::BF16, {"bf16", 1, 2}},
}};

}  // namespace

std::optional<TensorTypeTraits> tensor_type_traits(uint32_t type_id) {
  for (const auto& e : kTypes) {
    if (static_cast<uint32_t>(e.type) == type_id) return e.traits;
  }
  return std::nullopt;
}

TensorTypeTraits traits_of(TensorType type) {
  auto t = tensor_type_traits(static_cast<uint32_t>(type));
  assert(t.has_value());
  return *t;
}

std::optional<TensorType> parse_tensor_type(std::string_view name) {
  std::string lower;
  for (char c : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (const auto& e : kTypes) {
    if (e.traits.name == lower) return e.type;
  }
  return std::nullopt;
}

std::optional<uint64_t> row_bytes(TensorType type, uint64_t n) {
  auto t = traits_of(type);
  if (n % t.block_size != 0) return std::nullopt;
  uint64_t blocks = n / t.block_size;
  uint64_t bytes;
  if (__builtin_mul_overflow(blocks, static_cast<uint64_t>(t.type_size), &bytes)) return std::nullopt;
  return bytes;
}

}  // namespace hearth
