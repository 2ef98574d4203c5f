// ONNX MatMul (numpy matmul: 1-D operands promoted and the promoted dim dropped, batch dims
// broadcast) and Gemm (Y = alpha * A' * B' + beta * C, A' / B' optionally transposed, C
// unidirectionally broadcast to [M, N]), https://onnx.ai/onnx/operators/onnx__MatMul.html and
// onnx__Gemm.html. float32 runs on gemm_f32 (matmul.h); double (and MatMul's integer types) on
// a plain loop. The GEMM: tiles of MR rows x NR = 2 vectors of columns, accumulated in registers over
// k blocks of kKc (the B strip of kKc x NR floats stays in L1/L2 while a block of rows passes).
#include "hearth/onnx/ops/matmul.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <vector>

#include "hearth/core/checked_math.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/onnx/op_registry.h"

namespace hearth::onnx {
namespace {

constexpr int64_t kKc = 256;

typedef float v4 __attribute__((vector_size(16)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

// Rows [m0, m0 + mv) x columns [n0, n0 + nv) of Y over k in [k0, k0 + kn), with mv <= MR and
// nv <= NR; b is B(k0, n0) with row stride ldb. Rows past mv repeat the last row (not stored).
// always_inline: compiled inside each variant below with that variant's target ISA.
template <typename V, int MR>
[[gnu::always_inline]] inline void tile(const GemmF32& g, const float* b, int64_t ldb, int64_t m0, int mv,
                                        int64_t n0, int nv, int64_t k0, int64_t kn, bool accumulate) {
  constexpr int W = sizeof(V) / sizeof(float);
  constexpr int NR = 2 * W;
  V acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = V{};
  const float* ar[MR];
  for (int i = 0; i < MR; ++i) ar[i] = g.a + (m0 + (i < mv ? i : mv - 1)) * g.a_row + k0 * g.a_col;
  const int64_t ac = g.a_col;
  for (int64_t p = 0; p < kn; ++p) {
    V b0, b1;
    __builtin_memcpy(&b0, b + p * ldb, sizeof(V));
    __builtin_memcpy(&b1, b + p * ldb + W, sizeof(V));
    for (int i = 0; i < MR; ++i) {
      const float x = ar[i][p * ac];
      acc[i][0] += x * b0;
      acc[i][1] += x * b1;
    }
  }
  for (int i = 0; i < mv; ++i) {
    float* y = g.y + (m0 + i) * g.ldy + n0;
    float t[NR];
    __builtin_memcpy(t, &acc[i][0], sizeof(V));
    __builtin_memcpy(t + W, &acc[i][1], sizeof(V));
    if (accumulate) {
      for (int j = 0; j < nv; ++j) y[j] += t[j];
    } else {
      for (int j = 0; j < nv; ++j) y[j] = t[j];
    }
  }
}

// Work items [i0, i1): item = strip * row_blocks + row block. A strip is NR columns (the last
// one may be partial: its B columns are copied into a zero-padded block on the stack).
template <typename V, int MR>
[[gnu::always_inline]] inline void run_items(const GemmF32& g, int64_t row_block, int64_t i0, int64_t i1) {
  constexpr int W = sizeof(V) / sizeof(float);
  constexpr int NR = 2 * W;
  const int64_t row_blocks = (g.m + row_block - 1) / row_block;
  alignas(64) float pad[kKc * NR];
  for (int64_t item = i0; item < i1; ++item) {
    const int64_t n0 = item / row_blocks * NR;
    const int64_t r0 = item % row_blocks * row_block;
    const int64_t r1 = std::min(g.m, r0 + row_block);
    const int nv = static_cast<int>(std::min<int64_t>(NR, g.n - n0));
    for (int64_t k0 = 0; k0 < g.k; k0 += kKc) {
      const int64_t kn = std::min(kKc, g.k - k0);
      const float* b = g.b + k0 * g.ldb + n0;
      int64_t ldb = g.ldb;
      if (nv < NR) {
        for (int64_t p = 0; p < kn; ++p) {
          for (int j = 0; j < NR; ++j) pad[p * NR + j] = j < nv ? b[p * g.ldb + j] : 0.0f;
        }
        b = pad;
        ldb = NR;
      }
      int64_t m = r0;
      for (; m + MR <= r1; m += MR) tile<V, MR>(g, b, ldb, m, MR, n0, nv, k0, kn, k0 > 0);
      // The last rows: fours, then single rows (a full tile would multiply its repeated rows too,
      // 8x the work of a matrix-vector product).
      for (; m + 4 <= r1; m += 4) tile<V, 4>(g, b, ldb, m, 4, n0, nv, k0, kn, k0 > 0);
      for (; m < r1; ++m) tile<V, 1>(g, b, ldb, m, 1, n0, nv, k0, kn, k0 > 0);
    }
  }
}

// At most kFewRows rows (a matrix-vector product, a batch of one): the strips above would read
// B a strip at a time down its k rows, ldb apart, which the prefetchers do not follow across
// pages. Here k is the outer loop and each item streams a contiguous kFewCols piece (4 KiB) of
// every B row once, the output rows staying in L1. Each output is still summed in k order by
// one thread, so the result does not depend on the thread count.
constexpr int64_t kFewRows = 4;
constexpr int64_t kFewCols = 1024;

template <typename V>
[[gnu::always_inline]] inline void few_rows(const GemmF32& g, int64_t j0, int64_t j1) {
  constexpr int W = sizeof(V) / sizeof(float);
  const int64_t m = g.m;
  for (int64_t i = 0; i < m; ++i) std::fill(g.y + i * g.ldy + j0, g.y + i * g.ldy + j1, 0.0f);
  for (int64_t p = 0; p < g.k; ++p) {
    const float* b = g.b + p * g.ldb;
    float a[kFewRows];
    for (int64_t i = 0; i < m; ++i) a[i] = g.a[i * g.a_row + p * g.a_col];
    int64_t j = j0;
    for (; j + W <= j1; j += W) {
      V bv;
      __builtin_memcpy(&bv, b + j, sizeof(V));
      for (int64_t i = 0; i < m; ++i) {
        V yv;
        float* y = g.y + i * g.ldy + j;
        __builtin_memcpy(&yv, y, sizeof(V));
        yv += a[i] * bv;
        __builtin_memcpy(y, &yv, sizeof(V));
      }
    }
    for (; j < j1; ++j) {
      for (int64_t i = 0; i < m; ++i) g.y[i * g.ldy + j] += a[i] * b[j];
    }
  }
}

struct Variant {
  int nr;
  int64_t row_block;
  void (*items)(const GemmF32& g, int64_t row_block, int64_t i0, int64_t i1);
  void (*few)(const GemmF32& g, int64_t j0, int64_t j1);
};

void items_generic(const GemmF32& g, int64_t rb, int64_t i0, int64_t i1) { run_items<v4, 4>(g, rb, i0, i1); }
[[gnu::target("avx2,fma")]] void items_avx2(const GemmF32& g, int64_t rb, int64_t i0, int64_t i1) {
  run_items<v8, 6>(g, rb, i0, i1);
}
[[gnu::target("avx512f")]] void items_avx512(const GemmF32& g, int64_t rb, int64_t i0, int64_t i1) {
  run_items<v16, 8>(g, rb, i0, i1);
}
void few_generic(const GemmF32& g, int64_t j0, int64_t j1) { few_rows<v4>(g, j0, j1); }
[[gnu::target("avx2,fma")]] void few_avx2(const GemmF32& g, int64_t j0, int64_t j1) { few_rows<v8>(g, j0, j1); }
[[gnu::target("avx512f")]] void few_avx512(const GemmF32& g, int64_t j0, int64_t j1) { few_rows<v16>(g, j0, j1); }

// The variant of the kernel table's ISA (the table was chosen from CPUID, or forced by HEARTH_ISA;
// "avx512bf16" is the avx512 table plus bf16 dots, so its float code is avx512's).
Variant variant_for(const kernels::KernelTable& kt) {
  if (std::string_view(kt.name).starts_with("avx512")) return {32, 64, &items_avx512, &few_avx512};
  if (kt.name == "avx2") return {16, 48, &items_avx2, &few_avx2};
  return {8, 32, &items_generic, &few_generic};
}

int64_t item_count(const GemmF32& g, const Variant& v) {
  return (g.n + v.nr - 1) / v.nr * ((g.m + v.row_block - 1) / v.row_block);
}

void zero_output(const GemmF32& g) {
  for (int64_t i = 0; i < g.m; ++i) std::fill_n(g.y + i * g.ldy, g.n, 0.0f);
}

}  // namespace

void gemm_f32_ref(const GemmF32& g) {
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < g.n; ++j) {
      float s = 0.0f;
      for (int64_t p = 0; p < g.k; ++p) s += g.a[i * g.a_row + p * g.a_col] * g.b[p * g.ldb + j];
      g.y[i * g.ldy + j] = s;
    }
  }
}

void gemm_f32_serial(const GemmF32& g, const kernels::KernelTable& kt) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0) return zero_output(g);
  const Variant v = variant_for(kt);
  if (g.m <= kFewRows) return v.few(g, 0, g.n);
  v.items(g, v.row_block, 0, item_count(g, v));
}

