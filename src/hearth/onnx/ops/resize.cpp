// ONNX operators: Resize (opsets 10, 11, 13, 18, 19): nearest (every nearest_mode), n-linear and
// cubic, every coordinate_transformation_mode, scales or sizes, axes, keep_aspect_ratio_policy;
// separable taps per axis, applied over the taps' product; Upsample (opsets 7 and 9) on the same
// code. Checked by tests/unit/onnx/nn_ops_test.cpp against references written there.
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


// ---- Resize / Upsample ----

enum class Coord { kHalfPixel, kPytorchHalfPixel, kAlignCorners, kAsymmetric, kTfHalfPixelForNn, kTfCropAndResize, kHalfPixelSymmetric };
enum class Nearest { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };
enum class Mode { kNearest, kLinear, kCubic };

struct ResizeSpec {
  Mode mode = Mode::kNearest;
  Coord coord = Coord::kHalfPixel;
  Nearest nearest = Nearest::kRoundPreferFloor;
  float cubic_a = -0.75f;
  bool exclude_outside = false;
  float extrapolation = 0.0f;
};

// The taps of one output coordinate along one axis: input indices and weights; idx -1 marks
// an extrapolated (tf_crop_and_resize outside the image) coordinate.
struct Taps {
  int64_t n = 0;  // taps per output coordinate
  std::vector<int64_t> idx;
  std::vector<float> w;
};

