#include "hearth/perception/ocr.h"

#include <algorithm>
#include <cmath>
#include <fstream>


namespace hearth::perception {

using onnx::DType;
using onnx::Tensor;

namespace {

Result<std::unique_ptr<onnx::Session>> one_input(onnx::Session s, const std::string& what) {
  if (s.inputs().size() != 1 || s.outputs().empty()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: expected one input and an output", what);
  }
  return std::make_unique<onnx::Session>(std::move(s));
}

// Image -> [1,3,H,W] float: per channel (v/255 - mean) / std, in `bgr` order when asked
// (PaddleOCR's detector was trained on OpenCV's BGR images).
Result<Tensor> to_chw(const Image& img, int out_w, const float mean[3], const float stdv[3], bool bgr) {
  HEARTH_ASSIGN_OR_RETURN(Tensor t, Tensor::make(DType::kFloat, {1, 3, img.height, out_w}));
  float* d = t.data<float>();
  const size_t plane = static_cast<size_t>(img.height) * static_cast<size_t>(out_w);
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width && x < out_w; ++x) {
      const uint8_t* p = img.pixel(x, y);
      for (int c = 0; c < 3; ++c) {
        const int src = bgr ? 2 - c : c;
        d[static_cast<size_t>(c) * plane + static_cast<size_t>(y) * static_cast<size_t>(out_w) + static_cast<size_t>(x)] =
            (static_cast<float>(p[src]) / 255.0f - mean[c]) / stdv[c];
      }
    }
  }
  return t;
}

Image rotate90_ccw(const Image& src) {
  Image out;
  out.width = src.height;
  out.height = src.width;
  out.rgb.resize(src.rgb.size());
  for (int y = 0; y < src.height; ++y) {
    for (int x = 0; x < src.width; ++x) {
      // (x, y) -> (y, width - 1 - x)
      const uint8_t* p = src.pixel(x, y);
      uint8_t* q = &out.rgb[(static_cast<size_t>(src.width - 1 - x) * static_cast<size_t>(out.width) + static_cast<size_t>(y)) * 3];
      q[0] = p[0];
      q[1] = p[1];
      q[2] = p[2];
    }
  }
  return out;
}

Image rotate180(const Image& src) {
  Image out = src;
  const size_t n = static_cast<size_t>(src.width) * static_cast<size_t>(src.height);
  for (size_t i = 0; i < n; ++i) {
    for (int c = 0; c < 3; ++c) out.rgb[i * 3 + static_cast<size_t>(c)] = src.rgb[(n - 1 - i) * 3 + static_cast<size_t>(c)];
  }
  return out;
}

}  // namespace

Result<OcrPipeline> OcrPipeline::load(const std::string& det, const std::string& rec, const std::string& cls, const std::string& keys,
                                      int n_threads) {
  onnx::SessionOptions o;
  o.n_threads = n_threads;
  Sessions s;
  HEARTH_ASSIGN_OR_RETURN(onnx::Session d, onnx::open_session(det, o));
  s.det = std::make_unique<onnx::Session>(std::move(d));
  s.det_name = det;
  HEARTH_ASSIGN_OR_RETURN(onnx::Session r, onnx::open_session(rec, o));
  s.rec = std::make_unique<onnx::Session>(std::move(r));
  s.rec_name = rec;
  if (!cls.empty()) {
    HEARTH_ASSIGN_OR_RETURN(onnx::Session c, onnx::open_session(cls, o));
    s.cls = std::make_unique<onnx::Session>(std::move(c));
    s.cls_name = cls;
  }
  return from_sessions(std::move(s), keys);
}

Result<OcrPipeline> OcrPipeline::from_sessions(Sessions s, const std::string& keys) {
  if (!s.det || !s.rec) return make_error(ErrorCode::kInvalidArgument, "OCR needs a detection and a recognition model");
  OcrPipeline p;
  HEARTH_ASSIGN_OR_RETURN(p.det_, one_input(std::move(*s.det), s.det_name));
  HEARTH_ASSIGN_OR_RETURN(p.rec_, one_input(std::move(*s.rec), s.rec_name));
  if (s.cls) {
    HEARTH_ASSIGN_OR_RETURN(p.cls_, one_input(std::move(*s.cls), s.cls_name));
  }
  std::ifstream in(keys);
  if (!in) return make_error(ErrorCode::kNotFound, "character list '{}' cannot be read", keys);
  p.keys_.push_back("");  // the CTC blank
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    p.keys_.push_back(line);
    if (p.keys_.size() > 1'000'000) return make_error(ErrorCode::kOutOfRange, "character list '{}' is too long", keys);
  }
  p.keys_.push_back(" ");
  return p;
}

