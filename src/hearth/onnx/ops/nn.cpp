// ONNX operators: pooling, normalization and Pad (op_registry.h; Resize is ops/resize.cpp).
//  - MaxPool (float32, int8, uint8; dilations, ceil_mode, storage_order, the Indices output),
//    AveragePool (count_include_pad, ceil_mode, dilations), GlobalAveragePool, GlobalMaxPool:
//    any number of spatial dims, one (image, channel) plane per task on the thread pool;
//  - BatchNormalization (inference mode), InstanceNormalization, LayerNormalization (opset 17);
//  - Pad (attributes before opset 11, inputs from 11, axes from 18): constant, reflect, edge,
//    wrap, any element type; negative pads crop.
// Checked by tests/unit/onnx/nn_ops_test.cpp against references written there.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "hearth/core/checked_math.h"
#include "hearth/onnx/op_registry.h"
#include "hearth/onnx/ops/op_common.h"

namespace hearth::onnx {
namespace {


int64_t prod(const std::vector<int64_t>& v, size_t from = 0) {
  int64_t p = 1;
  for (size_t i = from; i < v.size(); ++i) p *= v[i];
  return p;
}

// ---- pooling ----

struct PoolGeom {
  size_t nd = 0;
  std::vector<int64_t> in, k, out, s, d, pb, pe;
};

Status pool_geometry(const Node& node, const Tensor& x, bool allow_dilations, PoolGeom& g) {
  if (x.rank() < 3) return bad(node, fmt::format("input must have rank >= 3 (N, C, spatial...), has shape {}", shape_string(x.shape())));
  const size_t nd = x.rank() - 2;
  g.nd = nd;
  g.in.assign(x.shape().begin() + 2, x.shape().end());
  g.k = node.attr_ints("kernel_shape");
  if (g.k.size() != nd) return bad(node, fmt::format("kernel_shape must have {} values, has {}", nd, g.k.size()));
  g.s = node.attr_ints("strides", std::vector<int64_t>(nd, 1));
  g.d = node.attr_ints("dilations", std::vector<int64_t>(nd, 1));
  if (g.s.size() != nd) return bad(node, fmt::format("strides has {} values, expected {}", g.s.size(), nd));
  if (g.d.size() != nd) return bad(node, fmt::format("dilations has {} values, expected {}", g.d.size(), nd));
  auto pads = node.attr_ints("pads", std::vector<int64_t>(2 * nd, 0));
  if (pads.size() != 2 * nd) return bad(node, fmt::format("pads has {} values, expected {}", pads.size(), 2 * nd));
  constexpr int64_t kLim = int64_t{1} << 30;
  for (size_t i = 0; i < nd; ++i) {
    if (g.k[i] <= 0 || g.k[i] > kLim) return bad(node, fmt::format("kernel_shape must be in [1, 2^30], is {}", shape_string(g.k)));
    if (g.s[i] <= 0 || g.s[i] > kLim) return bad(node, fmt::format("strides must be in [1, 2^30], are {}", shape_string(g.s)));
    if (g.d[i] <= 0 || g.d[i] > kLim) return bad(node, fmt::format("dilations must be in [1, 2^30], are {}", shape_string(g.d)));
    if (!allow_dilations && g.d[i] != 1) return bad(node, "dilations are not supported before opset 19");
  }
  for (int64_t p : pads) if (p < 0 || p > kLim) return bad(node, fmt::format("pads must be in [0, 2^30], are {}", shape_string(pads)));
  g.pb.assign(pads.begin(), pads.begin() + static_cast<std::ptrdiff_t>(nd));
  g.pe.assign(pads.begin() + static_cast<std::ptrdiff_t>(nd), pads.end());
  const bool ceil_mode = node.attr_int("ceil_mode", 0) != 0;
  const std::string ap = node.attr_string("auto_pad", "NOTSET");
  g.out.resize(nd);
  for (size_t i = 0; i < nd; ++i) {
    const int64_t ek = (g.k[i] - 1) * g.d[i] + 1;  // < 2^60
    if (ap == "NOTSET") {
      const int64_t span = g.in[i] + g.pb[i] + g.pe[i] - ek;
      if (span < 0) return bad(node, fmt::format("the kernel ({}) is larger than the padded input ({}) in spatial dim {}", ek, span + ek, i));
      g.out[i] = (ceil_mode ? (span + g.s[i] - 1) / g.s[i] : span / g.s[i]) + 1;
      // A last window that would start in the end padding is dropped.
      if (ceil_mode && (g.out[i] - 1) * g.s[i] >= g.in[i] + g.pb[i]) --g.out[i];
    } else if (ap == "VALID") {
      g.pb[i] = g.pe[i] = 0;
      if (g.in[i] < ek) return bad(node, fmt::format("the kernel ({}) is larger than the input ({}) in spatial dim {}", ek, g.in[i], i));
      g.out[i] = (g.in[i] - ek) / g.s[i] + 1;
    } else if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
      g.out[i] = (g.in[i] + g.s[i] - 1) / g.s[i];
      const int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * g.s[i] + ek - g.in[i]);
      g.pb[i] = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pe[i] = total - g.pb[i];
    } else {
      return bad(node, fmt::format("auto_pad '{}' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", ap));
    }
  }
  return ok_status();
}

