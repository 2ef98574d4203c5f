// Voice activity detection with Silero VAD (v4 "legacy", v5, v6, and their other exports) on
// hearth's ONNX executor. The model is run on 32 ms windows (512 samples at 16 kHz) with its
// recurrent state carried from window to window; v5/v6 also take the previous window's last 64
// samples as context. Speech segments come from the probabilities with Silero's own rules
// (threshold with hysteresis, minimum speech and silence durations, padding).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/onnx/session.h"

namespace hearth::perception {

struct VadOptions {
  float threshold = 0.5f;
  float neg_threshold = -1;  // < 0: max(threshold - 0.15, 0.01)
  int min_speech_ms = 250;
  int min_silence_ms = 100;
  int speech_pad_ms = 30;
};

struct VadSegment {
  int64_t start_sample = 0;
  int64_t end_sample = 0;
  double start = 0;  // seconds
  double end = 0;
};

class SileroVad {
 public:
  static constexpr int kSampleRate = 16000;
  static constexpr int kWindow = 512;
  static constexpr int kContext = 64;

  static Result<SileroVad> load(const std::string& path, int n_threads = 1);
  static Result<SileroVad> from_session(onnx::Session session);

  void reset();
  // The speech probability of one window of kWindow samples at 16 kHz.
  Result<float> process(std::span<const float> window);
  // The kind of export: "v5" (state + context) or "v4" (h, c, no context).
  const std::string& kind() const { return kind_; }

 private:
  std::unique_ptr<onnx::Session> session_;
  std::string kind_;
  std::string input_name_, state_name_, h_name_, c_name_, sr_name_;
  int state_size_ = 128;
  onnx::Tensor state_, h_, c_;
  std::vector<float> context_;
};

// Probabilities for every full window of `samples` (16 kHz mono; a short tail is zero-padded).
Result<std::vector<float>> vad_probabilities(SileroVad& vad, std::span<const float> samples);
// Silero's get_speech_timestamps rules over those probabilities.
std::vector<VadSegment> speech_segments(std::span<const float> probs, int64_t n_samples, const VadOptions& opt);

}  // namespace hearth::perception
