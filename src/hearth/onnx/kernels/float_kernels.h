// Float kernels of the ONNX ops (Conv, ConvTranspose): a blocked single-threaded sgemm whose
// right-hand side is packed in panels (so that im2col can write the panels directly), and a
// direct depthwise 2-D convolution. One table per ISA: the generic one (SSE2, any x86-64),
// avx2 (float_kernels_avx2.cpp) and avx512 (float_kernels_avx512.cpp), each compiled from
// float_kernels_impl.inc with its own flags in its own translation unit; the table is chosen at
// run time by the kernel table's name (which follows hearth's cpu_features and HEARTH_ISA).
// Callers split the work across threads; every function here runs on the calling thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace hearth::onnx::kern {

// The fused epilogue of a conv: y = act(y + bias).
enum class Act { kNone, kRelu, kLeakyRelu, kClip };
struct Epilogue {
  Act act = Act::kNone;
  float alpha = 0.0f;  // leaky_relu slope, or clip min
  float beta = 0.0f;   // clip max
};

inline float apply_act(float v, const Epilogue& e) {
  switch (e.act) {
    case Act::kNone: return v;
    case Act::kRelu: return v > 0.0f ? v : 0.0f;
    case Act::kLeakyRelu: return v >= 0.0f ? v : v * e.alpha;
    case Act::kClip: return v < e.alpha ? e.alpha : (v > e.beta ? e.beta : v);
  }
  return v;
}

// One channel of a depthwise 2-D conv, on an input already padded and split by column phase:
// P[ph][y][j] = padded[y][j * sw + ph] for ph < sw, rows of `pw` floats, planes `plane`
// floats apart. out[oy][ox] = bias + sum_{ky,kx} w[ky][kx] * padded[oy*sh + ky*dh][ox*sw + kx*dw].
struct DepthwiseArgs {
  const float* p;
  int64_t pw, plane;
  const float* w;  // [kh][kw]
  int64_t kh, kw, sh, sw, dh, dw;
  float bias;
  float* out;  // [oh][ow]
  int64_t oh, ow;
  Epilogue ep;
};

struct FloatKernels {
  std::string_view name;
  int64_t nr;  // columns per panel of packed B
  // Packs B[K][N] (row stride ldb) into panels: Bp[N/nr rounded up][K][nr], zero-padded.
  void (*pack_b)(int64_t K, int64_t N, const float* B, int64_t ldb, float* Bp);
  // C[M][N] (row stride ldc) = A[M][K] (row stride lda) * B (packed by pack_b), plus C if accumulate.
  void (*gemm_packed)(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* Bp, float* C,
                      int64_t ldc, bool accumulate);
  // The same product with B[K][N] read in place (rows ldb apart, any N): no packing, for a
  // B that is already a contiguous window of each row (a 1x1 conv's input, a shifted view
  // of a padded input).
  void (*gemm_direct)(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                      int64_t ldc, bool accumulate);
  void (*depthwise)(const DepthwiseArgs& a);
};

// Floats of packed B for K x N with this table's nr.
inline int64_t packed_b_floats(const FloatKernels& k, int64_t K, int64_t N) { return (N + k.nr - 1) / k.nr * k.nr * K; }

// The table for a kernel table's name ("ref" -> generic, "avx2", "avx512" and "avx512bf16" -> avx512;
// unknown -> generic).
const FloatKernels& float_kernels_for(std::string_view isa);
const FloatKernels& float_kernels_generic();
const FloatKernels* float_kernels_avx2();    // null if the CPU lacks AVX2/FMA
const FloatKernels* float_kernels_avx512();  // null if the CPU lacks AVX-512F

// Plain scalar references (the oracles of the tests).
void sgemm_ref(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
               int64_t ldc, bool accumulate);
void depthwise_ref(const DepthwiseArgs& a);

}  // namespace hearth::onnx::kern