// Calls f(out_index, window) for each output position of one plane, where window lists the
// valid input offsets (and pad_count the window positions inside the padded bounds).
// The 2-D case, without the general case's offset lists: f(out_index, window_visit, pad_count)
// where window_visit(fn) calls fn(offset) for each valid input offset.
// For a window starting at `start` with k taps `d` apart: the taps [k0, k1) inside [0, in),
// and how many taps lie before `lim` (the end of the padding), without a loop over the taps.
struct TapRange {
  int64_t k0, k1, before_lim;
};
TapRange tap_range(int64_t start, int64_t k, int64_t d, int64_t in, int64_t lim) {
  TapRange r{};
  r.k0 = start >= 0 ? 0 : std::min(k, (-start + d - 1) / d);
  r.k1 = start > in - 1 ? 0 : std::min(k, (in - 1 - start) / d + 1);
  if (r.k1 < r.k0) r.k1 = r.k0;
  r.before_lim = start > lim - 1 ? 0 : std::min(k, (lim - 1 - start) / d + 1);
  return r;
}

template <typename F>
void for_each_window_2d(const PoolGeom& g, F&& f) {
  for (int64_t oy = 0; oy < g.out[0]; ++oy) {
    const int64_t ys = oy * g.s[0] - g.pb[0];
    const TapRange ry = tap_range(ys, g.k[0], g.d[0], g.in[0], g.in[0] + g.pe[0]);
    const int64_t ky0 = ry.k0, ky1 = ry.k1, pad_y = ry.before_lim;
    for (int64_t ox = 0; ox < g.out[1]; ++ox) {
      const int64_t xs = ox * g.s[1] - g.pb[1];
      const TapRange rx = tap_range(xs, g.k[1], g.d[1], g.in[1], g.in[1] + g.pe[1]);
      const int64_t kx0 = rx.k0, kx1 = rx.k1, pad_x = rx.before_lim;
      auto visit = [&](auto&& fn) {
        for (int64_t ky = ky0; ky < ky1; ++ky) {
          const int64_t row = (ys + ky * g.d[0]) * g.in[1] + xs;
          for (int64_t kx = kx0; kx < kx1; ++kx) fn(row + kx * g.d[1]);
        }
      };
      f(oy * g.out[1] + ox, visit, pad_y * pad_x);
    }
  }
}

// Any number of spatial dims: f(out_index, window_visit, pad_count) as above.
template <typename F>
void for_each_window(const PoolGeom& g, F&& f) {
  if (g.nd == 2) {
    for_each_window_2d(g, f);
    return;
  }
  const size_t nd = g.nd;
  const int64_t osz = prod(g.out);
  std::vector<int64_t> oc(nd, 0);
  std::vector<std::vector<int64_t>> pos(nd);  // valid input coords per dim
  std::vector<int64_t> padded(nd);
  std::vector<int64_t> offs;
  for (int64_t o = 0; o < osz; ++o) {
    int64_t pad_count = 1;
    for (size_t i = 0; i < nd; ++i) {
      pos[i].clear();
      const int64_t start = oc[i] * g.s[i] - g.pb[i];
      const TapRange tr = tap_range(start, g.k[i], g.d[i], g.in[i], g.in[i] + g.pe[i]);
      for (int64_t k = tr.k0; k < tr.k1; ++k) pos[i].push_back(start + k * g.d[i]);
      const int64_t in_pad = tr.before_lim;  // taps are never before -pb
      padded[i] = in_pad;
      pad_count *= in_pad;
    }
    offs.assign(1, 0);
    for (size_t i = 0; i < nd; ++i) {
      std::vector<int64_t> next;
      next.reserve(offs.size() * pos[i].size());
      for (int64_t base : offs)
        for (int64_t p : pos[i]) next.push_back(base * g.in[i] + p);
      offs.swap(next);
    }
    auto visit = [&](auto&& fn) {
      for (int64_t off : offs) fn(off);
    };
    f(o, visit, pad_count);
    for (size_t i = nd; i-- > 0;) {
      if (++oc[i] < g.out[i]) break;
      oc[i] = 0;
    }
  }
}

