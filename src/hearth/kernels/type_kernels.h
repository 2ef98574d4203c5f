// TypeKernels: one kernel table's per-type rows, indexed by the GGUF type id (the ISA half of
// ggml's type_traits_cpu; the reference half is type_traits.h). An ISA table fills the rows it
// has kernels for; adding a type or an ISA (neon) is filling rows. Include only from kernel
// table translation units.
//
// The struct is trivial on purpose (no constructors, no member functions): it is built in
// translation units compiled with different ISA flags, and nothing of it may be emitted out of
// line with one ISA's instructions and picked by the linker for another.
#pragma once

#include <cstddef>
#include <cstdint>

#include "hearth/core/tensor_type.h"
#include "hearth/kernels/type_traits.h"

namespace hearth::kernels {

// One weight row against four activation rows: out[j] = dot(w, x[j]). Lets a kernel unpack
// each weight block once per four tokens (prefill).
using VecDot4Fn = void (*)(int64_t n, const void* w, const void* const x[4], float out[4]);

struct TypeKernels {
  // Activation converter, by activation type (a weight type's vec_dot_type); null for F32
  // (copied as is).
  FromFloatFn from_float[kTypeCount];
  // Dot of a weight row with a converted activation row, by weight type; null: none.
  VecDotFn vec_dot[kTypeCount];
  // Four activation rows at once, by weight type; null: vec_dot per token.
  VecDot4Fn vec_dot4[kTypeCount];
};

// The row entry for `type`, null for an id past the table. Always inlined: see above.
template <class Fn>
[[gnu::always_inline]] inline Fn type_row(Fn const (&row)[kTypeCount], TensorType type) {
  const auto i = static_cast<size_t>(type);
  return i < kTypeCount ? row[i] : nullptr;
}
template <class Fn>
[[gnu::always_inline]] inline void set_row(Fn (&row)[kTypeCount], TensorType type, Fn fn) {
  row[static_cast<size_t>(type)] = fn;
}

// The avx2 table's rows (x86/avx2/matmul.cpp; AVX2 code: call only where the CPU runs it). The
// avx512 table starts from them and replaces the rows it has faster kernels for.
const TypeKernels& avx2_type_kernels();

}  // namespace hearth::kernels
