// float_kernels.h: the generic table (SSE2 vectors, any x86-64), the table selection and the
// scalar references.
#define FK_VW 4
#define FK_MR 4
#define FK_NV 2
#define FK_NS generic
#define FK_NAME "generic"
#include "hearth/onnx/kernels/float_kernels_impl.inc"

#include "hearth/kernels/cpu_features.h"

namespace hearth::onnx::kern {

namespace avx2 { const FloatKernels& table(); }
namespace avx512 { const FloatKernels& table(); }

const FloatKernels& float_kernels_generic() { return generic::table(); }

const FloatKernels* float_kernels_avx2() {
  return kernels::cpu_features().has_avx2_table() ? &avx2::table() : nullptr;
}

const FloatKernels* float_kernels_avx512() {
  return kernels::cpu_features().has_avx512_table() ? &avx512::table() : nullptr;
}

const FloatKernels& float_kernels_for(std::string_view isa) {
  const bool avx512 = isa.starts_with("avx512");  // avx512bf16 too: the avx512 table plus bf16 dots
  if (avx512) {
    if (const auto* k = float_kernels_avx512()) return *k;
  }
  if (avx512 || isa == "avx2") {
    if (const auto* k = float_kernels_avx2()) return *k;
  }
  return float_kernels_generic();
}

void sgemm_ref(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
               int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double s = accumulate ? C[i * ldc + j] : 0.0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(A[i * lda + k]) * B[k * ldb + j];
      C[i * ldc + j] = static_cast<float>(s);
    }
  }
}

void depthwise_ref(const DepthwiseArgs& a) {
  for (int64_t oy = 0; oy < a.oh; ++oy) {
    for (int64_t ox = 0; ox < a.ow; ++ox) {
      double s = a.bias;
      for (int64_t ky = 0; ky < a.kh; ++ky) {
        for (int64_t kx = 0; kx < a.kw; ++kx) {
          const int64_t y = oy * a.sh + ky * a.dh;
          const int64_t x = ox * a.sw + kx * a.dw;  // column of the padded row
          s += static_cast<double>(a.w[ky * a.kw + kx]) * a.p[(x % a.sw) * a.plane + y * a.pw + x / a.sw];
        }
      }
      a.out[oy * a.ow + ox] = apply_act(static_cast<float>(s), a.ep);
    }
  }
}

}  // namespace hearth::onnx::kern