template <typename T>
void max_pool_planes(OpContext& ctx, const PoolGeom& g, const T* x, T* y, int64_t* idx, int64_t planes, bool col_major) {
  const int64_t isz = prod(g.in), osz = prod(g.out);
  ctx.pool.parallel_for(planes, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * isz;
      for_each_window(g, [&](int64_t o, auto&& visit, int64_t) {
        T best = std::numeric_limits<T>::lowest();
        int64_t at = -1;
        if constexpr (std::is_floating_point_v<T>) best = -std::numeric_limits<T>::infinity();
        visit([&](int64_t off) {
          if (at < 0 || xp[off] > best) best = xp[off], at = off;
        });
        y[p * osz + o] = best;
        if (idx) {
          int64_t flat = at < 0 ? 0 : at;
          if (col_major && at >= 0) {
            // Column-major spatial offset: reverse the dims' order.
            int64_t rem = at, cm = 0, mul = 1;
            std::vector<int64_t> c(g.nd);
            for (size_t i = g.nd; i-- > 0;) c[i] = rem % g.in[i], rem /= g.in[i];
            for (size_t i = 0; i < g.nd; ++i) cm += c[i] * mul, mul *= g.in[i];
            flat = cm;
          }
          idx[p * osz + o] = p * isz + flat;
        }
      });
    }
  });
}

// 2-D float32 without the Indices output (what vision models use): one output row at a time,
// the window's taps are visited in the outer loops and the output columns in the inner one, so
// that the inner loop is a plain strided max that the compiler vectorizes. Windows with no
// valid tap (all padding) give -inf, as in max_pool_planes; a NaN input is skipped here
// (max_pool_planes keeps one that is a window's first valid tap).
void max_pool_2d_float(OpContext& ctx, const PoolGeom& g, const float* x, float* y, int64_t planes) {
  const int64_t ih = g.in[0], iw = g.in[1], oh = g.out[0], ow = g.out[1];
  const int64_t sx = g.s[1], dx = g.d[1];
  // For each kx: the output columns [lo, hi) whose tap lies inside [0, iw), and its offset.
  struct Col {
    int64_t lo, hi, off;
  };
  std::vector<Col> cols;
  for (int64_t kx = 0; kx < g.k[1]; ++kx) {
    const int64_t off = kx * dx - g.pb[1];  // input column = ox * sx + off
    const int64_t lo = off >= 0 ? 0 : std::min(ow, (-off + sx - 1) / sx);
    const int64_t hi = iw - 1 - off < 0 ? 0 : std::min(ow, (iw - 1 - off) / sx + 1);
    if (hi > lo) cols.push_back({lo, hi, off});
  }
  ctx.pool.parallel_for(planes, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* xp = x + p * ih * iw;
      float* yp = y + p * oh * ow;
      for (int64_t oy = 0; oy < oh; ++oy) {
        float* acc = yp + oy * ow;
        std::fill(acc, acc + ow, -std::numeric_limits<float>::infinity());
        const int64_t ys = oy * g.s[0] - g.pb[0];
        const TapRange ry = tap_range(ys, g.k[0], g.d[0], ih, ih + g.pe[0]);
        for (int64_t ky = ry.k0; ky < ry.k1; ++ky) {
          const float* row = xp + (ys + ky * g.d[0]) * iw;
          for (const Col& c : cols) {
            const float* src = row + c.off;
            if (sx == 1) {
              for (int64_t ox = c.lo; ox < c.hi; ++ox) acc[ox] = src[ox] > acc[ox] ? src[ox] : acc[ox];
            } else if (sx == 2) {
              for (int64_t ox = c.lo; ox < c.hi; ++ox) acc[ox] = src[2 * ox] > acc[ox] ? src[2 * ox] : acc[ox];
            } else {
              for (int64_t ox = c.lo; ox < c.hi; ++ox) acc[ox] = src[ox * sx] > acc[ox] ? src[ox * sx] : acc[ox];
            }
          }
        }
      }
    }
  });
}

