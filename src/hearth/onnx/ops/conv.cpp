// ONNX operators: Conv and ConvTranspose (op_registry.h), float32, any number of spatial dims.
// Conv: depthwise 1-D/2-D convs (group == C == M) run a direct vectorized kernel per channel;
// every other conv is a GEMM per (image, group) of the weights [M/g][C/g*k] by the im2col
// columns, which are written straight into the packed panels of kernels/float_kernels.h (a
// 1x1 stride-1 conv packs the input itself). Bias and the fused activation that fusion.cpp
// sets (hearth.activation / hearth.alpha / hearth.beta) are applied on each finished tile.
// ConvTranspose: a GEMM of the transposed weights by the input, then col2im.
// The plain scalar references are in tests/unit/onnx/conv_ops_test.cpp, which checks both ops
// against them on random shapes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "hearth/core/checked_math.h"
#include "hearth/kernels/kernel_table.h"
#include "hearth/onnx/kernels/float_kernels.h"
#include "hearth/onnx/op_registry.h"
#include "hearth/onnx/ops/op_common.h"

namespace hearth::onnx {
namespace {

using kern::Act;
using kern::Epilogue;

// The spatial geometry of a conv: per spatial dim, input, kernel, output, stride, dilation, pads.
struct Geom {
  size_t nd = 0;
  std::vector<int64_t> in, k, out, s, d, pb, pe;
  int64_t in_size() const { return prod(in); }
  int64_t out_size() const { return prod(out); }
  int64_t k_size() const { return prod(k); }
  static int64_t prod(const std::vector<int64_t>& v) {
    int64_t p = 1;
    for (int64_t x : v) p *= x;
    return p;
  }
};


// Reads kernel_shape / strides / dilations / pads for nd spatial dims (kernel from the weights
// unless given) and checks each value.
Status read_common(const Node& node, const Tensor& w, size_t nd, Geom& g) {
  g.nd = nd;
  g.k.assign(w.shape().begin() + 2, w.shape().end());
  if (node.has("kernel_shape")) {
    auto ks = node.attr_ints("kernel_shape");
    if (ks.size() != nd) return bad(node, fmt::format("kernel_shape has {} values, expected {}", ks.size(), nd));
    if (ks != g.k) return bad(node, fmt::format("kernel_shape {} does not match the weights' {}", shape_string(ks), shape_string(g.k)));
  }
  for (int64_t v : g.k) if (v <= 0) return bad(node, fmt::format("kernel dims must be > 0, are {}", shape_string(g.k)));
  g.s = node.attr_ints("strides", std::vector<int64_t>(nd, 1));
  g.d = node.attr_ints("dilations", std::vector<int64_t>(nd, 1));
  if (g.s.size() != nd) return bad(node, fmt::format("strides has {} values, expected {}", g.s.size(), nd));
  if (g.d.size() != nd) return bad(node, fmt::format("dilations has {} values, expected {}", g.d.size(), nd));
  for (size_t i = 0; i < nd; ++i) {
    if (g.s[i] <= 0 || g.s[i] > (int64_t{1} << 30)) return bad(node, fmt::format("strides must be in [1, 2^30], are {}", shape_string(g.s)));
    if (g.d[i] <= 0 || g.d[i] > (int64_t{1} << 30)) return bad(node, fmt::format("dilations must be in [1, 2^30], are {}", shape_string(g.d)));
  }
  auto pads = node.attr_ints("pads", std::vector<int64_t>(2 * nd, 0));
  if (pads.size() != 2 * nd) return bad(node, fmt::format("pads has {} values, expected {}", pads.size(), 2 * nd));
  for (int64_t p : pads) if (p < 0 || p > (int64_t{1} << 30)) return bad(node, fmt::format("pads must be in [0, 2^30], are {}", shape_string(pads)));
  g.pb.assign(pads.begin(), pads.begin() + static_cast<std::ptrdiff_t>(nd));
  g.pe.assign(pads.begin() + static_cast<std::ptrdiff_t>(nd), pads.end());
  return ok_status();
}

// (k - 1) * d + 1, checked.
Result<int64_t> effective_kernel(const Node& node, int64_t k, int64_t d) {
  auto m = checked_mul<int64_t>(k - 1, d);
  if (!m || *m > (int64_t{1} << 40)) return bad(node, "dilated kernel is too large");
  return *m + 1;
}

Status conv_geometry(const Node& node, const Tensor& x, const Tensor& w, Geom& g) {
  const size_t nd = x.rank() - 2;
  HEARTH_TRY(read_common(node, w, nd, g));
  g.in.assign(x.shape().begin() + 2, x.shape().end());
  g.out.resize(nd);
  const std::string ap = node.attr_string("auto_pad", "NOTSET");
  for (size_t i = 0; i < nd; ++i) {
    HEARTH_ASSIGN_OR_RETURN(int64_t ek, effective_kernel(node, g.k[i], g.d[i]));
    if (ap == "NOTSET") {
      const int64_t padded = g.in[i] + g.pb[i] + g.pe[i];  // each term < 2^40
      if (padded < ek) {
        return bad(node, fmt::format("the dilated kernel ({}) is larger than the padded input ({}) in spatial dim {}", ek, padded, i));
      }
      g.out[i] = (padded - ek) / g.s[i] + 1;
    } else if (ap == "VALID") {
      g.pb[i] = g.pe[i] = 0;
      if (g.in[i] < ek) return bad(node, fmt::format("the dilated kernel ({}) is larger than the input ({}) in spatial dim {}", ek, g.in[i], i));
      g.out[i] = (g.in[i] - ek) / g.s[i] + 1;
    } else if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
      g.out[i] = (g.in[i] + g.s[i] - 1) / g.s[i];
      const int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * g.s[i] + ek - g.in[i]);
      const int64_t small = total / 2;
      g.pb[i] = ap == "SAME_UPPER" ? small : total - small;
      g.pe[i] = total - g.pb[i];
    } else {
      return bad(node, fmt::format("auto_pad '{}' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", ap));
    }
  }
  return ok_status();
}