std::pair<std::vector<int>, float> ctc_greedy(const float* probs, int64_t steps, int64_t classes) {
  std::vector<int> ids;
  float sum = 0;
  int prev = -1;
  for (int64_t t = 0; t < steps; ++t) {
    const float* row = probs + t * classes;
    const int best = static_cast<int>(std::max_element(row, row + classes) - row);
    if (best != 0 && best != prev) {
      ids.push_back(best);
      sum += row[best];
    }
    prev = best;
  }
  return {ids, ids.empty() ? 0.0f : sum / static_cast<float>(ids.size())};
}

std::vector<Box> db_boxes(const float* prob, int h, int w, const OcrOptions& opt) {
  std::vector<int> label(static_cast<size_t>(h) * static_cast<size_t>(w), 0);
  std::vector<Box> boxes;
  std::vector<int> stack;
  int next = 0;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const size_t i0 = static_cast<size_t>(y) * static_cast<size_t>(w) + static_cast<size_t>(x);
      if (label[i0] || !(prob[i0] > opt.det_threshold)) continue;
      ++next;
      Box b{x, y, x + 1, y + 1, 0};
      double sum = 0;
      int64_t count = 0;
      stack.assign(1, static_cast<int>(i0));
      label[i0] = next;
      while (!stack.empty()) {
        const int i = stack.back();
        stack.pop_back();
        const int py = i / w, px = i % w;
        b.x0 = std::min(b.x0, px);
        b.y0 = std::min(b.y0, py);
        b.x1 = std::max(b.x1, px + 1);
        b.y1 = std::max(b.y1, py + 1);
        sum += prob[i];
        ++count;
        for (int dy = -1; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) {
            const int qy = py + dy, qx = px + dx;
            if (qy < 0 || qy >= h || qx < 0 || qx >= w) continue;
            const size_t q = static_cast<size_t>(qy) * static_cast<size_t>(w) + static_cast<size_t>(qx);
            if (!label[q] && prob[q] > opt.det_threshold) {
              label[q] = next;
              stack.push_back(static_cast<int>(q));
            }
          }
        }
      }
      const int bw = b.x1 - b.x0, bh = b.y1 - b.y0;
      if (std::min(bw, bh) < opt.min_box_side) continue;
      // The box score is the mean probability over the whole box (DB's box_score_fast).
      double box_sum = 0;
      for (int yy = b.y0; yy < b.y1; ++yy) {
        for (int xx = b.x0; xx < b.x1; ++xx) box_sum += prob[static_cast<size_t>(yy) * static_cast<size_t>(w) + static_cast<size_t>(xx)];
      }
      b.score = static_cast<float>(box_sum / (static_cast<double>(bw) * bh));
      if (b.score < opt.box_threshold) continue;
      const double area = static_cast<double>(bw) * bh, perimeter = 2.0 * (bw + bh);
      const int d = static_cast<int>(std::lround(area * opt.unclip_ratio / perimeter));
      b.x0 = std::max(0, b.x0 - d);
      b.y0 = std::max(0, b.y0 - d);
      b.x1 = std::min(w, b.x1 + d);
      b.y1 = std::min(h, b.y1 + d);
      boxes.push_back(b);
    }
  }
  return boxes;
}

Result<Tensor> OcrPipeline::detect_map(const Image& img, const OcrOptions& opt, float* scale_x, float* scale_y) {
  float ratio = 1.0f;
  if (std::max(img.width, img.height) > opt.max_side) ratio = static_cast<float>(opt.max_side) / static_cast<float>(std::max(img.width, img.height));
  auto round32 = [](float v) { return std::max(32, static_cast<int>(std::lround(v / 32.0f)) * 32); };
  const int w = round32(static_cast<float>(img.width) * ratio), h = round32(static_cast<float>(img.height) * ratio);
  *scale_x = static_cast<float>(img.width) / static_cast<float>(w);
  *scale_y = static_cast<float>(img.height) / static_cast<float>(h);
  const Image small = resize_bilinear(img, w, h);
  static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
  HEARTH_ASSIGN_OR_RETURN(Tensor x, to_chw(small, w, mean, stdv, true));
  std::vector<std::pair<std::string, Tensor>> feeds;
  feeds.emplace_back(det_->inputs()[0].name, std::move(x));
  HEARTH_ASSIGN_OR_RETURN(auto out, det_->run(feeds));
  const Tensor& m = out[0];
  if (m.dtype() != DType::kFloat || m.rank() != 4 || m.dim(0) != 1 || m.dim(1) != 1 || m.dim(2) != h || m.dim(3) != w) {
    return make_error(ErrorCode::kInvalidArgument, "the detection model's output is {}, expected [1,1,{},{}]", onnx::shape_string(m.shape()), h, w);
  }
  return m;
}