Status max_pool_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const Tensor& x = *in[0];
  HEARTH_TRY(require_dtype(node, x, "input X", {DType::kFloat, DType::kUint8, DType::kInt8, DType::kDouble}));
  PoolGeom g;
  HEARTH_TRY(pool_geometry(node, x, true, g));
  Shape ys{x.dim(0), x.dim(1)};
  ys.insert(ys.end(), g.out.begin(), g.out.end());
  HEARTH_ASSIGN_OR_RETURN(Tensor y, ctx.alloc_uninit(x.dtype(), ys));
  Tensor ind;
  const bool want_idx = node.outputs.size() > 1 && !node.outputs[1].empty();
  if (want_idx) {
    HEARTH_ASSIGN_OR_RETURN(ind, ctx.alloc(DType::kInt64, ys));
  }
  const int64_t planes = x.dim(0) * x.dim(1);
  int64_t* id = want_idx ? ind.data<int64_t>() : nullptr;
  const bool cm = node.attr_int("storage_order", 0) != 0;
  if (y.numel() > 0 && x.dtype() == DType::kFloat && g.nd == 2 && !want_idx) {
    max_pool_2d_float(ctx, g, x.data<float>(), y.data<float>(), planes);
  } else if (y.numel() > 0) {
    switch (x.dtype()) {
      case DType::kFloat: max_pool_planes(ctx, g, x.data<float>(), y.data<float>(), id, planes, cm); break;
      case DType::kDouble: max_pool_planes(ctx, g, x.data<double>(), y.data<double>(), id, planes, cm); break;
      case DType::kUint8: max_pool_planes(ctx, g, x.data<uint8_t>(), y.data<uint8_t>(), id, planes, cm); break;
      default: max_pool_planes(ctx, g, x.data<int8_t>(), y.data<int8_t>(), id, planes, cm); break;
    }
  }
  out[0] = y;
  if (want_idx) out[1] = ind;
  return ok_status();
}

Status average_pool_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const Tensor& x = *in[0];
  HEARTH_TRY(require_dtype(node, x, "input X", {DType::kFloat}));
  PoolGeom g;
  HEARTH_TRY(pool_geometry(node, x, ctx.opset >= 19, g));
  Shape ys{x.dim(0), x.dim(1)};
  ys.insert(ys.end(), g.out.begin(), g.out.end());
  HEARTH_ASSIGN_OR_RETURN(Tensor y, ctx.alloc(DType::kFloat, ys));
  out[0] = y;
  if (y.numel() == 0) return ok_status();
  const bool include_pad = node.attr_int("count_include_pad", 0) != 0;
  const int64_t isz = prod(g.in), osz = prod(g.out);
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  ctx.pool.parallel_for(x.dim(0) * x.dim(1), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* xp = xd + p * isz;
      for_each_window(g, [&](int64_t o, auto&& visit, int64_t pad_count) {
        float s = 0;
        int64_t valid = 0;
        visit([&](int64_t off) {
          s += xp[off];
          ++valid;
        });
        const int64_t n = include_pad ? pad_count : valid;
        yd[p * osz + o] = n > 0 ? s / static_cast<float>(n) : 0.0f;
      });
    }
  });
  return ok_status();
}

template <bool kMax>
Status global_pool_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 1));
  const Tensor& x = *in[0];
  HEARTH_TRY(require_dtype(node, x, "input X", {DType::kFloat}));
  if (x.rank() < 2) return bad(node, fmt::format("input must have rank >= 2, has shape {}", shape_string(x.shape())));
  Shape ys{x.dim(0), x.dim(1)};
  ys.resize(x.rank(), 1);
  HEARTH_ASSIGN_OR_RETURN(Tensor y, ctx.alloc(DType::kFloat, ys));
  out[0] = y;
  const int64_t planes = x.dim(0) * x.dim(1);
  if (planes == 0) return ok_status();
  const int64_t sz = x.numel() / planes;
  if (kMax && sz == 0) return bad(node, "GlobalMaxPool of an empty spatial extent");
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  ctx.pool.parallel_for(planes, 8, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* xp = xd + p * sz;
      if constexpr (kMax) {
        float m = xp[0];
        for (int64_t i = 1; i < sz; ++i) m = std::max(m, xp[i]);
        yd[p] = m;
      } else {
        double s = 0;
        for (int64_t i = 0; i < sz; ++i) s += xp[i];
        yd[p] = sz > 0 ? static_cast<float>(s / static_cast<double>(sz)) : 0.0f;
      }
    }
  });
  return ok_status();
}