Epilogue read_epilogue(const Node& node) {
  Epilogue e;
  const std::string a = node.attr_string("hearth.activation", "");
  if (a == "relu") {
    e.act = Act::kRelu;
  } else if (a == "leaky_relu") {
    e.act = Act::kLeakyRelu;
    e.alpha = node.attr_float("hearth.alpha", 0.01f);
  } else if (a == "clip") {
    e.act = Act::kClip;
    e.alpha = node.attr_float("hearth.alpha", -INFINITY);
    e.beta = node.attr_float("hearth.beta", INFINITY);
  }
  return e;
}

// Rows [m0, m1) x columns [j0, j1) of y (rows `ld` apart): y = act(y + bias[row]).
void finish_tile(float* y, int64_t ld, int64_t m0, int64_t m1, int64_t j0, int64_t j1, const float* bias, const Epilogue& e) {
  if (!bias && e.act == Act::kNone) return;
  for (int64_t m = m0; m < m1; ++m) {
    float* r = y + m * ld;
    const float b = bias ? bias[m] : 0.0f;
    switch (e.act) {
      case Act::kNone:
        for (int64_t j = j0; j < j1; ++j) r[j] += b;
        break;
      case Act::kRelu:
        for (int64_t j = j0; j < j1; ++j) r[j] = std::max(r[j] + b, 0.0f);
        break;
      default:
        for (int64_t j = j0; j < j1; ++j) r[j] = kern::apply_act(r[j] + b, e);
    }
  }
}

