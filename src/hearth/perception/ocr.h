// Document OCR with PaddleOCR's PP-OCR models on hearth's ONNX executor:
// detection (DB: a text-probability map, thresholded, grouped into connected regions, scored,
// and grown by the DB "unclip" distance) -> crops -> direction (the v2.0 classifier: a line
// upside down is turned) -> recognition (PP-OCRv4, CTC greedy decoding with the model's
// character list, blank = 0, a space appended as the last class).
// Regions are axis-aligned boxes: text rotated by other than 0/90/180 degrees is not
// straightened (PaddleOCR fits rotated rectangles; that is still to do).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/onnx/session.h"
#include "hearth/perception/image.h"

namespace hearth::perception {

struct OcrOptions {
  int max_side = 960;          // detection input: the longer side is scaled down to this, then to a multiple of 32
  float det_threshold = 0.3f;  // probability-map binarization
  float box_threshold = 0.6f;  // a region's mean probability
  float unclip_ratio = 1.5f;
  int min_box_side = 3;
  float cls_threshold = 0.9f;  // turn a line when the classifier says 180 degrees with this confidence
  bool use_classifier = true;
};

struct OcrLine {
  int x = 0, y = 0, width = 0, height = 0;  // box in image pixels
  float box_score = 0;
  std::string text;
  float confidence = 0;  // mean probability of the decoded characters
  bool rotated180 = false;
};

class OcrPipeline {
 public:
  // det, rec and (optional, "" to skip) cls model files, and the character list file.
  static Result<OcrPipeline> load(const std::string& det, const std::string& rec, const std::string& cls, const std::string& keys,
                                  int n_threads = 1);
  // Sessions already made (from verified store blobs); the names are for errors.
  struct Sessions {
    std::unique_ptr<onnx::Session> det, rec, cls;  // cls may be null
    std::string det_name, rec_name, cls_name;
  };
  static Result<OcrPipeline> from_sessions(Sessions sessions, const std::string& keys);
  Result<std::vector<OcrLine>> read(const Image& img, const OcrOptions& opt = {});

  // The steps, for tests:
  Result<onnx::Tensor> detect_map(const Image& img, const OcrOptions& opt, float* scale_x, float* scale_y);
  Result<std::pair<std::string, float>> recognize(const Image& line);
  Result<std::pair<int, float>> classify(const Image& line);  // (0 or 1 = 180 degrees, probability)

 private:
  std::unique_ptr<onnx::Session> det_, rec_, cls_;
  std::vector<std::string> keys_;  // index 0 is the CTC blank
};

struct Box {
  int x0, y0, x1, y1;  // inclusive-exclusive, in map pixels
  float score;
};
// The DB post-processing on a probability map [H][W]: connected regions above det_threshold,
// their mean probability, grown by area * unclip_ratio / perimeter on every side.
std::vector<Box> db_boxes(const float* prob, int h, int w, const OcrOptions& opt);
// CTC greedy decoding of [T][C] probabilities: argmax, repeats merged, blanks (0) dropped.
std::pair<std::vector<int>, float> ctc_greedy(const float* probs, int64_t steps, int64_t classes);

}  // namespace hearth::perception