void gemm_f32(const GemmF32& g, ThreadPool& pool, const kernels::KernelTable& kt) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0) return zero_output(g);
  const Variant v = variant_for(kt);
  // Below ~64k multiply-adds the threads' wake-up costs more than it saves.
  const bool serial = g.m * g.n * g.k < (int64_t{1} << 16);
  if (g.m <= kFewRows) {
    if (serial) return v.few(g, 0, g.n);
    return pool.parallel_for((g.n + kFewCols - 1) / kFewCols, 1, [&](int64_t c0, int64_t c1) {
      v.few(g, c0 * kFewCols, std::min(g.n, c1 * kFewCols));
    });
  }
  const int64_t items = item_count(g, v);
  if (serial) return v.items(g, v.row_block, 0, items);
  pool.parallel_for(items, 1, [&](int64_t i0, int64_t i1) { v.items(g, v.row_block, i0, i1); });
}

namespace {

Status invalid(const Node& node, std::string_view what) {
  return make_error(ErrorCode::kInvalidArgument, "{}: {}", node.describe(), what);
}

// Y[M][N] = A · B for the non-float types, A(i, p) = a[i * a_row + p * a_col].
template <typename T>
void matmul_plain(const T* a, int64_t a_row, int64_t a_col, const T* b, int64_t ldb, T* y, int64_t m, int64_t n,
                  int64_t k) {
  // Integers wrap (as two's complement) instead of overflowing: hostile inputs are not UB.
  using Acc = typename std::conditional_t<std::is_integral_v<T>, std::make_unsigned<T>, std::type_identity<T>>::type;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      Acc s{};
      for (int64_t p = 0; p < k; ++p) s += static_cast<Acc>(a[i * a_row + p * a_col]) * static_cast<Acc>(b[p * ldb + j]);
      y[i * n + j] = static_cast<T>(s);
    }
  }
}