// Writes im2col columns [j0, j1) of one group's input (c channels of g.in) straight into
// packed panels (nr columns each, relative to j0): Bp[(j-j0)/nr][row][(j-j0)%nr], rows
// (c, k...) in the weights' order.
void im2col_packed(const float* x, int64_t c_count, const Geom& g, int64_t j0, int64_t j1, int64_t nr, float* bp) {
  const int64_t ksz = g.k_size();
  const int64_t rows = c_count * ksz;
  const int64_t cols = j1 - j0;
  const int64_t panels = (cols + nr - 1) / nr;
  const int64_t isz = g.in_size();
  // Zero the padding columns of the last panel.
  if (cols % nr != 0) {
    float* last = bp + (panels - 1) * rows * nr;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = cols % nr; j < nr; ++j) last[r * nr + j] = 0.0f;
  }
  if (g.nd == 2) {
    const int64_t ih = g.in[0], iw = g.in[1], ow = g.out[1];
    for (int64_t c = 0; c < c_count; ++c) {
      const float* xc = x + c * isz;
      for (int64_t ky = 0; ky < g.k[0]; ++ky) {
        for (int64_t kx = 0; kx < g.k[1]; ++kx) {
          const int64_t row = (c * g.k[0] + ky) * g.k[1] + kx;
          int64_t j = j0;
          while (j < j1) {
            const int64_t oy = j / ow, ox0 = j % ow;
            const int64_t run = std::min(ow - ox0, j1 - j);
            const int64_t iy = oy * g.s[0] - g.pb[0] + ky * g.d[0];
            const bool row_ok = iy >= 0 && iy < ih;
            const float* xr = xc + iy * iw;
            const int64_t ixb = kx * g.d[1] - g.pb[1];
            int64_t jj = j - j0;
            float* dst = bp + (jj / nr) * rows * nr + row * nr;
            int64_t lane = jj % nr;
            const int64_t sx = g.s[1];
            // Output columns t in [ta, tb) of this run read inside the input row.
            int64_t ta = run, tb = run;
            if (row_ok) {
              const int64_t first = ox0 * sx + ixb;  // input column of t = 0
              ta = first >= 0 ? 0 : std::min(run, (-first + sx - 1) / sx);
              tb = first >= iw ? 0 : std::min(run, (iw - first + sx - 1) / sx);
              if (tb < ta) tb = ta;
            }
            int64_t t = 0;
            const float* src = xr + ox0 * sx + ixb;
            while (t < run) {
              const int64_t seg = std::min(nr - lane, run - t);  // within one panel
              float* d = dst + lane;
              for (int64_t q = 0; q < seg; ++q) {
                const int64_t tt = t + q;
                d[q] = (tt >= ta && tt < tb) ? src[tt * sx] : 0.0f;
              }
              t += seg;
              lane += seg;
              if (lane == nr) lane = 0, dst += rows * nr;
            }
            j += run;
          }
        }
      }
    }
    return;
  }
  // Any number of spatial dims: per row, walk the output coordinates of columns [j0, j1).
  std::vector<int64_t> kc(g.nd), oc(g.nd);
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t c = row / ksz;
    int64_t rem = row % ksz;
    for (size_t i = g.nd; i-- > 0;) {
      kc[i] = rem % g.k[i];
      rem /= g.k[i];
    }
    int64_t rj = j0;
    for (size_t i = g.nd; i-- > 0;) {
      oc[i] = rj % g.out[i];
      rj /= g.out[i];
    }
    const float* xc = x + c * isz;
    for (int64_t j = j0; j < j1; ++j) {
      int64_t off = 0;
      bool ok = true;
      for (size_t i = 0; i < g.nd; ++i) {
        const int64_t p = oc[i] * g.s[i] - g.pb[i] + kc[i] * g.d[i];
        ok = ok && p >= 0 && p < g.in[i];
        off = off * g.in[i] + p;
      }
      const int64_t jj = j - j0;
      bp[(jj / nr) * rows * nr + row * nr + jj % nr] = ok ? xc[off] : 0.0f;
      for (size_t i = g.nd; i-- > 0;) {
        if (++oc[i] < g.out[i]) break;
        oc[i] = 0;
      }
    }
  }
}

bool is_pointwise(const Geom& g) {
  for (size_t i = 0; i < g.nd; ++i) {
    if (g.k[i] != 1 || g.s[i] != 1 || g.pb[i] != 0 || g.pe[i] != 0) return false;
  }
  return true;
}

// Depthwise (one input and one output channel per group), 1-D or 2-D.
void conv_depthwise(OpContext& ctx, const kern::FloatKernels& fk, const float* x, const float* w, const float* bias,
                    float* y, int64_t n, int64_t c, const Geom& g, const Epilogue& ep) {
  const bool two = g.nd == 2;
  const int64_t ih = two ? g.in[0] : 1, iw = g.in[g.nd - 1];
  const int64_t kh = two ? g.k[0] : 1, kw = g.k[g.nd - 1];
  const int64_t sh = two ? g.s[0] : 1, sw = g.s[g.nd - 1];
  const int64_t dh = two ? g.d[0] : 1, dw = g.d[g.nd - 1];
  const int64_t pt = two ? g.pb[0] : 0, pl = g.pb[g.nd - 1];
  const int64_t oh = two ? g.out[0] : 1, ow = g.out[g.nd - 1];
  // Padded rows cover what the kernel reads: (oh-1)*sh + (kh-1)*dh + 1 rows, likewise columns.
  const int64_t ph = (oh - 1) * sh + (kh - 1) * dh + 1;
  const int64_t pwid = (ow - 1) * sw + (kw - 1) * dw + 1;
  const int64_t pw = (pwid + sw - 1) / sw + 2 * 16;  // phase-plane row, with slack
  const int64_t plane = ph * pw;
  const int64_t per_channel = plane * sw;
  ctx.pool.parallel_for(n * c, 1, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> buf;
    if (buf.size() < static_cast<size_t>(per_channel)) buf.resize(static_cast<size_t>(per_channel));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ch = t % c;
      const float* xc = x + t * ih * iw;
      float* p = buf.data();
      // Input columns [x0, x1) land at padded columns [x0 + pl, x1 + pl).
      const int64_t x0 = std::max<int64_t>(0, -pl), x1 = std::min<int64_t>(iw, pwid - pl);
      for (int64_t ph_i = 0; ph_i < sw; ++ph_i) {
        for (int64_t r = 0; r < ph; ++r) {
          float* dst = p + ph_i * plane + r * pw;
          const int64_t yy = r - pt;
          if (yy < 0 || yy >= ih || x0 >= x1) {
            std::fill(dst, dst + pw, 0.0f);
            continue;
          }
          const float* xr = xc + yy * iw;
          if (sw == 1) {
            std::fill(dst, dst + x0 + pl, 0.0f);
            std::memcpy(dst + x0 + pl, xr + x0, sizeof(float) * static_cast<size_t>(x1 - x0));
            std::fill(dst + x1 + pl, dst + pw, 0.0f);
            continue;
          }
          for (int64_t j = 0; j < pw; ++j) {
            const int64_t xx = j * sw + ph_i - pl;
            dst[j] = (xx >= x0 && xx < x1) ? xr[xx] : 0.0f;
          }
        }
      }
      kern::DepthwiseArgs a{p, pw, plane, w + ch * kh * kw, kh, kw, sh, sw, dh, dw, bias ? bias[ch] : 0.0f,
                            y + t * oh * ow, oh, ow, ep};
      fk.depthwise(a);
    }
  });
}