// ---- normalization ----

Status check_channel_vector(const Node& node, const Tensor* t, std::string_view what, int64_t c) {
  if (!t) return bad(node, fmt::format("{} is required", what));
  HEARTH_TRY(require_dtype(node, *t, what, {DType::kFloat}));
  if (t->numel() != c || t->rank() != 1) return bad(node, fmt::format("{} must have shape [{}], has {}", what, c, shape_string(t->shape())));
  return ok_status();
}

// y = x * a[c] + b[c] per channel (dim 1) of x.
void channel_affine(OpContext& ctx, const Tensor& x, const std::vector<float>& a, const std::vector<float>& b, Tensor& y) {
  const int64_t n = x.dim(0), c = x.dim(1);
  const int64_t sz = n * c == 0 ? 0 : x.numel() / (n * c);
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  ctx.pool.parallel_for(n * c, std::max<int64_t>(1, 16384 / std::max<int64_t>(sz, 1)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float av = a[static_cast<size_t>(p % c)], bv = b[static_cast<size_t>(p % c)];
      const float* xp = xd + p * sz;
      float* yp = yd + p * sz;
      for (int64_t i = 0; i < sz; ++i) yp[i] = xp[i] * av + bv;
    }
  });
}

Status batch_norm_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 5, 5));
  const Tensor& x = *in[0];
  HEARTH_TRY(require_dtype(node, x, "input X", {DType::kFloat}));
  if (node.attr_int("training_mode", 0) != 0) return bad(node, "training_mode is not supported (inference only)");
  for (size_t i = 1; i < node.outputs.size(); ++i) {
    if (!node.outputs[i].empty()) return bad(node, "the running mean/var outputs (training mode) are not supported");
  }
  if (x.rank() < 2) return bad(node, fmt::format("input must have rank >= 2 (N, C, ...), has shape {}", shape_string(x.shape())));
  const int64_t c = x.dim(1);
  HEARTH_TRY(check_channel_vector(node, in[1], "scale", c));
  HEARTH_TRY(check_channel_vector(node, in[2], "B", c));
  HEARTH_TRY(check_channel_vector(node, in[3], "input_mean", c));
  HEARTH_TRY(check_channel_vector(node, in[4], "input_var", c));
  const float eps = node.attr_float("epsilon", 1e-5f);
  std::vector<float> a(static_cast<size_t>(c)), b(static_cast<size_t>(c));
  for (int64_t i = 0; i < c; ++i) {
    const float s = in[1]->data<float>()[i] / std::sqrt(in[4]->data<float>()[i] + eps);
    a[static_cast<size_t>(i)] = s;
    b[static_cast<size_t>(i)] = in[2]->data<float>()[i] - in[3]->data<float>()[i] * s;
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor y, ctx.alloc(DType::kFloat, x.shape()));
  channel_affine(ctx, x, a, b, y);
  out[0] = y;
  return ok_status();
}

Status instance_norm_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 3, 3));
  const Tensor& x = *in[0];
  HEARTH_TRY(require_dtype(node, x, "input X", {DType::kFloat}));
  if (x.rank() < 3) return bad(node, fmt::format("input must have rank >= 3 (N, C, spatial...), has shape {}", shape_string(x.shape())));
  const int64_t n = x.dim(0), c = x.dim(1);
  HEARTH_TRY(check_channel_vector(node, in[1], "scale", c));
  HEARTH_TRY(check_channel_vector(node, in[2], "B", c));
  const float eps = node.attr_float("epsilon", 1e-5f);
  HEARTH_ASSIGN_OR_RETURN(Tensor y, ctx.alloc(DType::kFloat, x.shape()));
  out[0] = y;
  if (n * c == 0) return ok_status();
  const int64_t sz = x.numel() / (n * c);
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  const float* sc = in[1]->data<float>();
  const float* bi = in[2]->data<float>();
  ctx.pool.parallel_for(n * c, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* xp = xd + p * sz;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < sz; ++i) mean += xp[i];
      mean /= static_cast<double>(std::max<int64_t>(sz, 1));
      for (int64_t i = 0; i < sz; ++i) var += (xp[i] - mean) * (xp[i] - mean);
      var /= static_cast<double>(std::max<int64_t>(sz, 1));
      const float a = sc[p % c] / static_cast<float>(std::sqrt(var + eps));
      const float b = bi[p % c] - static_cast<float>(mean) * a;
      float* yp = yd + p * sz;
      for (int64_t i = 0; i < sz; ++i) yp[i] = xp[i] * a + b;
    }
  });
  return ok_status();
}