template <typename T>
void matmul_batches(OpContext& ctx, const Tensor& A, const Tensor& B, Tensor& Y, const std::vector<int64_t>& a_off,
                    const std::vector<int64_t>& b_off, int64_t m, int64_t n, int64_t k) {
  const int64_t nb = static_cast<int64_t>(a_off.size());
  if constexpr (std::is_same_v<T, float>) {
    const float* a = A.data<float>();
    const float* b = B.data<float>();
    float* y = Y.data<float>();
    auto one = [&](int64_t i) {
      GemmF32 g;
      g.m = m, g.n = n, g.k = k;
      g.a = a + a_off[static_cast<size_t>(i)], g.a_row = k, g.a_col = 1;
      g.b = b + b_off[static_cast<size_t>(i)], g.ldb = n;
      g.y = y + i * m * n, g.ldy = n;
      return g;
    };
    // Many small products (attention heads): one product per thread; else each one spread.
    if (nb >= ctx.pool.size() && m * n * k < (int64_t{1} << 18)) {
      ctx.pool.parallel_for(nb, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) gemm_f32_serial(one(i), ctx.kt);
      });
    } else {
      for (int64_t i = 0; i < nb; ++i) gemm_f32(one(i), ctx.pool, ctx.kt);
    }
  } else {
    for (int64_t i = 0; i < nb; ++i) {
      matmul_plain<T>(A.data<T>() + a_off[static_cast<size_t>(i)], k, 1, B.data<T>() + b_off[static_cast<size_t>(i)], n,
                      Y.data<T>() + i * m * n, m, n, k);
    }
  }
}