// Stride-1 1-D/2-D convs with enough input channels per group: no im2col. The input is padded
// once per (image, group); output columns are computed on the padded width (pw), where each
// kernel tap's input is the padded planes shifted by a constant offset, so each tap is one
// GEMM reading B in place (gemm_direct), accumulated; the columns past ow are dropped when
// the tile is written out.
void conv_taps(OpContext& ctx, const kern::FloatKernels& fk, const float* xd, const float* wd, const float* bd, float* yd,
               int64_t nb, int64_t c, int64_t m, int64_t group, const Geom& g, const Epilogue& ep) {
  const bool two = g.nd == 2;
  const int64_t ih = two ? g.in[0] : 1, iw = g.in[g.nd - 1];
  const int64_t kh = two ? g.k[0] : 1, kw = g.k[g.nd - 1];
  const int64_t dh = two ? g.d[0] : 1, dw = g.d[g.nd - 1];
  const int64_t pt = two ? g.pb[0] : 0, pl = g.pb[g.nd - 1];
  const int64_t oh = two ? g.out[0] : 1, ow = g.out[g.nd - 1];
  const int64_t ph = oh + (kh - 1) * dh, pw = ow + (kw - 1) * dw;  // the padded extent read
  const int64_t plane = ph * pw, taps = kh * kw;
  const int64_t cg = c / group, mg = m / group, isz = ih * iw, osz = oh * ow;
  const int64_t ncols = (oh - 1) * pw + ow;  // columns on the padded-width grid up to the last output
  std::vector<float> wt(static_cast<size_t>(group * taps * mg * cg));
  for (int64_t gi = 0; gi < group; ++gi)
    for (int64_t mi = 0; mi < mg; ++mi)
      for (int64_t ci = 0; ci < cg; ++ci)
        for (int64_t t = 0; t < taps; ++t)
          wt[static_cast<size_t>(((gi * taps + t) * mg + mi) * cg + ci)] = wd[((gi * mg + mi) * cg + ci) * taps + t];
  thread_local std::vector<float> padbuf;
  if (padbuf.size() < static_cast<size_t>(cg * plane)) padbuf.resize(static_cast<size_t>(cg * plane));
  float* pad = padbuf.data();  // (a lambda naming padbuf would see each thread's own vector)
  const int64_t nr = fk.nr;
  const int64_t chunk = std::max<int64_t>(nr, 512 / nr * nr);
  const int64_t n_chunks = (ncols + chunk - 1) / chunk;
  const int64_t threads = ctx.pool.size();
  int64_t m_parts = 1;
  if (n_chunks < 4 * threads) m_parts = std::clamp<int64_t>(4 * threads / n_chunks, 1, std::max<int64_t>(1, mg / 16));
  const int64_t m_step = (mg + m_parts - 1) / m_parts;
  const int64_t x0 = std::max<int64_t>(0, -pl), x1 = std::min<int64_t>(iw, pw - pl);
  for (int64_t ni = 0; ni < nb; ++ni) {
    for (int64_t gi = 0; gi < group; ++gi) {
      const float* xg = xd + (ni * c + gi * cg) * isz;
      ctx.pool.parallel_for(cg, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t ci = c0; ci < c1; ++ci) {
          for (int64_t r = 0; r < ph; ++r) {
            float* dst = pad + ci * plane + r * pw;
            const int64_t yy = r - pt;
            if (yy < 0 || yy >= ih || x0 >= x1) {
              std::fill(dst, dst + pw, 0.0f);
              continue;
            }
            std::fill(dst, dst + x0 + pl, 0.0f);
            std::memcpy(dst + x0 + pl, xg + ci * isz + yy * iw + x0, sizeof(float) * static_cast<size_t>(x1 - x0));
            std::fill(dst + x1 + pl, dst + pw, 0.0f);
          }
        }
      });
      ctx.pool.parallel_for(n_chunks * m_parts, 1, [&](int64_t t0, int64_t t1) {
        thread_local std::vector<float> cbuf;
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t ck = t / m_parts, mp = t % m_parts;
          const int64_t j0 = ck * chunk, j1 = std::min(ncols, j0 + chunk), cols = j1 - j0;
          const int64_t m0 = mp * m_step, m1 = std::min(mg, m0 + m_step);
          if (m0 >= m1) continue;
          if (cbuf.size() < static_cast<size_t>((m1 - m0) * cols)) cbuf.resize(static_cast<size_t>((m1 - m0) * cols));
          for (int64_t tap = 0; tap < taps; ++tap) {
            const int64_t off = (tap / kw) * dh * pw + (tap % kw) * dw;
            fk.gemm_direct(m1 - m0, cols, cg, wt.data() + ((gi * taps + tap) * mg + m0) * cg, cg, pad + off + j0, plane, cbuf.data(),
                           cols, tap > 0);
          }
          for (int64_t mi = m0; mi < m1; ++mi) {
            const int64_t oc = gi * mg + mi;
            const float b = bd ? bd[oc] : 0.0f;
            const float* src = cbuf.data() + (mi - m0) * cols;
            float* yc = yd + (ni * m + oc) * osz;
            int64_t oy = j0 / pw, ox = j0 % pw;
            for (int64_t j = 0; j < cols; ++j) {
              if (ox < ow) yc[oy * ow + ox] = kern::apply_act(src[j] + b, ep);
              if (++ox == pw) ox = 0, ++oy;
            }
          }
        }
      });
    }
  }
}

