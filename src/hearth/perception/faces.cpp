#include "hearth/perception/faces.h"

#include <algorithm>
#include <cmath>


namespace hearth::perception {

using onnx::DType;
using onnx::Tensor;

Result<FaceDetector> FaceDetector::load(const std::string& path, int n_threads) {
  onnx::SessionOptions o;
  o.n_threads = n_threads;
  auto s = onnx::open_session(path, o);
  if (!s.ok()) return s.status();
  return from_session(std::move(s).value(), path);
}

Result<FaceDetector> FaceDetector::from_session(onnx::Session session, const std::string& what) {
  FaceDetector d;
  auto s = std::make_unique<onnx::Session>(std::move(session));
  const auto& ins = s->inputs();
  if (ins.size() != 1 || ins[0].dims.size() != 4 || ins[0].dims[1] <= 0 || ins[0].dims[1] != ins[0].dims[2] || ins[0].dims[3] != 3) {
    return make_error(ErrorCode::kInvalidArgument, "{}: not a BlazeFace model (expected one NHWC input [1,S,S,3])", what);
  }
  d.input_name_ = ins[0].name;
  d.size_ = static_cast<int>(ins[0].dims[1]);
  // The heads by their declared shapes: scores [1,A,1], boxes [1,A,16], A = 512 (16x16x2) or 384 (8x8x6).
  const auto& outs = s->outputs();
  for (size_t i = 0; i < outs.size(); ++i) {
    const auto& dims = outs[i].dims;
    if (dims.size() != 3) continue;
    const int idx = static_cast<int>(i);
    if (dims[1] == 512 && dims[2] == 1) d.scores16_ = idx;
    if (dims[1] == 512 && dims[2] == 16) d.boxes16_ = idx;
    if (dims[1] == 384 && dims[2] == 1) d.scores8_ = idx;
    if (dims[1] == 384 && dims[2] == 16) d.boxes8_ = idx;
  }
  if (d.scores16_ < 0 || d.boxes16_ < 0 || d.scores8_ < 0 || d.boxes8_ < 0) {
    return make_error(ErrorCode::kInvalidArgument, "{}: not a BlazeFace model (outputs are not the 512- and 384-anchor heads)", what);
  }
  d.session_ = std::move(s);
  return d;
}

namespace {

float iou(const Face& a, const Face& b) {
  const float x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  const float x1 = std::min(a.x + a.width, b.x + b.width), y1 = std::min(a.y + a.height, b.y + b.height);
  const float inner = std::max(0.0f, x1 - x0) * std::max(0.0f, y1 - y0);
  const float uni = a.width * a.height + b.width * b.height - inner;
  return uni > 0 ? inner / uni : 0.0f;
}

}  // namespace

std::vector<Face> weighted_nms(std::vector<Face> faces, float iou_threshold) {
  std::sort(faces.begin(), faces.end(), [](const Face& a, const Face& b) { return a.score > b.score; });
  std::vector<bool> used(faces.size(), false);
  std::vector<Face> out;
  for (size_t i = 0; i < faces.size(); ++i) {
    if (used[i]) continue;
    Face acc;
    float wsum = 0;
    auto add = [&](const Face& f) {
      const float w = f.score;
      acc.x += f.x * w;
      acc.y += f.y * w;
      acc.width += f.width * w;
      acc.height += f.height * w;
      for (int k = 0; k < 6; ++k) {
        acc.landmarks[k][0] += f.landmarks[k][0] * w;
        acc.landmarks[k][1] += f.landmarks[k][1] * w;
      }
      wsum += w;
    };
    add(faces[i]);
    for (size_t j = i + 1; j < faces.size(); ++j) {
      if (!used[j] && iou(faces[i], faces[j]) >= iou_threshold) {
        add(faces[j]);
        used[j] = true;
      }
    }
    acc.x /= wsum;
    acc.y /= wsum;
    acc.width /= wsum;
    acc.height /= wsum;
    for (auto& l : acc.landmarks) {
      l[0] /= wsum;
      l[1] /= wsum;
    }
    acc.score = faces[i].score;
    out.push_back(acc);
  }
  return out;
}

Result<std::vector<Face>> FaceDetector::detect(const Image& img, const FaceOptions& opt) {
  if (img.width <= 0 || img.height <= 0) return make_error(ErrorCode::kInvalidArgument, "empty image");
  // Letterbox: scale the longer side to size_, center it, and leave the rest 0 in the
  // normalized tensor (mid-gray).
  const float scale = static_cast<float>(size_) / static_cast<float>(std::max(img.width, img.height));
  const int w = std::max(1, static_cast<int>(std::lround(static_cast<float>(img.width) * scale)));
  const int h = std::max(1, static_cast<int>(std::lround(static_cast<float>(img.height) * scale)));
  const int ox = (size_ - w) / 2, oy = (size_ - h) / 2;
  const Image small = resize_bilinear(img, w, h);
  HEARTH_ASSIGN_OR_RETURN(Tensor x, Tensor::make(DType::kFloat, {1, size_, size_, 3}));
  float* px = x.data<float>();
  for (int y = 0; y < h; ++y) {
    for (int xx = 0; xx < w; ++xx) {
      const uint8_t* p = small.pixel(xx, y);
      float* q = px + (static_cast<size_t>(oy + y) * static_cast<size_t>(size_) + static_cast<size_t>(ox + xx)) * 3;
      for (int c = 0; c < 3; ++c) q[c] = static_cast<float>(p[c]) / 127.5f - 1.0f;
    }
  }
  std::vector<std::pair<std::string, Tensor>> feeds;
  feeds.emplace_back(input_name_, std::move(x));
  HEARTH_ASSIGN_OR_RETURN(auto outs, session_->run(feeds));
  std::vector<Face> cands;
  const float inv = 1.0f / static_cast<float>(size_);
  auto head = [&](int scores_i, int boxes_i, int cells, int anchors) -> Status {
    const Tensor& s = outs[static_cast<size_t>(scores_i)];
    const Tensor& b = outs[static_cast<size_t>(boxes_i)];
    const int64_t n = static_cast<int64_t>(cells) * cells * anchors;
    if (s.dtype() != DType::kFloat || b.dtype() != DType::kFloat || s.numel() != n || b.numel() != n * 16) {
      return make_error(ErrorCode::kInvalidArgument, "BlazeFace head outputs have unexpected shapes {} and {}", onnx::shape_string(s.shape()),
                        onnx::shape_string(b.shape()));
    }
    for (int cy = 0; cy < cells; ++cy) {
      for (int cx = 0; cx < cells; ++cx) {
        const float ax = (static_cast<float>(cx) + 0.5f) / static_cast<float>(cells);
        const float ay = (static_cast<float>(cy) + 0.5f) / static_cast<float>(cells);
        for (int a = 0; a < anchors; ++a) {
          const int64_t i = (static_cast<int64_t>(cy) * cells + cx) * anchors + a;
          const float logit = std::clamp(s.data<float>()[i], -100.0f, 100.0f);
          const float score = 1.0f / (1.0f + std::exp(-logit));
          if (!(score > opt.score_threshold)) continue;
          const float* r = b.data<float>() + i * 16;
          // Normalized model coordinates -> letterboxed pixels -> image pixels.
          auto to_img_x = [&](float v) { return (v * static_cast<float>(size_) - static_cast<float>(ox)) / scale; };
          auto to_img_y = [&](float v) { return (v * static_cast<float>(size_) - static_cast<float>(oy)) / scale; };
          const float cxn = ax + r[0] * inv, cyn = ay + r[1] * inv, wn = r[2] * inv, hn = r[3] * inv;
          Face f;
          f.x = to_img_x(cxn - wn / 2);
          f.y = to_img_y(cyn - hn / 2);
          f.width = wn * static_cast<float>(size_) / scale;
          f.height = hn * static_cast<float>(size_) / scale;
          for (int k = 0; k < 6; ++k) {
            f.landmarks[static_cast<size_t>(k)] = {to_img_x(ax + r[4 + 2 * k] * inv), to_img_y(ay + r[5 + 2 * k] * inv)};
          }
          f.score = score;
          cands.push_back(f);
        }
      }
    }
    return ok_status();
  };
  HEARTH_TRY(head(scores16_, boxes16_, 16, 2));
  HEARTH_TRY(head(scores8_, boxes8_, 8, 6));
  return weighted_nms(std::move(cands), opt.iou_threshold);
}

}  // namespace hearth::perception