template <typename F>
Status dispatch_dtype(const Node& node, DType dt, F&& f) {
  switch (dt) {
    case DType::kFloat: f(float{}); return ok_status();
    case DType::kDouble: f(double{}); return ok_status();
    case DType::kInt32: f(int32_t{}); return ok_status();
    case DType::kInt64: f(int64_t{}); return ok_status();
    case DType::kUint32: f(uint32_t{}); return ok_status();
    case DType::kUint64: f(uint64_t{}); return ok_status();
    default:
      return make_error(ErrorCode::kUnimplemented, "{}: element type {} is not supported (float32, double, int32, int64, uint32, uint64)",
                        node.describe(), dtype_name(dt));
  }
}

Status matmul_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 2));
  const Tensor& A = *in[0];
  const Tensor& B = *in[1];
  if (A.dtype() != B.dtype()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: A is {} but B is {}", node.describe(), dtype_name(A.dtype()),
                      dtype_name(B.dtype()));
  }
  if (A.rank() == 0 || B.rank() == 0) return invalid(node, "MatMul operands must have rank >= 1 (scalars are not allowed)");
  Shape as = A.shape(), bs = B.shape();
  const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  if (a_vec) as.insert(as.begin(), 1);
  if (b_vec) bs.push_back(1);
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  if (bs[bs.size() - 2] != k) {
    return make_error(ErrorCode::kInvalidArgument, "{}: inner dimensions differ: A {} and B {}", node.describe(),
                      shape_string(A.shape()), shape_string(B.shape()));
  }
  // Batch dims, numpy-broadcast (aligned on the right).
  const size_t ra = as.size() - 2, rb = bs.size() - 2, r = std::max(ra, rb);
  Shape batch(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i + ra >= r ? as[i + ra - r] : 1;
    const int64_t db = i + rb >= r ? bs[i + rb - r] : 1;
    if (da != db && da != 1 && db != 1) {
      return make_error(ErrorCode::kInvalidArgument, "{}: batch dimensions of A {} and B {} do not broadcast", node.describe(),
                        shape_string(A.shape()), shape_string(B.shape()));
    }
    batch[i] = da == 1 ? db : da;
  }
  Shape ys = batch;
  if (!a_vec) ys.push_back(m);
  if (!b_vec) ys.push_back(n);
  HEARTH_ASSIGN_OR_RETURN(Tensor Y, ctx.alloc(A.dtype(), ys));
  HEARTH_ASSIGN_OR_RETURN(const int64_t n_batch, checked_numel(batch));
  if (Y.numel() == 0 || k == 0) {  // empty, or a sum over nothing: zeros (alloc zero-fills)
    out[0] = std::move(Y);
    return ok_status();
  }
  // Element offset of each batch's A and B matrix (a broadcast dim has stride 0).
  std::vector<int64_t> a_off(static_cast<size_t>(n_batch)), b_off(static_cast<size_t>(n_batch));
  std::vector<int64_t> sa(r, 0), sb(r, 0);
  int64_t st_a = m * k, st_b = k * n;
  for (size_t i = r; i-- > 0;) {
    if (i + ra >= r) {
      const int64_t d = as[i + ra - r];
      sa[i] = d == 1 ? 0 : st_a;
      st_a *= d;
    }
    if (i + rb >= r) {
      const int64_t d = bs[i + rb - r];
      sb[i] = d == 1 ? 0 : st_b;
      st_b *= d;
    }
  }
  std::vector<int64_t> idx(r, 0);
  for (int64_t bi = 0; bi < n_batch; ++bi) {
    int64_t oa = 0, ob = 0;
    for (size_t i = 0; i < r; ++i) oa += idx[i] * sa[i], ob += idx[i] * sb[i];
    a_off[static_cast<size_t>(bi)] = oa;
    b_off[static_cast<size_t>(bi)] = ob;
    for (size_t i = r; i-- > 0;) {
      if (++idx[i] < batch[i]) break;
      idx[i] = 0;
    }
  }
  HEARTH_TRY(dispatch_dtype(node, A.dtype(), [&](auto tag) {
    matmul_batches<decltype(tag)>(ctx, A, B, Y, a_off, b_off, m, n, k);
  }));
  out[0] = std::move(Y);
  return ok_status();
}

