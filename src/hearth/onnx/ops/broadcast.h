// Multidirectional (numpy) broadcasting for ONNX's elementwise ops (onnx/docs/Broadcasting.md):
// shapes are right-aligned, and each dim is equal or 1 in every input. A Broadcast plan drops
// the output's size-1 dims and merges runs of dims in which every input is either full or
// broadcast alike, so that the work becomes rows of `inner()` elements in which each input
// advances by 1 or stays put; same-shape inputs become one row, a [C,1,1] operand of an NCHW
// tensor becomes rows with a constant, a [W] bias rows that both advance. The loops over a row
// are templated on those two cases and vectorize; broadcast_offset_ref() is the scalar
// reference the unit tests compare them with.
// Header-only (templates), included by the ops/ files.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/core/thread_pool.h"
#include "hearth/onnx/graph.h"
#include "hearth/onnx/tensor.h"

namespace hearth::onnx {

// The broadcast of the shapes, or an error naming the node and the shapes.
inline Result<Shape> broadcast_shape(const Node& node, std::initializer_list<const Shape*> shapes) {
  size_t rank = 0;
  for (const Shape* s : shapes) rank = std::max(rank, s->size());
  Shape out(rank, 1);
  for (const Shape* s : shapes) {
    const size_t off = rank - s->size();
    for (size_t d = 0; d < s->size(); ++d) {
      const int64_t v = (*s)[d];
      int64_t& o = out[off + d];
      if (v == o || v == 1) continue;
      if (o == 1) {
        o = v;
        continue;
      }
      std::string all;
      for (const Shape* t : shapes) all += (all.empty() ? "" : " and ") + shape_string(*t);
      return make_error(ErrorCode::kInvalidArgument, "{}: shapes {} cannot be broadcast (dim {} of the output: {} vs {})",
                        node.describe(), all, off + d, o, v);
    }
  }
  if (auto n = checked_numel(out); !n.ok()) return n.status().with_context(node.describe());
  return out;
}

struct Broadcast {
  static constexpr size_t kMaxInputs = 3;
  Shape out;
  int64_t numel = 0;
  size_t n_inputs = 0;
  std::vector<int64_t> dims;                             // collapsed loop dims; the last is the row
  std::array<std::vector<int64_t>, kMaxInputs> strides;  // per input and collapsed dim, 0 = broadcast

  int64_t inner() const { return dims.back(); }
  bool inner_advances(size_t k) const { return strides[k].back() != 0; }
  int64_t rows() const { return inner() == 0 ? 0 : numel / inner(); }

  // fn(offsets, out_offset) for every row: offsets[k] is input k's first element of the row.
  // Rows are split over the pool, each thread walking its rows with an odometer (no allocation).
  template <typename F>
  void for_rows(ThreadPool& pool, F&& fn) const {
    const int64_t n = inner();
    const int64_t n_rows = rows();
    if (n_rows == 0) return;
    const size_t m = dims.size() - 1;  // outer dims
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(n, 1));
    pool.parallel_for(n_rows, grain, [&](int64_t r0, int64_t r1) {
      std::array<int64_t, kMaxRank + 1> idx{};
      std::array<int64_t, kMaxInputs> off{};
      int64_t r = r0;
      for (size_t d = m; d-- > 0;) {
        idx[d] = r % dims[d];
        r /= dims[d];
        for (size_t k = 0; k < n_inputs; ++k) off[k] += idx[d] * strides[k][d];
      }
      for (int64_t row = r0; row < r1; ++row) {
        fn(off.data(), row * n);
        for (size_t d = m; d-- > 0;) {
          for (size_t k = 0; k < n_inputs; ++k) off[k] += strides[k][d];
          if (++idx[d] < dims[d]) break;
          for (size_t k = 0; k < n_inputs; ++k) off[k] -= dims[d] * strides[k][d];
          idx[d] = 0;
        }
      }
    });
  }
};

