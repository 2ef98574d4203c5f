// float_kernels.h: the AVX2 + FMA table (compiled with -mavx2 -mfma; chosen only when
// cpu_features has them).
#define FK_VW 8
#define FK_MR 6
#define FK_NV 2
#define FK_NS avx2
#define FK_NAME "avx2"
#include "hearth/onnx/kernels/float_kernels_impl.inc"