Result<std::pair<int, float>> OcrPipeline::classify(const Image& line) {
  constexpr int kH = 48, kW = 192;
  const int w = std::min(kW, std::max(1, static_cast<int>(std::ceil(kH * static_cast<float>(line.width) / static_cast<float>(line.height)))));
  const Image r = resize_bilinear(line, w, kH);
  static const float mean[3] = {0.5f, 0.5f, 0.5f}, stdv[3] = {0.5f, 0.5f, 0.5f};
  HEARTH_ASSIGN_OR_RETURN(Tensor x, to_chw(r, kW, mean, stdv, true));
  std::vector<std::pair<std::string, Tensor>> feeds;
  feeds.emplace_back(cls_->inputs()[0].name, std::move(x));
  HEARTH_ASSIGN_OR_RETURN(auto out, cls_->run(feeds));
  if (out[0].dtype() != DType::kFloat || out[0].numel() != 2) return make_error(ErrorCode::kInvalidArgument, "the direction classifier's output is not two probabilities");
  const float* p = out[0].data<float>();
  return std::pair<int, float>{p[1] > p[0] ? 1 : 0, std::max(p[0], p[1])};
}

Result<std::pair<std::string, float>> OcrPipeline::recognize(const Image& line) {
  constexpr int kH = 48, kMinW = 320, kMaxW = 3200;
  const int w = std::clamp(static_cast<int>(std::ceil(kH * static_cast<float>(line.width) / static_cast<float>(line.height))), 1, kMaxW);
  const Image r = resize_bilinear(line, w, kH);
  static const float mean[3] = {0.5f, 0.5f, 0.5f}, stdv[3] = {0.5f, 0.5f, 0.5f};
  HEARTH_ASSIGN_OR_RETURN(Tensor x, to_chw(r, std::max(kMinW, w), mean, stdv, true));
  std::vector<std::pair<std::string, Tensor>> feeds;
  feeds.emplace_back(rec_->inputs()[0].name, std::move(x));
  HEARTH_ASSIGN_OR_RETURN(auto out, rec_->run(feeds));
  const Tensor& p = out[0];
  if (p.dtype() != DType::kFloat || p.rank() != 3 || p.dim(0) != 1) {
    return make_error(ErrorCode::kInvalidArgument, "the recognition model's output is {}, expected [1,T,C]", onnx::shape_string(p.shape()));
  }
  if (p.dim(2) != static_cast<int64_t>(keys_.size())) {
    return make_error(ErrorCode::kInvalidArgument, "the recognition model has {} classes but the character list gives {} (with blank and space)",
                      p.dim(2), keys_.size());
  }
  auto [ids, conf] = ctc_greedy(p.data<float>(), p.dim(1), p.dim(2));
  std::string text;
  for (int id : ids) text += keys_[static_cast<size_t>(id)];
  return std::pair<std::string, float>{text, conf};
}

Result<std::vector<OcrLine>> OcrPipeline::read(const Image& img, const OcrOptions& opt) {
  float sx = 1, sy = 1;
  HEARTH_ASSIGN_OR_RETURN(Tensor map, detect_map(img, opt, &sx, &sy));
  auto boxes = db_boxes(map.data<float>(), static_cast<int>(map.dim(2)), static_cast<int>(map.dim(3)), opt);
  std::vector<OcrLine> lines;
  for (const Box& b : boxes) {
    OcrLine l;
    l.x = std::clamp(static_cast<int>(std::floor(static_cast<float>(b.x0) * sx)), 0, img.width - 1);
    l.y = std::clamp(static_cast<int>(std::floor(static_cast<float>(b.y0) * sy)), 0, img.height - 1);
    l.width = std::clamp(static_cast<int>(std::ceil(static_cast<float>(b.x1) * sx)), l.x + 1, img.width) - l.x;
    l.height = std::clamp(static_cast<int>(std::ceil(static_cast<float>(b.y1) * sy)), l.y + 1, img.height) - l.y;
    l.box_score = b.score;
    lines.push_back(l);
  }
  // Reading order: top to bottom, then left to right among boxes on the same line.
  std::sort(lines.begin(), lines.end(), [](const OcrLine& a, const OcrLine& b) {
    const int ca = a.y + a.height / 2, cb = b.y + b.height / 2;
    if (std::abs(ca - cb) < std::min(a.height, b.height) / 2) return a.x < b.x;
    return ca < cb;
  });
  for (OcrLine& l : lines) {
    Image c = crop(img, l.x, l.y, l.width, l.height);
    if (c.height >= 3 * c.width / 2 && c.width > 0) c = rotate90_ccw(c);  // a vertical line, read as horizontal
    if (cls_ && opt.use_classifier) {
      HEARTH_ASSIGN_OR_RETURN(auto dir, classify(c));
      if (dir.first == 1 && dir.second >= opt.cls_threshold) {
        c = rotate180(c);
        l.rotated180 = true;
      }
    }
    HEARTH_ASSIGN_OR_RETURN(auto rec, recognize(c));
    l.text = std::move(rec.first);
    l.confidence = rec.second;
  }
  return lines;
}

}  // namespace hearth::perception