// Y = alpha * A' B' + beta * C for float or double.
// Y = alpha * Y + beta * C, C null or broadcast to [M, N] as [cm, cn].
template <typename T>
void gemm_epilogue(const Tensor* C, int64_t cm, int64_t cn, float alpha, float beta, Tensor& Y) {
  const int64_t m = Y.dim(0), n = Y.dim(1);
  T* y = Y.data<T>();
  if (alpha == 1.0f && C == nullptr) return;
  const T* c = C ? C->data<T>() : nullptr;
  const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T v = y[i * n + j];
      if (alpha != 1.0f) v = al * v;
      if (c) v += be * c[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
      y[i * n + j] = v;
    }
  }
}

// C is null, or checked to broadcast to [M, N] as [cm, cn].
template <typename T>
void gemm_typed(OpContext& ctx, const Tensor& A, const Tensor& B, const Tensor* C, int64_t cm, int64_t cn, bool ta, bool tb,
                float alpha, float beta, Tensor& Y) {
  const int64_t m = Y.dim(0), n = Y.dim(1);
  const int64_t k = ta ? A.dim(0) : A.dim(1);
  const T* a = A.data<T>();
  const int64_t a_row = ta ? 1 : k, a_col = ta ? m : 1;
  T* y = Y.data<T>();
  if constexpr (std::is_same_v<T, float>) {
    // A few rows against B as [N][K] (a Linear layer's weight, transB = 1): the kernel table's
    // matmul reads those rows as stored, one streaming dot product per output (measured ~3x the
    // column-strip GEMM at M = 1, whose strided k rows defeat the prefetcher).
    if (tb && !ta && m <= 4) {
      std::vector<std::byte> scratch(kernels::matmul_scratch_bytes(ctx.kt, TensorType::F32, k, m) + 64);
      kernels::MatmulArgs ma{TensorType::F32, reinterpret_cast<const std::byte*>(B.data<float>()), static_cast<size_t>(k) * sizeof(float),
                             n, k, a, k, m, y, n, scratch.data()};
      ctx.kt.matmul(ma, ctx.pool);
      return gemm_epilogue<T>(C, cm, cn, alpha, beta, Y);
    }
  }
  // B' row-major [K][N]: B itself, or B transposed once here (O(K N) beside the product's O(M K N)).
  const T* b = B.data<T>();
  std::vector<T> bt;
  if (tb) {
    // In 32 x 32 blocks, so that neither side is walked a whole column at a time.
    bt.resize(static_cast<size_t>(k * n));
    constexpr int64_t kBlock = 32;
    for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
      for (int64_t p0 = 0; p0 < k; p0 += kBlock) {
        const int64_t j1 = std::min(n, j0 + kBlock), p1 = std::min(k, p0 + kBlock);
        for (int64_t j = j0; j < j1; ++j) {
          for (int64_t p = p0; p < p1; ++p) bt[static_cast<size_t>(p * n + j)] = b[j * k + p];
        }
      }
    }
    b = bt.data();
  }
  if constexpr (std::is_same_v<T, float>) {
    GemmF32 g;
    g.m = m, g.n = n, g.k = k;
    g.a = a, g.a_row = a_row, g.a_col = a_col;
    g.b = b, g.ldb = n;
    g.y = y, g.ldy = n;
    gemm_f32(g, ctx.pool, ctx.kt);
  } else {
    matmul_plain<T>(a, a_row, a_col, b, n, y, m, n, k);
  }
  gemm_epilogue<T>(C, cm, cn, alpha, beta, Y);
}

