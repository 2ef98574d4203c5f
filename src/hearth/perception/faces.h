// Face detection with MediaPipe's BlazeFace (the 128x128 "front" and 256x256 "back" models) on
// hearth's ONNX executor: the image is letterboxed to the model's square input (RGB scaled to
// [-1, 1], NHWC), the two heads' anchors (16x16 cells with 2 anchors, 8x8 cells with 6) are
// decoded into boxes and six landmarks, and overlapping detections are merged by
// score-weighted averaging (MediaPipe's "weighted" non-maximum suppression).
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/onnx/session.h"
#include "hearth/perception/image.h"

namespace hearth::perception {

struct Face {
  float x = 0, y = 0, width = 0, height = 0;  // box in image pixels (top-left corner)
  std::array<std::array<float, 2>, 6> landmarks{};  // right eye, left eye, nose, mouth, right ear, left ear
  float score = 0;
};

struct FaceOptions {
  float score_threshold = 0.75f;
  float iou_threshold = 0.3f;
};

class FaceDetector {
 public:
  static Result<FaceDetector> load(const std::string& path, int n_threads = 1);
  // A session already made (from a verified store blob); `what` names it in errors.
  static Result<FaceDetector> from_session(onnx::Session session, const std::string& what);
  int input_size() const { return size_; }
  Result<std::vector<Face>> detect(const Image& img, const FaceOptions& opt = {});

 private:
  std::unique_ptr<onnx::Session> session_;
  std::string input_name_;
  int size_ = 128;
  // Output indices of the scores and boxes of the 16x16 head and the 8x8 head.
  int scores16_ = -1, boxes16_ = -1, scores8_ = -1, boxes8_ = -1;
};

// Score-weighted merging of overlapping detections (sorted by score first).
std::vector<Face> weighted_nms(std::vector<Face> faces, float iou_threshold);

}  // namespace hearth::perception