Status conv_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 3));
  const Tensor& x = *in[0];
  const Tensor& w = *in[1];
  const Tensor* b = in.size() > 2 ? in[2] : nullptr;
  HEARTH_TRY(require_dtype(node, x, "input X", {DType::kFloat}));
  HEARTH_TRY(require_dtype(node, w, "weights W", {DType::kFloat}));
  if (b) HEARTH_TRY(require_dtype(node, *b, "bias B", {DType::kFloat}));
  if (x.rank() < 3) return bad(node, fmt::format("input X must have rank >= 3 (N, C, spatial...), has shape {}", shape_string(x.shape())));
  if (w.rank() != x.rank()) {
    return bad(node, fmt::format("weights W {} must have the rank of X {}", shape_string(w.shape()), shape_string(x.shape())));
  }
  const int64_t group = node.attr_int("group", 1);
  const int64_t nb = x.dim(0), c = x.dim(1), m = w.dim(0);
  if (group <= 0) return bad(node, fmt::format("group must be > 0, is {}", group));
  if (c % group != 0 || w.dim(1) * group != c) {
    return bad(node, fmt::format("input channels {} must equal group {} x the weights' channels {}", c, group, w.dim(1)));
  }
  if (m % group != 0) return bad(node, fmt::format("output channels {} are not divisible by group {}", m, group));
  if (b && (b->rank() != 1 || b->dim(0) != m)) return bad(node, fmt::format("bias B must have shape [{}], has {}", m, shape_string(b->shape())));
  Geom g;
  HEARTH_TRY(conv_geometry(node, x, w, g));
  Shape ys{nb, m};
  ys.insert(ys.end(), g.out.begin(), g.out.end());
  // Every path below writes each element (the sanitizer pass poisons this buffer to check).
  HEARTH_ASSIGN_OR_RETURN(Tensor y, ctx.alloc_uninit(DType::kFloat, ys));
  out[0] = y;
  if (y.numel() == 0 || x.numel() == 0) {
    // An empty batch / channel set / input: y is act(bias) (no products), or empty.
    if (y.numel() > 0) {
      const Epilogue ep = read_epilogue(node);
      const int64_t osz = g.out_size();
      for (int64_t i = 0; i < nb * m; ++i)
        for (int64_t j = 0; j < osz; ++j) y.data<float>()[i * osz + j] = kern::apply_act(b ? b->data<float>()[i % m] : 0.0f, ep);
    }
    return ok_status();
  }
  const Epilogue ep = read_epilogue(node);
  const kern::FloatKernels& fk = kern::float_kernels_for(ctx.kt.name);
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  const float* bd = b ? b->data<float>() : nullptr;
  float* yd = y.data<float>();

  // The direct paths pad the input into scratch covering what the kernel reads; a geometry
  // whose padded extent dwarfs its input and output (huge dilations with matching pads) goes
  // to im2col instead, whose scratch is bounded by the weights.
  auto scratch_ok = [&](int64_t channels) {
    __int128 ph = 1, pw = 1;
    for (size_t i = 0; i < g.nd; ++i) {
      const __int128 e = static_cast<__int128>(g.out[i] - 1) * g.s[i] + static_cast<__int128>(g.k[i] - 1) * g.d[i] + 1;
      (i + 1 == g.nd ? pw : ph) *= std::min<__int128>(e, __int128{1} << 40);  // larger is refused anyway
    }
    const __int128 need = static_cast<__int128>(channels) * ph * (pw + 32 * g.s[g.nd - 1]);
    return need <= 4 * static_cast<__int128>(x.numel() / std::max<int64_t>(nb, 1) + y.numel() / std::max<int64_t>(nb, 1)) + (1 << 20);
  };
  if (group == c && m == c && g.nd <= 2 && scratch_ok(1)) {
    conv_depthwise(ctx, fk, xd, wd, bd, yd, nb, c, g, ep);
    return ok_status();
  }
  const int64_t cg = c / group, mg = m / group;
  const int64_t kg = cg * g.k_size();  // weights per output channel
  const int64_t isz = g.in_size(), osz = g.out_size();
  const bool pointwise = is_pointwise(g);
  bool unit_stride = g.nd <= 2;
  for (size_t i = 0; i < g.nd; ++i) unit_stride = unit_stride && g.s[i] == 1;
  if (!pointwise && unit_stride && cg >= 8 && scratch_ok(cg)) {
    conv_taps(ctx, fk, xd, wd, bd, yd, nb, c, m, group, g, ep);
    return ok_status();
  }
  // Column chunks: a multiple of nr, about 128K floats of packed columns, 128..1024 columns.
  const int64_t nr = fk.nr;
  int64_t chunk = std::clamp<int64_t>(131072 / std::max<int64_t>(kg, 1), 128, 1024) / nr * nr;
  chunk = std::max(chunk, nr);
  const int64_t n_chunks = (osz + chunk - 1) / chunk;
  // Split the output channels too when there are few column chunks for the threads.
  const int64_t base_tasks = nb * group * n_chunks;
  int64_t m_parts = 1;
  if (base_tasks < 4 * static_cast<int64_t>(ctx.pool.size())) {
    m_parts = std::clamp<int64_t>(4 * static_cast<int64_t>(ctx.pool.size()) / base_tasks, 1, std::max<int64_t>(1, mg / 16));
  }
  const int64_t m_step = (mg + m_parts - 1) / m_parts;
  ctx.pool.parallel_for(base_tasks * m_parts, 1, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> packed;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t mp = t % m_parts;
      const int64_t rest = t / m_parts;
      const int64_t ck = rest % n_chunks;
      const int64_t gi = (rest / n_chunks) % group;
      const int64_t ni = rest / n_chunks / group;
      const int64_t j0 = ck * chunk, j1 = std::min(osz, j0 + chunk);
      const int64_t m0 = mp * m_step, m1 = std::min(mg, m0 + m_step);
      if (m0 >= m1) continue;
      const float* xg = xd + (ni * c + gi * cg) * isz;
      float* yg = yd + (ni * m + gi * mg) * osz;
      if (pointwise) {
        // The input is B as it stands: [cg][isz], read in place.
        fk.gemm_direct(m1 - m0, j1 - j0, kg, wd + (gi * mg + m0) * kg, kg, xg + j0, isz, yg + m0 * osz + j0, osz, false);
      } else {
        const size_t need = static_cast<size_t>(kern::packed_b_floats(fk, kg, j1 - j0));
        if (packed.size() < need) packed.resize(need);
        im2col_packed(xg, cg, g, j0, j1, nr, packed.data());
        fk.gemm_packed(m1 - m0, j1 - j0, kg, wd + (gi * mg + m0) * kg, kg, packed.data(), yg + m0 * osz + j0, osz, false);
      }
      finish_tile(yg, osz, m0, m1, j0, j1, bd ? bd + gi * mg : nullptr, ep);
    }
  });
  return ok_status();
}