Status gemm_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, ctx.opset >= 11 ? 2 : 3, 3));
  const Tensor& A = *in[0];
  const Tensor& B = *in[1];
  const Tensor* C = in.size() > 2 ? in[2] : nullptr;
  if (A.rank() != 2 || B.rank() != 2) {
    return make_error(ErrorCode::kInvalidArgument, "{}: A {} and B {} must both be 2-D", node.describe(), shape_string(A.shape()),
                      shape_string(B.shape()));
  }
  HEARTH_TRY(require_dtype(node, A, "A", {DType::kFloat, DType::kDouble}));
  if (A.dtype() != B.dtype() || (C && C->dtype() != A.dtype())) {
    return invalid(node, "A, B and C must have one element type");
  }
  const bool ta = node.attr_int("transA", 0) != 0, tb = node.attr_int("transB", 0) != 0;
  const int64_t m = ta ? A.dim(1) : A.dim(0), k = ta ? A.dim(0) : A.dim(1);
  const int64_t kb = tb ? B.dim(1) : B.dim(0), n = tb ? B.dim(0) : B.dim(1);
  if (k != kb) {
    return make_error(ErrorCode::kInvalidArgument, "{}: inner dimensions differ: A' is [{},{}] and B' is [{},{}]", node.describe(), m,
                      k, kb, n);
  }
  const float alpha = node.attr_float("alpha", 1.0f), beta = node.attr_float("beta", 1.0f);
  // C broadcast to [M, N]: its dims (after left-padding to rank 2) are 1 or equal to Y's.
  // beta = 0 drops C (so an inf or NaN in C does not turn into NaN).
  int64_t cm = 1, cn = 1;
  if (C) {
    if (C->rank() > 2) return invalid(node, fmt::format("C has rank {}, at most 2 is allowed", C->rank()));
    if (C->rank() == 2) cm = C->dim(0), cn = C->dim(1);
    if (C->rank() == 1) cn = C->dim(0);
    if ((cm != 1 && cm != m) || (cn != 1 && cn != n)) {
      return make_error(ErrorCode::kInvalidArgument, "{}: C {} does not broadcast to [{},{}]", node.describe(),
                        shape_string(C->shape()), m, n);
    }
    if (beta == 0.0f) C = nullptr;
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor Y, ctx.alloc(A.dtype(), {m, n}));
  if (A.dtype() == DType::kFloat) {
    gemm_typed<float>(ctx, A, B, C, cm, cn, ta, tb, alpha, beta, Y);
  } else {
    gemm_typed<double>(ctx, A, B, C, cm, cn, ta, tb, alpha, beta, Y);
  }
  out[0] = std::move(Y);
  return ok_status();
}

}  // namespace

void register_matmul_ops(OpRegistry& r) {
  r.add("MatMul", 1, &matmul_op);
  r.add("Gemm", 7, &gemm_op);
}

}  // namespace hearth::onnx
