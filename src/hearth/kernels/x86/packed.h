// Repacked ("interleaved") weight layouts: an ISA may copy a weight matrix at load time into a
// layout its GEMM micro-kernel reads fastest (see x86/pack.cpp). The model owns the copy;
// MatmulArgs::packed points at it. Rows past the last full group of kPackRows stay unpacked and
// use the ordinary dot products. Include this only from the x86 tables' translation units:
// its inline members must not be compiled with one ISA's flags and merged into generic code
// (they are always inlined, so the avx2 and avx512 units share no out-of-line copy either).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hearth/core/tensor_type.h"
#include "hearth/kernels/quant_blocks.h"
#include "hearth/kernels/type_traits.h"

namespace hearth::kernels {

inline constexpr int kPackRows = 16;
inline constexpr int kF16Tile = 16;

// Bytes per packed block of 16 rows (the layouts: x86/pack.cpp), shared by the packer and
// every ISA's tiles.
inline constexpr size_t kQ4_0Bytes = 32 + 256;
inline constexpr size_t kQ8_0Bytes = 32 + 512;
inline constexpr size_t kQ4_KBytes = 64 + 256 + 2048;
inline constexpr size_t kQ6_KBytes = 32 + 256 + 2048 + 1024;
inline constexpr size_t kQ3_KBytes = 32 + 256 + 2048;
inline constexpr size_t kF16Bytes = 32;
inline constexpr size_t kQ4_1Bytes = 128 + 256;
inline constexpr size_t kQ5xBytes = 128 + 256 + 64;
inline constexpr size_t kQ5_KBytes = 64 + 2 * 8 * 16 + 2048 + 512;
inline constexpr size_t kQ2_KBytes = 64 + 2 * 16 * 16 + 1024;
inline constexpr size_t kIQ4_XSBytes = 32 + 8 * 16 + 2048;

// Helpers of both x86 tile files. always_inline: these TUs are compiled with different ISA
// flags, and an out-of-line copy from one must not be picked by the linker for the other.
[[gnu::always_inline]] inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// Decode streams each weight once: ask for the lines kPrefetchAhead bytes ahead of the block
// in use.
inline constexpr size_t kPrefetchAhead = 2048;
[[gnu::always_inline]] inline void prefetch_block(const std::byte* p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + kPrefetchAhead + o, 0, 3);
}

// Converted activations as the packed kernels read them: n_tokens rows of Q8_0, Q8_1 or Q8_K
// blocks, and for Q8_0/Q8_1 each block's scale as a float and the sum of its quants; for
// F16/BF16 weights, rows of f16/bf16 and the same values widened to f32 (f32 below).
struct PackedActivations {
  const std::byte* data = nullptr;
  size_t row_bytes = 0;
  int64_t n_tokens = 0;
  int64_t nb = 0;                 // blocks per row
  const float* scales = nullptr;  // Q8_0/Q8_1: [n_tokens][nb]
  const int32_t* sums = nullptr;  // Q8_0/Q8_1: [n_tokens][nb]
  // d * sum(q) per block: Q8_1's stored s (f16, as the reference's Q4_1/Q5_1 dots use it), or
  // for Q8_0 computed in f32.
  const float* dsums = nullptr;
  // F16 weights: the activations rounded to f16, as f32, interleaved by tiles of kF16Tile
  // tokens: element k of token t at [t / kF16Tile][k][t % kF16Tile], f32_stride = kF16Tile;
  // a single token (decode) is stored plainly, f32_stride = 1.
  const float* f32 = nullptr;
  int64_t f32_stride = kF16Tile;

  // Q8_0 (34-byte blocks, quants at +2) or Q8_1 (36 bytes, quants at +4).
  size_t block_bytes = sizeof(BlockQ8_0);
  size_t qs_offset = 2;
  [[gnu::always_inline]] const int8_t* q8_0(int64_t t, int64_t b) const {
    return reinterpret_cast<const int8_t*>(data + static_cast<size_t>(t) * row_bytes +
                                           static_cast<size_t>(b) * block_bytes + qs_offset);
  }
  [[gnu::always_inline]] const BlockQ8_K* q8_k(int64_t t, int64_t b) const {
    return reinterpret_cast<const BlockQ8_K*>(data + static_cast<size_t>(t) * row_bytes) + b;
  }
  [[gnu::always_inline]] float scale(int64_t t, int64_t b) const { return scales[t * nb + b]; }
  [[gnu::always_inline]] int32_t sum(int64_t t, int64_t b) const { return sums[t * nb + b]; }
  [[gnu::always_inline]] float dsum(int64_t t, int64_t b) const { return dsums[t * nb + b]; }
};

// The x86 packer (x86/pack.cpp, AVX2 code: call it only from tables that require AVX2).
// Bytes of the packed form of the first rows/16*16 rows (0: the type or shape has no layout);
// pack_x86 writes them. A packed block holds packed_block_elems_x86 elements of 16 rows in
// packed_block_bytes_x86 bytes.
size_t packed_bytes_x86(TensorType t, int64_t rows, int64_t cols);
void pack_x86(TensorType t, int64_t rows, int64_t cols, const std::byte* w, size_t row_bytes, std::byte* out);
size_t packed_block_bytes_x86(TensorType t);
int64_t packed_block_elems_x86(TensorType t);

// The tiles (x86/avx512/tiles.cpp, x86/avx2/tiles.cpp): rows [16*g0, 16*g1) for every token of x
// into y[t * y_stride + row].
void avx512_packed_groups(TensorType t, const std::byte* packed, int64_t cols, const PackedActivations& x, int64_t g0,
                          int64_t g1, float* y, int64_t y_stride);
void avx2_packed_groups(TensorType t, const std::byte* packed, int64_t cols, const PackedActivations& x, int64_t g0,
                        int64_t g1, float* y, int64_t y_stride);

}  // namespace hearth::kernels
