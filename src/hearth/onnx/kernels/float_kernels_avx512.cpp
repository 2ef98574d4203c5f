// float_kernels.h: the AVX-512 table (compiled with -mavx512f; chosen only when cpu_features
// has the avx512 table's features).
#define FK_VW 16
#define FK_MR 8
#define FK_NV 2
#define FK_NS avx512
#define FK_NAME "avx512"
#include "hearth/onnx/kernels/float_kernels_impl.inc"