// len_f: the resized length the coordinate formulas use (in * scale when scales are given, so
// not floored; the output size when sizes are).
Taps axis_taps(const ResizeSpec& sp, int64_t in, int64_t out, double scale, double len_f, double roi_start, double roi_end) {
  Taps t;
  t.n = sp.mode == Mode::kNearest ? 1 : (sp.mode == Mode::kLinear ? 2 : 4);
  // An axis of scale 1 and equal size is copied as is (as ONNX Runtime does; the formulas would
  // shift tf_half_pixel_for_nn and the ceil roundings by one).
  if (in == out && scale == 1.0 && sp.coord != Coord::kTfCropAndResize) t.n = 1;
  t.idx.resize(static_cast<size_t>(out * t.n));
  t.w.resize(static_cast<size_t>(out * t.n));
  for (int64_t o = 0; o < out; ++o) {
    int64_t* ix = &t.idx[static_cast<size_t>(o * t.n)];
    float* w = &t.w[static_cast<size_t>(o * t.n)];
    if (t.n == 1 && in == out && scale == 1.0 && sp.coord != Coord::kTfCropAndResize) {
      ix[0] = o, w[0] = 1.0f;
      continue;
    }
    const double xr = static_cast<double>(o);
    double x = 0;
    switch (sp.coord) {
      case Coord::kHalfPixel: x = (xr + 0.5) / scale - 0.5; break;
      case Coord::kPytorchHalfPixel: x = len_f > 1 ? (xr + 0.5) / scale - 0.5 : 0.0; break;
      case Coord::kAlignCorners: x = len_f == 1 ? 0.0 : xr * static_cast<double>(in - 1) / (len_f - 1); break;
      case Coord::kAsymmetric: x = xr / scale; break;
      case Coord::kTfHalfPixelForNn: x = (xr + 0.5) / scale; break;
      case Coord::kTfCropAndResize:
        x = len_f > 1 ? roi_start * static_cast<double>(in - 1) + xr * (roi_end - roi_start) * static_cast<double>(in - 1) / (len_f - 1)
                    : 0.5 * (roi_start + roi_end) * static_cast<double>(in - 1);
        break;
      case Coord::kHalfPixelSymmetric: {
        const double adj = static_cast<double>(out) / (scale * static_cast<double>(in));
        const double center = static_cast<double>(in) / 2;
        x = center * (1 - adj) + (xr + 0.5) / scale - 0.5;
        break;
      }
    }
    if (sp.coord == Coord::kTfCropAndResize && (x < 0 || x > static_cast<double>(in - 1))) {
      for (int64_t k = 0; k < t.n; ++k) ix[k] = -1, w[k] = k == 0 ? 1.0f : 0.0f;
      continue;
    }
    auto clampi = [&](int64_t v) { return std::clamp<int64_t>(v, 0, in - 1); };
    if (sp.mode == Mode::kNearest) {
      int64_t v = 0;
      switch (sp.nearest) {
        case Nearest::kRoundPreferFloor: v = (x == std::floor(x) + 0.5) ? static_cast<int64_t>(std::floor(x)) : static_cast<int64_t>(std::round(x)); break;
        case Nearest::kRoundPreferCeil: v = (x == std::floor(x) + 0.5) ? static_cast<int64_t>(std::ceil(x)) : static_cast<int64_t>(std::round(x)); break;
        case Nearest::kFloor: v = static_cast<int64_t>(std::floor(x)); break;
        case Nearest::kCeil: v = static_cast<int64_t>(std::ceil(x)); break;
      }
      ix[0] = clampi(v), w[0] = 1.0f;
    } else if (sp.mode == Mode::kLinear) {
      // Coordinates before the first / after the last sample take the edge value.
      const double xc = std::clamp(x, 0.0, static_cast<double>(in - 1));
      const int64_t i0 = static_cast<int64_t>(std::floor(xc));
      const double f = xc - static_cast<double>(i0);
      ix[0] = clampi(i0), ix[1] = clampi(i0 + 1);
      w[0] = static_cast<float>(1 - f), w[1] = static_cast<float>(f);
    } else {
      const int64_t i0 = static_cast<int64_t>(std::floor(x));
      const double f = x - static_cast<double>(i0);
      const double a = sp.cubic_a;
      auto cubic = [a](double d) {
        d = std::abs(d);
        if (d <= 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
        if (d < 2) return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
        return 0.0;
      };
      double ws[4], sum = 0;
      for (int k = 0; k < 4; ++k) {
        const int64_t p = i0 - 1 + k;
        ws[k] = cubic(f + 1 - k);
        if (sp.exclude_outside && (p < 0 || p >= in)) ws[k] = 0;
        sum += ws[k];
      }
      for (int k = 0; k < 4; ++k) {
        ix[k] = clampi(i0 - 1 + k);
        w[k] = static_cast<float>(sp.exclude_outside && sum != 0 ? ws[k] / sum : ws[k]);
      }
    }
  }
  return t;
}

Status resize_run(OpContext& ctx, const Node& node, const ResizeSpec& sp, const Tensor& x, const Shape& out_shape,
                  const std::vector<double>& scales, const std::vector<double>& lens, const std::vector<double>& roi,
                  std::vector<Tensor>& out) {
  HEARTH_ASSIGN_OR_RETURN(Tensor y, ctx.alloc(DType::kFloat, out_shape));
  out[0] = y;
  if (y.numel() == 0) return ok_status();
  if (x.numel() == 0) return bad(node, "cannot resize an empty input to a non-empty output");
  const size_t r = x.rank();
  std::vector<Taps> taps(r);
  for (size_t i = 0; i < r; ++i) {
    taps[i] = axis_taps(sp, x.dim(i), out_shape[i], scales[i], lens[i], roi.empty() ? 0.0 : roi[i], roi.empty() ? 1.0 : roi[r + i]);
  }
  // Each output element reads the product of the axes' taps: bounded (a cubic resize of
  // every axis of a rank-16 tensor would read 4^16 inputs per element).
  int64_t reads = 1;
  for (size_t i = 0; i < r; ++i) reads *= taps[i].n;  // <= 4^16
  if (reads > 4096) {
    return bad(node, fmt::format("resizes too many axes at once ({} input reads per output element)", reads));
  }
  // Input strides.
  std::vector<int64_t> st(r, 1);
  for (size_t i = r - 1; i-- > 0;) st[i] = st[i + 1] * x.dim(i + 1);
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  const int64_t ow = out_shape[r - 1];
  const int64_t rows = y.numel() / ow;
  const Taps& tl = taps[r - 1];
  ctx.pool.parallel_for(rows, std::max<int64_t>(1, 4096 / ow), [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> oc(r);
    std::vector<int64_t> offs;
    std::vector<float> wts;
    for (int64_t row = r0; row < r1; ++row) {
      int64_t rem = row;
      for (size_t i = r - 1; i-- > 0;) oc[i] = rem % out_shape[i], rem /= out_shape[i];
      // Outer taps: the product over the leading axes.
      offs.assign(1, 0);
      wts.assign(1, 1.0f);
      bool extrapolated = false;
      for (size_t i = 0; i + 1 < r; ++i) {
        const Taps& t = taps[i];
        std::vector<int64_t> no;
        std::vector<float> nw;
        for (size_t a = 0; a < offs.size(); ++a) {
          for (int64_t k = 0; k < t.n; ++k) {
            const size_t at = static_cast<size_t>(oc[i] * t.n + k);
            if (t.idx[at] < 0) {
              extrapolated = true;
              continue;
            }
            if (t.w[at] == 0.0f) continue;
            no.push_back(offs[a] + t.idx[at] * st[i]);
            nw.push_back(wts[a] * t.w[at]);
          }
        }
        offs.swap(no);
        wts.swap(nw);
      }
      float* yr = yd + row * ow;
      if (extrapolated) {
        std::fill(yr, yr + ow, sp.extrapolation);
        continue;
      }
      for (int64_t o = 0; o < ow; ++o) {
        float s = 0;
        const int64_t* ti = &tl.idx[static_cast<size_t>(o * tl.n)];
        const float* tw = &tl.w[static_cast<size_t>(o * tl.n)];
        if (ti[0] < 0) {
          yr[o] = sp.extrapolation;
          continue;
        }
        for (size_t a = 0; a < offs.size(); ++a) {
          const float* xp = xd + offs[a];
          float inner = 0;
          for (int64_t k = 0; k < tl.n; ++k) inner += tw[k] * xp[ti[k]];
          s += wts[a] * inner;
        }
        yr[o] = s;
      }
    }
  });
  return ok_status();
}

Status parse_resize_spec(const Node& node, int64_t opset, ResizeSpec& sp) {
  const std::string mode = node.attr_string("mode", "nearest");
  if (mode == "nearest") sp.mode = Mode::kNearest;
  else if (mode == "linear" || mode == "bilinear") sp.mode = Mode::kLinear;
  else if ((mode == "cubic") && opset >= 11) sp.mode = Mode::kCubic;
  else return bad(node, fmt::format("mode '{}' is not nearest, linear or cubic", mode));
  if (opset < 11) {
    sp.coord = Coord::kAsymmetric;
    sp.nearest = Nearest::kFloor;
    return ok_status();
  }
  const std::string ct = node.attr_string("coordinate_transformation_mode", "half_pixel");
  if (ct == "half_pixel") sp.coord = Coord::kHalfPixel;
  else if (ct == "pytorch_half_pixel") sp.coord = Coord::kPytorchHalfPixel;
  else if (ct == "align_corners") sp.coord = Coord::kAlignCorners;
  else if (ct == "asymmetric") sp.coord = Coord::kAsymmetric;
  else if (ct == "tf_half_pixel_for_nn") sp.coord = Coord::kTfHalfPixelForNn;
  else if (ct == "tf_crop_and_resize") sp.coord = Coord::kTfCropAndResize;
  else if (ct == "half_pixel_symmetric") sp.coord = Coord::kHalfPixelSymmetric;
  else return bad(node, fmt::format("coordinate_transformation_mode '{}' is not supported", ct));
  const std::string nm = node.attr_string("nearest_mode", "round_prefer_floor");
  if (nm == "round_prefer_floor") sp.nearest = Nearest::kRoundPreferFloor;
  else if (nm == "round_prefer_ceil") sp.nearest = Nearest::kRoundPreferCeil;
  else if (nm == "floor") sp.nearest = Nearest::kFloor;
  else if (nm == "ceil") sp.nearest = Nearest::kCeil;
  else return bad(node, fmt::format("nearest_mode '{}' is not supported", nm));
  sp.cubic_a = node.attr_float("cubic_coeff_a", -0.75f);
  sp.exclude_outside = node.attr_int("exclude_outside", 0) != 0;
  sp.extrapolation = node.attr_float("extrapolation_value", 0.0f);
  if (node.attr_int("antialias", 0) != 0) return bad(node, "antialias is not supported");
  return ok_status();
}

// Output size from a scale: floor(in * scale), checked.
Result<int64_t> scaled_size(const Node& node, int64_t in, double scale) {
  if (!(scale > 0) || !std::isfinite(scale)) return bad(node, fmt::format("scales must be finite and > 0, one is {}", scale));
  const double v = std::floor(static_cast<double>(in) * scale);
  if (v > static_cast<double>(kMaxElements)) return bad(node, fmt::format("scale {} makes a dim of {} elements", scale, v));
  return static_cast<int64_t>(v);
}

Status resize_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, ctx.opset < 11 ? 2 : 4));
  const Tensor& x = *in[0];
  HEARTH_TRY(require_dtype(node, x, "input X", {DType::kFloat}));
  if (x.rank() == 0) return bad(node, "input must have rank >= 1");
  ResizeSpec sp;
  HEARTH_TRY(parse_resize_spec(node, ctx.opset, sp));
  const size_t r = x.rank();
  auto present = [&](size_t i) { return in.size() > i && in[i] != nullptr && in[i]->numel() > 0; };
  const size_t scales_at = ctx.opset < 11 ? 1 : 2;
  // axes (opset 18): the dims the scales / sizes / roi values apply to.
  std::vector<int64_t> axes;
  if (ctx.opset >= 18 && node.has("axes")) {
    for (int64_t a : node.attr_ints("axes")) {
      HEARTH_ASSIGN_OR_RETURN(int64_t na, normalize_axis(node, a, static_cast<int64_t>(r)));
      if (std::find(axes.begin(), axes.end(), na) != axes.end()) return bad(node, "axes repeats an axis");
      axes.push_back(na);
    }
  } else {
    for (size_t i = 0; i < r; ++i) axes.push_back(static_cast<int64_t>(i));
  }
  std::vector<double> roi;
  if (sp.coord == Coord::kTfCropAndResize) {
    if (!present(1)) return bad(node, "tf_crop_and_resize needs roi");
    const Tensor& rt = *in[1];
    HEARTH_TRY(require_dtype(node, rt, "roi", {DType::kFloat, DType::kDouble}));
    if (static_cast<size_t>(rt.numel()) != 2 * axes.size()) return bad(node, fmt::format("roi has {} values for {} axes", rt.numel(), axes.size()));
    roi.assign(2 * r, 0.0);
    for (size_t i = 0; i < r; ++i) roi[r + i] = 1.0;
    for (size_t i = 0; i < axes.size(); ++i) {
      roi[static_cast<size_t>(axes[i])] = rt.double_at(static_cast<int64_t>(i));
      roi[r + static_cast<size_t>(axes[i])] = rt.double_at(static_cast<int64_t>(axes.size() + i));
    }
  }
  std::vector<double> scales(r, 1.0);
  Shape out_shape = x.shape();
  std::vector<double> lens(r);
  for (size_t i = 0; i < r; ++i) lens[i] = static_cast<double>(x.dim(i));
  if (present(scales_at) && ctx.opset >= 11 && present(3)) return bad(node, "takes scales or sizes, not both");
  if (present(scales_at)) {
    const Tensor& s = *in[scales_at];
    HEARTH_TRY(require_dtype(node, s, "scales", {DType::kFloat}));
    if (static_cast<size_t>(s.numel()) != axes.size()) return bad(node, fmt::format("scales has {} values for {} axes", s.numel(), axes.size()));
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t a = static_cast<size_t>(axes[i]);
      scales[a] = s.data<float>()[i];
      // tf_crop_and_resize resizes the roi's share of the input.
      const double share = roi.empty() ? 1.0 : roi[r + a] - roi[a];
      HEARTH_ASSIGN_OR_RETURN(out_shape[a], scaled_size(node, x.dim(a), scales[a] * share));
      lens[a] = static_cast<double>(x.dim(a)) * scales[a] * share;
    }
  } else if (ctx.opset >= 11 && present(3)) {
    HEARTH_ASSIGN_OR_RETURN(auto sizes, int_list(node, *in[3], "sizes"));
    if (sizes.size() != axes.size()) return bad(node, fmt::format("sizes has {} values for {} axes", sizes.size(), axes.size()));
    for (int64_t v : sizes) if (v < 0 || v > kMaxElements) return bad(node, fmt::format("sizes {} has a bad value", shape_string(sizes)));
    const std::string policy = node.attr_string("keep_aspect_ratio_policy", "stretch");
    if (policy == "stretch" || ctx.opset < 18) {
      for (size_t i = 0; i < axes.size(); ++i) {
        const size_t a = static_cast<size_t>(axes[i]);
        out_shape[a] = sizes[i];
        scales[a] = x.dim(a) > 0 ? static_cast<double>(sizes[i]) / static_cast<double>(x.dim(a)) : 1.0;
      }
    } else if (policy == "not_larger" || policy == "not_smaller") {
      double sc = policy == "not_larger" ? INFINITY : 0.0;
      for (size_t i = 0; i < axes.size(); ++i) {
        const double v = static_cast<double>(sizes[i]) / static_cast<double>(std::max<int64_t>(1, x.dim(static_cast<size_t>(axes[i]))));
        sc = policy == "not_larger" ? std::min(sc, v) : std::max(sc, v);
      }
      for (size_t i = 0; i < axes.size(); ++i) {
        const size_t a = static_cast<size_t>(axes[i]);
        scales[a] = sc;
        out_shape[a] = static_cast<int64_t>(std::round(sc * static_cast<double>(x.dim(a))));
      }
    } else {
      return bad(node, fmt::format("keep_aspect_ratio_policy '{}' is not supported", policy));
    }
  } else {
    return bad(node, "needs scales or sizes");
  }
  if (!present(scales_at)) {
    for (size_t i = 0; i < r; ++i) lens[i] = static_cast<double>(out_shape[i]);
  }
  return resize_run(ctx, node, sp, x, out_shape, scales, lens, roi, out);
}

