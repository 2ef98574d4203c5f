// KernelTable: one table of function pointers per ISA (ref, avx2, avx512, ...), selected once
// (dispatch.cpp). The forward pass's matmuls, attention and element-wise ops go through it, so
// faster kernels plug in without touching model code. Not everything does yet: the forward pass
// calls quant.h's dequantize_row (token embedding rows) and fp16.h's fp32_to_fp16 (the f16 KV
// cache store) directly, at their reference speed on every ISA.
// A slot left null in an ISA table falls back to the ref kernel at selection time. What differs
// by tensor type inside a table is a row of its TypeKernels (type_kernels.h), not a switch.
// Layout: ref/ (the oracle), x86/ (shared by avx2 and avx512), x86/avx2/, x86/avx512/,
// x86/avx512bf16/ (avx512 plus F16/BF16 weights on bf16 dot products),
// arm/neon/ (the neon, neon-dotprod and neon-i8mm tables).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "hearth/core/tensor_type.h"
#include "hearth/core/thread_pool.h"
#include "hearth/kernels/kv_type.h"

namespace hearth::kernels {

// y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tokens, r < rows. W is row-major, rows of `cols`
// elements of type wtype, w_row_bytes apart.
struct MatmulArgs {
  TensorType wtype;
  const std::byte* w;
  size_t w_row_bytes;
  int64_t rows;    // output features
  int64_t cols;    // input features (row length)
  const float* x;  // [n_tokens][x_stride]
  int64_t x_stride;
  int64_t n_tokens;
  float* y;  // [n_tokens][y_stride]
  int64_t y_stride;
  std::byte* scratch;  // at least matmul_scratch_bytes(table, wtype, cols, n_tokens) bytes
  // This table's packed copy of W (KernelTable::pack), or null to read W as stored.
  const std::byte* packed = nullptr;
};

enum class RopeMode { kNorm, kNeox };  // adjacent pairs (llama) vs split halves (neox)

// Causal attention for n_tokens queries of one sequence against its KV cache (or a window of
// it, given as a ring: see `ring`).
struct AttentionArgs {
  const float* q;  // [n_tokens][q_stride], heads of head_dim contiguous
  int64_t q_stride;
  const void* k;  // cache [n_ctx][kv_stride] of k_type
  const void* v;  // cache [n_ctx][kv_stride] of v_type
  int64_t kv_stride;  // elements per cache row (n_head_kv * head_dim); quantized: a multiple of kKvBlock
  KvType k_type;
  KvType v_type;
  const int32_t* pos;  // query positions; query t sees cache rows 0..pos[t]
  int64_t n_tokens;
  int n_head;
  int n_head_kv;
  int head_dim;
  float scale;
  float* out;  // [n_tokens][out_stride]
  int64_t out_stride;
  float* scratch;  // attention_scratch_floats(n_kv, pool threads) floats (all threads)
  // A ring of `ring` rows (a sliding-window layer's cache): cache row j of this call is stored
  // at row (ring_first + j) % ring of k and v. 0: rows 0..pos are contiguous from k and v.
  int64_t ring = 0;
  int64_t ring_first = 0;
};

size_t attention_scratch_floats(int64_t n_kv, int n_threads);

struct KernelTable {
  std::string_view name;
  void (*matmul)(const MatmulArgs& a, ThreadPool& pool);
  void (*attention)(const AttentionArgs& a, ThreadPool& pool);
  // y = x / rms(x) * w   (w may be null)
  void (*rms_norm)(float* y, const float* x, const float* w, int64_t n, float eps);
  // y = (x - mean) / sqrt(var + eps) * w + b   (w, b may be null)
  void (*layer_norm)(float* y, const float* x, const float* w, const float* b, int64_t n, float eps);
  // Rotates the first n_rot dims of each of n_head heads in x using cos_sin[n_rot] (cos, sin pairs).
  void (*rope)(float* x, int n_head, int head_dim, int n_rot, const float* cos_sin, RopeMode mode);
  void (*softmax)(float* x, int64_t n);
  // gate = silu(gate) * up
  void (*swiglu)(float* gate, const float* up, int64_t n);
  // y += x
  void (*add)(float* y, const float* x, int64_t n);
  // Optional weight repacking (null: this table reads weights as stored). packed_bytes is 0
  // for a type or shape the table does not pack; pack writes packed_bytes(...) bytes, which
  // matmul then reads through MatmulArgs::packed.
  size_t (*packed_bytes)(TensorType t, int64_t rows, int64_t cols) = nullptr;
  void (*pack)(TensorType t, int64_t rows, int64_t cols, const std::byte* w, size_t row_bytes,
               std::byte* out) = nullptr;
  // Sums `bytes` bytes at p (64-byte aligned, a multiple of 64) as 64-bit words with the ISA's
  // widest loads: the read-bandwidth probe, so that decode's GB/s is compared with what this
  // table's own loads can stream.
  uint64_t (*read_sum)(const std::byte* p, size_t bytes) = nullptr;
  // Bytes of MatmulArgs::scratch this table's matmul needs: the converted activations, plus
  // whatever its own kernels keep beside them.
  size_t (*scratch_bytes)(TensorType wtype, int64_t cols, int64_t n_tokens) = nullptr;
};

// Bytes of scratch `kt`'s matmul needs for n_tokens rows of `cols` against weights of wtype.
size_t matmul_scratch_bytes(const KernelTable& kt, TensorType wtype, int64_t cols, int64_t n_tokens);

// The scalar reference table: always available, the oracle for every other table.
const KernelTable& ref_kernels();
// The table selected for this CPU (or forced by HEARTH_ISA=ref|avx2|avx512|avx512bf16 on x86,
// HEARTH_ISA=ref|neon|neon-dotprod|neon-i8mm on AArch64).
const KernelTable& active_kernels();
// Table by name if the CPU supports it; nullptr otherwise.
const KernelTable* kernels_by_name(std::string_view name);
// Every table this CPU can run, ref first, best last.
std::vector<const KernelTable*> available_kernels();

}  // namespace hearth::kernels