// The plan for inputs of the given shapes, each broadcastable to `out` (see broadcast_shape).
inline Broadcast plan_broadcast(const Shape& out, std::initializer_list<const Shape*> shapes) {
  Broadcast b;
  b.out = out;
  b.numel = checked_numel(out).value_or(0);
  b.n_inputs = shapes.size();
  const size_t rank = out.size();
  std::vector<std::vector<bool>> full_of;  // per collapsed dim, per input: advances
  if (b.numel == 0) {
    b.dims = {0};
  } else {
    for (size_t d = 0; d < rank; ++d) {
      if (out[d] == 1) continue;
      std::vector<bool> full;
      for (const Shape* s : shapes) {
        const size_t off = rank - s->size();
        full.push_back(d >= off && (*s)[d - off] != 1);
      }
      if (!full_of.empty() && full_of.back() == full) {
        b.dims.back() *= out[d];
      } else {
        b.dims.push_back(out[d]);
        full_of.push_back(std::move(full));
      }
    }
    if (b.dims.empty()) {
      b.dims = {1};
      full_of.push_back(std::vector<bool>(shapes.size(), false));
    }
  }
  for (size_t k = 0; k < shapes.size(); ++k) {
    b.strides[k].assign(b.dims.size(), 0);
    int64_t acc = 1;
    for (size_t d = b.dims.size(); d-- > 0;) {
      if (b.numel != 0 && full_of[d][k]) {
        b.strides[k][d] = acc;
        acc *= b.dims[d];
      }
    }
  }
  return b;
}

// o[i] = f(a[i], b[i]) under broadcasting. For float the row loop is specialized on whether a
// and b advance along the row (both: same-shape runs; one: scalar or row broadcast), so that
// each vectorizes; other types (shape arithmetic, masks) share one loop with the strides as
// multipliers, which keeps the number of instantiations, and the build time, down.
template <typename TA, typename TB, typename TO, typename F>
void broadcast_binary(ThreadPool& pool, const Broadcast& bc, const TA* a, const TB* b, TO* o, F f) {
  const int64_t n = bc.inner();
  const int64_t sa = bc.inner_advances(0), sb = bc.inner_advances(1);
  if constexpr (std::is_same_v<TA, float> && std::is_same_v<TB, float>) {
    auto run = [&]<bool kA, bool kB>() {
      bc.for_rows(pool, [&](const int64_t* off, int64_t oo) {
        const TA* pa = a + off[0];
        const TB* pb = b + off[1];
        TO* po = o + oo;
        for (int64_t i = 0; i < n; ++i) po[i] = f(pa[kA ? i : 0], pb[kB ? i : 0]);
      });
    };
    if (sa && sb) run.template operator()<true, true>();
    else if (sa) run.template operator()<true, false>();
    else if (sb) run.template operator()<false, true>();
    else run.template operator()<false, false>();
  } else {
    bc.for_rows(pool, [&](const int64_t* off, int64_t oo) {
      const TA* pa = a + off[0];
      const TB* pb = b + off[1];
      TO* po = o + oo;
      for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i * sa], pb[i * sb]);
    });
  }
}

// o[i] = f(a[i], b[i], c[i]) under broadcasting (Where, Clip with tensor bounds).
template <typename TA, typename TB, typename TC, typename TO, typename F>
void broadcast_ternary(ThreadPool& pool, const Broadcast& bc, const TA* a, const TB* b, const TC* c, TO* o, F f) {
  const int64_t n = bc.inner();
  const int64_t sa = bc.inner_advances(0), sb = bc.inner_advances(1), sc = bc.inner_advances(2);
  bc.for_rows(pool, [&](const int64_t* off, int64_t oo) {
    const TA* pa = a + off[0];
    const TB* pb = b + off[1];
    const TC* pc = c + off[2];
    TO* po = o + oo;
    if (sa && sb && sc) {
      for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i], pc[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i * sa], pb[i * sb], pc[i * sc]);
    }
  });
}

// Reference: the offset in an input of shape `in` of output element `flat` (row-major), by
// the definition of broadcasting (an input dim of 1 repeats its only element).
inline int64_t broadcast_offset_ref(const Shape& out, const Shape& in, int64_t flat) {
  int64_t off = 0, stride = 1;
  const size_t lead = out.size() - in.size();
  for (size_t d = out.size(); d-- > 0;) {
    const int64_t i = flat % out[d];
    flat /= out[d];
    if (d < lead) continue;
    const int64_t n = in[d - lead];
    if (n != 1) off += i * stride;
    stride *= n;
  }
  return off;
}

}  // namespace hearth::onnx
