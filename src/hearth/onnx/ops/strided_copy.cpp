#include "hearth/onnx/ops/strided_copy.h"

#include <algorithm>
#include <array>

namespace hearth::onnx {
namespace {

template <typename T>
void copy_run(const std::byte* in, int64_t off, int64_t stride, int64_t n, std::byte* out) {
  const T* src = reinterpret_cast<const T*>(in) + off;
  T* dst = reinterpret_cast<T*>(out);
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i * stride];
}

// One row of n elements from in[off], advancing by stride.
void copy_row(const std::byte* in, int64_t off, int64_t stride, int64_t n, std::byte* out, size_t es) {
  if (stride == 1) {
    std::memcpy(out, in + off * static_cast<int64_t>(es), static_cast<size_t>(n) * es);
    return;
  }
  switch (es) {
    case 1: copy_run<uint8_t>(in, off, stride, n, out); break;
    case 2: copy_run<uint16_t>(in, off, stride, n, out); break;
    case 4: copy_run<uint32_t>(in, off, stride, n, out); break;
    default: copy_run<uint64_t>(in, off, stride, n, out); break;
  }
}

// Drops size-1 dims and merges a dim into the previous one where the strides allow.
void collapse(const Shape& shape, const std::vector<int64_t>& strides, Shape& dims, std::vector<int64_t>& st) {
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!dims.empty() && st.back() == strides[d] * shape[d]) {
      dims.back() *= shape[d];
      st.back() = strides[d];
    } else {
      dims.push_back(shape[d]);
      st.push_back(strides[d]);
    }
  }
  if (dims.empty()) {
    dims.push_back(1);
    st.push_back(0);
  }
}

// Calls fn(row, in_offset) for rows [r0, r1) of the collapsed outer dims (all but the last).
template <typename F>
void walk_rows(const Shape& dims, const std::vector<int64_t>& st, size_t outer, int64_t r0, int64_t r1, F&& fn) {
  std::array<int64_t, kMaxRank + 1> idx{};
  int64_t off = 0, r = r0;
  for (size_t d = outer; d-- > 0;) {
    idx[d] = r % dims[d];
    r /= dims[d];
    off += idx[d] * st[d];
  }
  for (int64_t row = r0; row < r1; ++row) {
    fn(row, off);
    for (size_t d = outer; d-- > 0;) {
      off += st[d];
      if (++idx[d] < dims[d]) break;
      off -= dims[d] * st[d];
      idx[d] = 0;
    }
  }
}

template <typename T>
void transpose_tile(const T* in, T* out, int64_t rows_in, int64_t cols_in, int64_t c0, int64_t c1) {
  // in is [rows_in, cols_in]; out is [cols_in, rows_in]; this does output rows [c0, c1).
  constexpr int64_t kTile = 32;
  for (int64_t rb = 0; rb < rows_in; rb += kTile) {
    const int64_t re = std::min(rows_in, rb + kTile);
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t r = rb; r < re; ++r) out[c * rows_in + r] = in[r * cols_in + c];
    }
  }
}

}  // namespace

std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

void strided_copy(ThreadPool& pool, const std::byte* in, int64_t base, const Shape& out_shape,
                  const std::vector<int64_t>& strides, std::byte* out, size_t es) {
  int64_t numel = 1;
  for (int64_t d : out_shape) numel *= d;
  if (numel == 0) return;
  Shape dims;
  std::vector<int64_t> st;
  collapse(out_shape, strides, dims, st);
  const int64_t n = dims.back(), s = st.back();
  const size_t outer = dims.size() - 1;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / n);
  pool.parallel_for(numel / n, grain, [&](int64_t r0, int64_t r1) {
    walk_rows(dims, st, outer, r0, r1, [&](int64_t row, int64_t off) {
      copy_row(in, base + off, s, n, out + row * n * static_cast<int64_t>(es), es);
    });
  });
}

void strided_copy_ref(const std::byte* in, int64_t base, const Shape& out_shape, const std::vector<int64_t>& strides,
                      std::byte* out, size_t es) {
  int64_t numel = 1;
  for (int64_t d : out_shape) numel *= d;
  for (int64_t i = 0; i < numel; ++i) {
    int64_t rem = i, off = base;
    for (size_t d = out_shape.size(); d-- > 0;) {
      off += (rem % out_shape[d]) * strides[d];
      rem /= out_shape[d];
    }
    std::memcpy(out + i * static_cast<int64_t>(es), in + off * static_cast<int64_t>(es), es);
  }
}

void transpose_copy(ThreadPool& pool, const std::byte* in, const Shape& in_shape, const std::vector<int64_t>& perm,
                    std::byte* out, size_t es) {
  const std::vector<int64_t> in_st = contiguous_strides(in_shape);
  Shape out_shape(perm.size());
  std::vector<int64_t> st(perm.size());
  for (size_t d = 0; d < perm.size(); ++d) {
    out_shape[d] = in_shape[static_cast<size_t>(perm[d])];
    st[d] = in_st[static_cast<size_t>(perm[d])];
  }
  Shape dims;
  std::vector<int64_t> cst;
  collapse(out_shape, st, dims, cst);
  const size_t r = dims.size();
  // A batched 2-D transpose: the output's last two collapsed dims read the input as
  // [cols_out, rows_out] with strides [1, rows_out]... i.e. out[.., i, j] = in[.., j, i].
  if (r >= 2 && cst[r - 2] == 1 && cst[r - 1] == dims[r - 2] && dims[r - 1] > 1 && (es == 1 || es == 2 || es == 4 || es == 8)) {
    const int64_t rows_out = dims[r - 2], cols_out = dims[r - 1];
    const int64_t mat = rows_out * cols_out;
    int64_t batches = 1;
    for (size_t d = 0; d + 2 < r; ++d) batches *= dims[d];
    constexpr int64_t kBlock = 32;
    const int64_t blocks = (rows_out + kBlock - 1) / kBlock;
    pool.parallel_for(batches * blocks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / blocks, blk = t % blocks;
        // The input offset of batch b (outer collapsed dims are general strides).
        int64_t off = 0, rem = b;
        for (size_t d = r - 2; d-- > 0;) {
          off += (rem % dims[d]) * cst[d];
          rem /= dims[d];
        }
        const int64_t c0 = blk * kBlock, c1 = std::min(rows_out, c0 + kBlock);
        const std::byte* src = in + off * static_cast<int64_t>(es);
        std::byte* dst = out + b * mat * static_cast<int64_t>(es);
        // Input matrix is [cols_out, rows_out]; output [rows_out, cols_out].
        switch (es) {
          case 1: transpose_tile(reinterpret_cast<const uint8_t*>(src), reinterpret_cast<uint8_t*>(dst), cols_out, rows_out, c0, c1); break;
          case 2: transpose_tile(reinterpret_cast<const uint16_t*>(src), reinterpret_cast<uint16_t*>(dst), cols_out, rows_out, c0, c1); break;
          case 4: transpose_tile(reinterpret_cast<const uint32_t*>(src), reinterpret_cast<uint32_t*>(dst), cols_out, rows_out, c0, c1); break;
          default: transpose_tile(reinterpret_cast<const uint64_t*>(src), reinterpret_cast<uint64_t*>(dst), cols_out, rows_out, c0, c1); break;
        }
      }
    });
    return;
  }
  strided_copy(pool, in, 0, out_shape, st, out, es);
}

}  // namespace hearth::onnx