// ---- ConvTranspose ----

Status conv_transpose_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 2, 3));
  const Tensor& x = *in[0];
  const Tensor& w = *in[1];
  const Tensor* b = in.size() > 2 ? in[2] : nullptr;
  HEARTH_TRY(require_dtype(node, x, "input X", {DType::kFloat}));
  HEARTH_TRY(require_dtype(node, w, "weights W", {DType::kFloat}));
  if (b) HEARTH_TRY(require_dtype(node, *b, "bias B", {DType::kFloat}));
  if (x.rank() < 3) return bad(node, fmt::format("input X must have rank >= 3 (N, C, spatial...), has shape {}", shape_string(x.shape())));
  if (w.rank() != x.rank()) {
    return bad(node, fmt::format("weights W {} must have the rank of X {}", shape_string(w.shape()), shape_string(x.shape())));
  }
  const int64_t group = node.attr_int("group", 1);
  const int64_t nb = x.dim(0), c = x.dim(1);
  if (group <= 0) return bad(node, fmt::format("group must be > 0, is {}", group));
  if (w.dim(0) != c || c % group != 0) {
    return bad(node, fmt::format("weights W {} must have X's {} channels first, divisible by group {}", shape_string(w.shape()), c, group));
  }
  auto m_opt = checked_mul<int64_t>(w.dim(1), group);
  if (!m_opt) return bad(node, "output channels overflow");
  const int64_t m = *m_opt, mg = w.dim(1), cg = c / group;
  if (b && (b->rank() != 1 || b->dim(0) != m)) return bad(node, fmt::format("bias B must have shape [{}], has {}", m, shape_string(b->shape())));
  const size_t nd = x.rank() - 2;
  Geom g;
  HEARTH_TRY(read_common(node, w, nd, g));
  g.in.assign(x.shape().begin() + 2, x.shape().end());
  auto opad = node.attr_ints("output_padding", std::vector<int64_t>(nd, 0));
  if (opad.size() != nd) return bad(node, fmt::format("output_padding has {} values, expected {}", opad.size(), nd));
  for (size_t i = 0; i < nd; ++i) {
    if (opad[i] < 0 || opad[i] >= std::max(g.s[i], g.d[i])) {
      return bad(node, fmt::format("output_padding {} must be >= 0 and less than the stride or dilation", shape_string(opad)));
    }
  }
  const std::string ap = node.attr_string("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "VALID" && ap != "SAME_UPPER" && ap != "SAME_LOWER") {
    return bad(node, fmt::format("auto_pad '{}' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", ap));
  }
  std::vector<int64_t> oshape = node.attr_ints("output_shape");
  if (!oshape.empty()) {
    if (oshape.size() == nd + 2) oshape.erase(oshape.begin(), oshape.begin() + 2);
    if (oshape.size() != nd) return bad(node, fmt::format("output_shape has {} values, expected {}", oshape.size(), nd));
  }
  g.out.resize(nd);
  for (size_t i = 0; i < nd; ++i) {
    HEARTH_ASSIGN_OR_RETURN(int64_t ek, effective_kernel(node, g.k[i], g.d[i]));
    // full = s * (in - 1) + output_padding + ek: what the unpadded output would be.
    auto sm = checked_mul<int64_t>(g.s[i], std::max<int64_t>(g.in[i] - 1, 0));
    if (!sm || *sm > (int64_t{1} << 40)) return bad(node, "output size overflows");
    const int64_t full = *sm + opad[i] + ek;
    int64_t target = -1;
    if (!oshape.empty()) {
      target = oshape[i];
    } else if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
      auto t = checked_mul<int64_t>(g.in[i], g.s[i]);
      if (!t) return bad(node, "output size overflows");
      target = *t;
    }
    if (target >= 0) {
      // The spec's split, with Python's floor division: a target beyond the full output
      // (total < 0) gives a negative pad, i.e. extra outputs that only hold the bias.
      const int64_t total = full - target;
      if (target > (int64_t{1} << 40)) return bad(node, fmt::format("output_shape {} is too large", shape_string(oshape)));
      const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
      if (ap == "SAME_UPPER") {
        g.pb[i] = half;
        g.pe[i] = total - half;
      } else {
        g.pb[i] = total - half;
        g.pe[i] = half;
      }
    } else if (ap == "VALID") {
      g.pb[i] = g.pe[i] = 0;
    }
    g.out[i] = full - g.pb[i] - g.pe[i];
    if (g.out[i] < 0) return bad(node, fmt::format("pads leave a negative output size in spatial dim {}", i));
  }
  Shape ys{nb, m};
  ys.insert(ys.end(), g.out.begin(), g.out.end());
  HEARTH_ASSIGN_OR_RETURN(Tensor y, ctx.alloc(DType::kFloat, ys));
  out[0] = y;
  if (y.numel() == 0) return ok_status();
  const int64_t ksz = g.k_size(), isz = g.in_size(), osz = g.out_size();
  auto rows_opt = checked_mul<int64_t>(mg, ksz);
  if (!rows_opt) return bad(node, "kernel too large");
  const int64_t rows = *rows_opt;  // rows of the column matrix: (m, k...)
  HEARTH_ASSIGN_OR_RETURN(const int64_t col_floats, checked_numel(Shape{rows, isz}));
  if (static_cast<uint64_t>(col_floats) * sizeof(float) > ctx.buffers.max_tensor_bytes()) {
    return make_error(ErrorCode::kResourceExhausted, "{}: the column matrix ({} x {} floats) is above the tensor limit of {} bytes",
                      node.describe(), rows, isz, ctx.buffers.max_tensor_bytes());
  }
  const kern::FloatKernels& fk = kern::float_kernels_for(ctx.kt.name);
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  const float* bd = b ? b->data<float>() : nullptr;
  float* yd = y.data<float>();
  std::vector<float> wt(static_cast<size_t>(rows * cg));
  // The column matrix, fully written by each GEMM: kept per thread across calls (no zeroing,
  // no fresh pages each run).
  thread_local std::vector<float> cols;
  if (cols.size() < static_cast<size_t>(rows * isz)) cols.resize(static_cast<size_t>(rows * isz));
  float* colsd = cols.data();  // (a lambda naming `cols` would see each thread's own vector)
  const int64_t nr = fk.nr;
  const int64_t chunk = std::max<int64_t>(nr, std::clamp<int64_t>(131072 / std::max<int64_t>(cg, 1), 128, 1024) / nr * nr);
  const int64_t n_chunks = (isz + chunk - 1) / chunk;
  for (int64_t ni = 0; ni < nb; ++ni) {
    for (int64_t gi = 0; gi < group; ++gi) {
      // A = W_g^T: [rows][cg], W_g is [cg][rows].
      const float* wg = wd + gi * cg * rows;
      for (int64_t ci = 0; ci < cg; ++ci)
        for (int64_t r = 0; r < rows; ++r) wt[static_cast<size_t>(r * cg + ci)] = wg[ci * rows + r];
      const float* xg = xd + (ni * c + gi * cg) * isz;
      if (isz > 0 && cg > 0) {
        ctx.pool.parallel_for(n_chunks, 1, [&](int64_t t0, int64_t t1) {
          thread_local std::vector<float> packed;
          for (int64_t t = t0; t < t1; ++t) {
            const int64_t j0 = t * chunk, j1 = std::min(isz, j0 + chunk);
            const size_t need = static_cast<size_t>(kern::packed_b_floats(fk, cg, j1 - j0));
            if (packed.size() < need) packed.resize(need);
            fk.pack_b(cg, j1 - j0, xg + j0, isz, packed.data());
            fk.gemm_packed(rows, j1 - j0, cg, wt.data(), cg, packed.data(), colsd + j0, isz, false);
          }
        });
      } else {
        std::fill(colsd, colsd + rows * isz, 0.0f);
      }
      // col2im: each output channel from its own rows, so channels run in parallel.
      float* yg = yd + (ni * m + gi * mg) * osz;
      ctx.pool.parallel_for(mg, 1, [&](int64_t m0, int64_t m1) {
        std::vector<int64_t> kc(nd), ic(nd);
        for (int64_t mi = m0; mi < m1; ++mi) {
          float* yc = yg + mi * osz;
          const float bv = bd ? bd[gi * mg + mi] : 0.0f;
          std::fill(yc, yc + osz, bv);
          for (int64_t kr = 0; kr < ksz; ++kr) {
            int64_t rem = kr;
            for (size_t i = nd; i-- > 0;) {
              kc[i] = rem % g.k[i];
              rem /= g.k[i];
            }
            const float* cr = colsd + (mi * ksz + kr) * isz;
            std::fill(ic.begin(), ic.end(), 0);
            const int64_t last = static_cast<int64_t>(nd) - 1;
            for (int64_t j = 0; j < isz; j += g.in[static_cast<size_t>(last)]) {
              // Outer coordinates fixed; the innermost dim runs.
              int64_t off = 0;
              bool ok = true;
              for (int64_t i = 0; i < last; ++i) {
                const size_t u = static_cast<size_t>(i);
                const int64_t p = ic[u] * g.s[u] - g.pb[u] + kc[u] * g.d[u];
                ok = ok && p >= 0 && p < g.out[u];
                off = off * g.out[u] + p;
              }
              if (ok) {
                const size_t u = static_cast<size_t>(last);
                float* yr = yc + off * g.out[u];
                const int64_t base = kc[u] * g.d[u] - g.pb[u];
                for (int64_t q = 0; q < g.in[u]; ++q) {
                  const int64_t p = q * g.s[u] + base;
                  if (p >= 0 && p < g.out[u]) yr[p] += cr[j + q];
                }
              }
              for (int64_t i = last - 1; i >= 0; --i) {
                const size_t u = static_cast<size_t>(i);
                if (++ic[u] < g.in[u]) break;
                ic[u] = 0;
              }
            }
          }
        }
      });
    }
  }
  return ok_status();
}

}  // namespace

void register_conv_ops(OpRegistry& r) {
  r.add("Conv", 1, &conv_op);
  r.add("ConvTranspose", 1, &conv_transpose_op);
}

}  // namespace hearth::onnx
