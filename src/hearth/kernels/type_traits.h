// TypeTraits: what differs by tensor type, as one row per type (ggml's type_traits and
// type_traits_cpu): block geometry, the reference to-float / from-float conversions, the
// activation type a weight row is dotted with, and the reference dot product. quant.h's
// functions and the ref kernel table read these rows; each ISA table keeps its own rows of
// kernels (type_kernels.h). A new type (IQ4_NL, ...) is a new row, not a case in many switches.
#pragma once

#include <cstddef>
#include <cstdint>

#include "hearth/core/tensor_type.h"

namespace hearth::kernels {

using ToFloatFn = void (*)(const void* src, float* dst, int64_t n);
using FromFloatFn = void (*)(const float* src, void* dst, int64_t n);
// importance: n weights of the error the scale search minimises (e.g. from an imatrix).
using FromFloatImportanceFn = void (*)(const float* src, void* dst, int64_t n, const float* importance);
// Dot product of a weight row with an activation row of the weight type's vec_dot_type.
using VecDotFn = float (*)(int64_t n, const void* w, const void* act);

struct TypeTraits {
  int64_t block_size;      // elements per block (1 for the float types); 0: hearth has no kernels for it
  size_t type_size;        // bytes per block
  ToFloatFn to_float;      // reference dequantize; null: none
  FromFloatFn from_float;  // reference quantize (bit-identical to ggml's *_ref); null: none
  // The same with importance weights; null: the type ignores importance (uses from_float).
  FromFloatImportanceFn from_float_importance;
  TensorType vec_dot_type;  // activations are converted to this before vec_dot (itself if no dot)
  VecDotFn vec_dot;         // reference dot (ggml's *_generic); null: not a weight type
  // Activation quantization as ggml's x86 builds round it (quantize_row_x86); null: from_float.
  FromFloatFn from_float_x86 = nullptr;
};

// Rows are indexed by the GGUF type id; ids at or past this have no row.
inline constexpr size_t kTypeCount = static_cast<size_t>(TensorType::BF16) + 1;

// The reference row of `type`. A type hearth has no kernels for gets a row of nulls (whose
// vec_dot_type is the type itself, for an id below kTypeCount).
const TypeTraits& type_traits(TensorType type);

}  // namespace hearth::kernels