// t (broadcastable, right-aligned, to `dims`) expanded to prod(dims) values; false if not.
bool expand_to(const Tensor& t, const Shape& dims, std::vector<float>& v) {
  if (t.rank() > dims.size()) {
    for (size_t i = 0; i + dims.size() < t.rank(); ++i) if (t.dim(i) != 1) return false;
  }
  const size_t off = dims.size() >= t.rank() ? dims.size() - t.rank() : 0;
  const size_t skip = t.rank() > dims.size() ? t.rank() - dims.size() : 0;
  for (size_t i = skip; i < t.rank(); ++i) {
    const int64_t td = t.dim(i), dd = dims[off + i - skip];
    if (td != 1 && td != dd) return false;
  }
  const int64_t total = prod(dims);
  v.resize(static_cast<size_t>(total));
  std::vector<int64_t> coord(dims.size());
  for (int64_t e = 0; e < total; ++e) {
    int64_t rem = e;
    for (size_t i = dims.size(); i-- > 0;) coord[i] = rem % dims[i], rem /= dims[i];
    int64_t src = 0;
    for (size_t i = skip; i < t.rank(); ++i) {
      const int64_t td = t.dim(i);
      src = src * td + (td == 1 ? 0 : coord[off + i - skip]);
    }
    v[static_cast<size_t>(e)] = t.data<float>()[src];
  }
  return true;
}

Status layer_norm_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 3));
  const Tensor& x = *in[0];
  HEARTH_TRY(require_dtype(node, x, "input X", {DType::kFloat}));
  HEARTH_TRY(require_dtype(node, *in[1], "Scale", {DType::kFloat}));
  const Tensor* bt = in.size() > 2 ? in[2] : nullptr;
  if (bt) HEARTH_TRY(require_dtype(node, *bt, "B", {DType::kFloat}));
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (rank == 0) return bad(node, "input must have rank >= 1");
  HEARTH_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(node, node.attr_int("axis", -1), rank));
  const float eps = node.attr_float("epsilon", 1e-5f);
  Shape norm_dims(x.shape().begin() + axis, x.shape().end());
  const int64_t d = prod(norm_dims);
  const int64_t rows = d == 0 ? 0 : x.numel() / d;
  std::vector<float> sc, bi;
  if (!expand_to(*in[1], norm_dims, sc)) {
    return bad(node, fmt::format("Scale {} does not broadcast to the normalized dims {}", shape_string(in[1]->shape()), shape_string(norm_dims)));
  }
  if (bt && !expand_to(*bt, norm_dims, bi)) {
    return bad(node, fmt::format("B {} does not broadcast to the normalized dims {}", shape_string(bt->shape()), shape_string(norm_dims)));
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor y, ctx.alloc(DType::kFloat, x.shape()));
  Shape stat_shape(x.shape().begin(), x.shape().begin() + axis);
  stat_shape.resize(static_cast<size_t>(rank), 1);
  Tensor mean_t, inv_t;
  const bool want_mean = node.outputs.size() > 1 && !node.outputs[1].empty();
  const bool want_inv = node.outputs.size() > 2 && !node.outputs[2].empty();
  if (want_mean) {
    HEARTH_ASSIGN_OR_RETURN(mean_t, ctx.alloc(DType::kFloat, stat_shape));
  }
  if (want_inv) {
    HEARTH_ASSIGN_OR_RETURN(inv_t, ctx.alloc(DType::kFloat, stat_shape));
  }
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  ctx.pool.parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(d, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xp = xd + r * d;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < d; ++i) mean += xp[i];
      mean /= static_cast<double>(d);
      for (int64_t i = 0; i < d; ++i) var += (xp[i] - mean) * (xp[i] - mean);
      var /= static_cast<double>(d);
      const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
      const float m = static_cast<float>(mean);
      float* yp = yd + r * d;
      for (int64_t i = 0; i < d; ++i) {
        yp[i] = (xp[i] - m) * inv * sc[static_cast<size_t>(i)] + (bt ? bi[static_cast<size_t>(i)] : 0.0f);
      }
      if (want_mean) mean_t.data<float>()[r] = m;
      if (want_inv) inv_t.data<float>()[r] = inv;
    }
  });
  out[0] = y;
  if (want_mean) out[1] = mean_t;
  if (want_inv) out[2] = inv_t;
  return ok_status();
}