Status upsample_op(OpContext& ctx, const Node& node, OpInputs in, std::vector<Tensor>& out) {
  HEARTH_TRY(require_inputs(node, in, 1, 2));
  const Tensor& x = *in[0];
  HEARTH_TRY(require_dtype(node, x, "input X", {DType::kFloat}));
  ResizeSpec sp;
  HEARTH_TRY(parse_resize_spec(node, 10, sp));  // Upsample: asymmetric, floor
  const size_t r = x.rank();
  std::vector<float> sv;
  if (in.size() > 1 && in[1]) {
    HEARTH_TRY(require_dtype(node, *in[1], "scales", {DType::kFloat}));
    sv.assign(in[1]->data<float>(), in[1]->data<float>() + in[1]->numel());
  } else {
    sv = node.attr_floats("scales");
  }
  if (sv.size() != r) return bad(node, fmt::format("scales has {} values for rank {}", sv.size(), r));
  std::vector<double> scales(r);
  Shape out_shape(r);
  for (size_t i = 0; i < r; ++i) {
    if (sv[i] < 1.0f) return bad(node, fmt::format("Upsample scales must be >= 1, one is {}", sv[i]));
    scales[i] = sv[i];
    HEARTH_ASSIGN_OR_RETURN(out_shape[i], scaled_size(node, x.dim(i), scales[i]));
  }
  std::vector<double> lens(r);
  for (size_t i = 0; i < r; ++i) lens[i] = static_cast<double>(x.dim(i)) * scales[i];
  return resize_run(ctx, node, sp, x, out_shape, scales, lens, {}, out);
}

}  // namespace

void register_resize_ops(OpRegistry& r) {
  r.add("Resize", 10, &resize_op);
  r.add("Upsample", 7, &upsample_op);
}

}  // namespace hearth::onnx