// ---- Pad ----

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

Status pad_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  const bool attrs = ctx.opset < 11;
  HEARTH_TRY(require_inputs(node, in, attrs ? 1 : 2, attrs ? 1 : 4));
  const Tensor& x = *in[0];
  const size_t es = dtype_size(x.dtype());
  if (es == 0) return bad(node, fmt::format("input type {} is not supported", dtype_name(x.dtype())));
  const int64_t r = static_cast<int64_t>(x.rank());
  std::vector<int64_t> pads;
  std::vector<std::byte> value(es, std::byte{0});
  auto set_value = [&](double v) -> Status {
    switch (x.dtype()) {
      case DType::kFloat: { float f = static_cast<float>(v); std::memcpy(value.data(), &f, es); break; }
      case DType::kDouble: std::memcpy(value.data(), &v, es); break;
      case DType::kInt64: { int64_t i = static_cast<int64_t>(v); std::memcpy(value.data(), &i, es); break; }
      case DType::kInt32: { int32_t i = static_cast<int32_t>(v); std::memcpy(value.data(), &i, es); break; }
      case DType::kInt8: { int8_t i = static_cast<int8_t>(v); std::memcpy(value.data(), &i, es); break; }
      case DType::kUint8: { uint8_t i = static_cast<uint8_t>(v); std::memcpy(value.data(), &i, es); break; }
      case DType::kBool: { uint8_t i = v != 0; std::memcpy(value.data(), &i, es); break; }
      default:
        if (v != 0) return bad(node, fmt::format("a non-zero constant_value for {} is not supported", dtype_name(x.dtype())));
    }
    return ok_status();
  };
  if (attrs) {
    pads = node.attr_ints("pads");
    HEARTH_TRY(set_value(node.attr_float("value", 0.0f)));
  } else {
    HEARTH_ASSIGN_OR_RETURN(pads, int_list(node, *in[1], "pads"));
    if (in.size() > 2 && in[2] && in[2]->numel() > 0) {
      const Tensor& cv = *in[2];
      if (cv.dtype() != x.dtype()) return bad(node, fmt::format("constant_value is {}, data is {}", dtype_name(cv.dtype()), dtype_name(x.dtype())));
      std::memcpy(value.data(), cv.raw(), es);
    }
    if (in.size() > 3 && in[3]) {
      HEARTH_ASSIGN_OR_RETURN(auto axes, int_list(node, *in[3], "axes"));
      if (pads.size() != 2 * axes.size()) return bad(node, fmt::format("pads has {} values for {} axes", pads.size(), axes.size()));
      std::vector<int64_t> full(static_cast<size_t>(2 * r), 0);
      std::vector<bool> seen(static_cast<size_t>(r), false);
      for (size_t i = 0; i < axes.size(); ++i) {
        HEARTH_ASSIGN_OR_RETURN(int64_t a, normalize_axis(node, axes[i], r));
        if (seen[static_cast<size_t>(a)]) return bad(node, "axes repeats an axis");
        seen[static_cast<size_t>(a)] = true;
        full[static_cast<size_t>(a)] = pads[i];
        full[static_cast<size_t>(a + r)] = pads[axes.size() + i];
      }
      pads = full;
    }
  }
  if (pads.size() != static_cast<size_t>(2 * r)) return bad(node, fmt::format("pads has {} values, expected {} for rank {}", pads.size(), 2 * r, r));
  const std::string ms = node.attr_string("mode", "constant");
  PadMode mode;
  if (ms == "constant") mode = PadMode::kConstant;
  else if (ms == "reflect") mode = PadMode::kReflect;
  else if (ms == "edge") mode = PadMode::kEdge;
  else if (ms == "wrap" && ctx.opset >= 19) mode = PadMode::kWrap;
  else return bad(node, fmt::format("mode '{}' is not supported", ms));
  Shape ys(static_cast<size_t>(r));
  for (int64_t i = 0; i < r; ++i) {
    const int64_t pb = pads[static_cast<size_t>(i)], pe = pads[static_cast<size_t>(i + r)];
    const int64_t lim = kMaxElements;
    if (pb < -lim || pb > lim || pe < -lim || pe > lim) return bad(node, fmt::format("pads {} are out of range", shape_string(pads)));
    const int64_t d = x.dim(static_cast<size_t>(i));
    ys[static_cast<size_t>(i)] = d + pb + pe;
    if (ys[static_cast<size_t>(i)] < 0) return bad(node, fmt::format("pads {} crop more than dim {} holds ({})", shape_string(pads), i, d));
    if (mode != PadMode::kConstant && (pb > 0 || pe > 0)) {
      if (d == 0) return bad(node, fmt::format("{} padding of the empty dim {}", ms, i));
    }
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor y, ctx.alloc(x.dtype(), ys));
  out[0] = y;
  if (y.numel() == 0) return ok_status();
  // The source coordinate of output coordinate o along dim i, or -1 for the constant.
  auto src = [&](int64_t i, int64_t o) -> int64_t {
    const int64_t d = x.dim(static_cast<size_t>(i));
    int64_t p = o - pads[static_cast<size_t>(i)];
    if (p >= 0 && p < d) return p;
    switch (mode) {
      case PadMode::kConstant: return -1;
      case PadMode::kEdge: return p < 0 ? 0 : d - 1;
      case PadMode::kReflect: {
        // numpy's reflect, repeated when the pad is wider than the dim (the spec's example).
        if (d == 1) return 0;
        const int64_t period = 2 * (d - 1);
        const int64_t m = ((p % period) + period) % period;
        return m < d ? m : period - m;
      }
      case PadMode::kWrap: return ((p % d) + d) % d;
    }
    return -1;
  };
  const int64_t last = r - 1;
  const int64_t ow = r == 0 ? 1 : ys[static_cast<size_t>(last)];
  const int64_t rows = y.numel() / ow;
  std::vector<int64_t> xs(static_cast<size_t>(std::max<int64_t>(r, 1)), 1);
  for (int64_t i = r - 2; i >= 0; --i) xs[static_cast<size_t>(i)] = xs[static_cast<size_t>(i + 1)] * x.dim(static_cast<size_t>(i + 1));
  std::vector<int64_t> col_src(static_cast<size_t>(ow));
  for (int64_t o = 0; o < ow; ++o) col_src[static_cast<size_t>(o)] = r == 0 ? 0 : src(last, o);
  const std::byte* xd = x.raw();
  std::byte* yd = y.raw();
  ctx.pool.parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(ow, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      int64_t rem = row, base = 0;
      bool constant_row = false;
      for (int64_t i = last - 1; i >= 0; --i) {
        const int64_t o = rem % ys[static_cast<size_t>(i)];
        rem /= ys[static_cast<size_t>(i)];
        const int64_t s = src(i, o);
        if (s < 0) constant_row = true;
        else base += s * xs[static_cast<size_t>(i)];
      }
      std::byte* yr = yd + static_cast<size_t>(row * ow) * es;
      for (int64_t o = 0; o < ow; ++o) {
        const int64_t s = col_src[static_cast<size_t>(o)];
        if (constant_row || s < 0) std::memcpy(yr + static_cast<size_t>(o) * es, value.data(), es);
        else std::memcpy(yr + static_cast<size_t>(o) * es, xd + static_cast<size_t>(base + s) * es, es);
      }
    }
  });
  return ok_status();
}

}  // namespace

void register_nn_ops(OpRegistry& r) {
  r.add("MaxPool", 1, &max_pool_op);
  r.add("AveragePool", 1, &average_pool_op);
  r.add("GlobalAveragePool", 1, &global_pool_op<false>);
  r.add("GlobalMaxPool", 1, &global_pool_op<true>);
  r.add("BatchNormalization", 1, &batch_norm_op);
  r.add("InstanceNormalization", 1, &instance_norm_op);
  r.add("LayerNormalization", 17, &layer_norm_op);
  r.add("Pad", 1, &pad_op);
}

}  // namespace hearth::onnx
