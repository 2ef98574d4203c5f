#include "hearth/perception/vad.h"

#include <algorithm>
#include <cstring>


namespace hearth::perception {

using onnx::DType;
using onnx::Tensor;

Result<SileroVad> SileroVad::load(const std::string& path, int n_threads) {
  onnx::SessionOptions o;
  o.n_threads = n_threads;
  HEARTH_ASSIGN_OR_RETURN(onnx::Session s, onnx::open_session(path, o));
  return from_session(std::move(s));
}

Result<SileroVad> SileroVad::from_session(onnx::Session session) {
  SileroVad v;
  for (const auto& in : session.inputs()) {
    if (in.name == "input" || in.name == "x") v.input_name_ = in.name;
    else if (in.name == "state") v.state_name_ = in.name;
    else if (in.name == "h") v.h_name_ = in.name;
    else if (in.name == "c") v.c_name_ = in.name;
    else if (in.name == "sr") v.sr_name_ = in.name;
    else return make_error(ErrorCode::kInvalidArgument, "not a Silero VAD model: unexpected input '{}'", in.name);
    if (in.name == "state" && in.dims.size() == 3 && in.dims[2] > 0) v.state_size_ = static_cast<int>(in.dims[2]);
  }
  if (v.input_name_.empty()) return make_error(ErrorCode::kInvalidArgument, "not a Silero VAD model: no 'input'");
  if (!v.state_name_.empty()) v.kind_ = "v5";
  else if (!v.h_name_.empty() && !v.c_name_.empty()) v.kind_ = "v4";
  else return make_error(ErrorCode::kInvalidArgument, "not a Silero VAD model: no 'state' nor 'h' and 'c' inputs");
  if (session.outputs().size() < 2) return make_error(ErrorCode::kInvalidArgument, "not a Silero VAD model: fewer than two outputs");
  v.session_ = std::make_unique<onnx::Session>(std::move(session));
  v.reset();
  return v;
}

void SileroVad::reset() {
  if (kind_ == "v5") {
    state_ = Tensor::make(DType::kFloat, {2, 1, state_size_}).value();
    context_.assign(kContext, 0.0f);
  } else {
    h_ = Tensor::make(DType::kFloat, {2, 1, 64}).value();
    c_ = Tensor::make(DType::kFloat, {2, 1, 64}).value();
  }
}

Result<float> SileroVad::process(std::span<const float> window) {
  if (window.size() != kWindow) {
    return make_error(ErrorCode::kInvalidArgument, "a VAD window is {} samples, got {}", kWindow, window.size());
  }
  std::vector<std::pair<std::string, Tensor>> feeds;
  if (kind_ == "v5") {
    HEARTH_ASSIGN_OR_RETURN(Tensor x, Tensor::make(DType::kFloat, {1, kContext + kWindow}));
    std::memcpy(x.data<float>(), context_.data(), kContext * sizeof(float));
    std::memcpy(x.data<float>() + kContext, window.data(), kWindow * sizeof(float));
    feeds.emplace_back(input_name_, std::move(x));
    feeds.emplace_back(state_name_, state_);
    std::copy(window.end() - kContext, window.end(), context_.begin());
  } else {
    HEARTH_ASSIGN_OR_RETURN(Tensor x, Tensor::from_values<float>({1, kWindow}, window));
    feeds.emplace_back(input_name_, std::move(x));
    feeds.emplace_back(h_name_, h_);
    feeds.emplace_back(c_name_, c_);
  }
  if (!sr_name_.empty()) feeds.emplace_back(sr_name_, Tensor::scalar<int64_t>(kSampleRate));
  HEARTH_ASSIGN_OR_RETURN(auto out, session_->run(feeds));
  if (out[0].dtype() != DType::kFloat || out[0].numel() < 1) {
    return make_error(ErrorCode::kInvalidArgument, "the VAD model's output is {} {}, expected a float probability",
                      onnx::dtype_name(out[0].dtype()), onnx::shape_string(out[0].shape()));
  }
  const float p = out[0].data<float>()[0];
  if (kind_ == "v5") {
    state_ = out[1];
  } else {
    if (out.size() < 3) return make_error(ErrorCode::kInvalidArgument, "a v4 VAD model has three outputs (output, hn, cn)");
    h_ = out[1];
    c_ = out[2];
  }
  return p;
}

Result<std::vector<float>> vad_probabilities(SileroVad& vad, std::span<const float> samples) {
  vad.reset();
  std::vector<float> probs;
  std::vector<float> win(SileroVad::kWindow);
  for (size_t off = 0; off < samples.size(); off += SileroVad::kWindow) {
    const size_t n = std::min<size_t>(SileroVad::kWindow, samples.size() - off);
    std::fill(win.begin(), win.end(), 0.0f);
    std::copy_n(samples.begin() + static_cast<std::ptrdiff_t>(off), n, win.begin());
    HEARTH_ASSIGN_OR_RETURN(float p, vad.process(win));
    probs.push_back(p);
  }
  return probs;
}

std::vector<VadSegment> speech_segments(std::span<const float> probs, int64_t n_samples, const VadOptions& opt) {
  const int64_t sr = SileroVad::kSampleRate, win = SileroVad::kWindow;
  const int64_t min_speech = sr * opt.min_speech_ms / 1000;
  const int64_t min_silence = sr * opt.min_silence_ms / 1000;
  const int64_t pad = sr * opt.speech_pad_ms / 1000;
  const float neg = opt.neg_threshold >= 0 ? opt.neg_threshold : std::max(opt.threshold - 0.15f, 0.01f);
  std::vector<VadSegment> out;
  bool triggered = false;
  int64_t temp_end = 0;
  VadSegment cur;
  for (size_t i = 0; i < probs.size(); ++i) {
    const float p = probs[i];
    const int64_t pos = win * static_cast<int64_t>(i);
    if (p >= opt.threshold && temp_end) temp_end = 0;
    if (p >= opt.threshold && !triggered) {
      triggered = true;
      cur.start_sample = pos;
      continue;
    }
    if (p < neg && triggered) {
      if (!temp_end) temp_end = pos;
      if (pos - temp_end < min_silence) continue;
      cur.end_sample = temp_end;
      if (cur.end_sample - cur.start_sample > min_speech) out.push_back(cur);
      cur = VadSegment();
      temp_end = 0;
      triggered = false;
    }
  }
  if (triggered && n_samples - cur.start_sample > min_speech) {
    cur.end_sample = n_samples;
    out.push_back(cur);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (i == 0) out[i].start_sample = std::max<int64_t>(0, out[i].start_sample - pad);
    if (i + 1 < out.size()) {
      const int64_t silence = out[i + 1].start_sample - out[i].end_sample;
      if (silence < 2 * pad) {
        out[i].end_sample += silence / 2;
        out[i + 1].start_sample = std::max<int64_t>(0, out[i + 1].start_sample - silence / 2);
      } else {
        out[i].end_sample = std::min(n_samples, out[i].end_sample + pad);
        out[i + 1].start_sample = std::max<int64_t>(0, out[i + 1].start_sample - pad);
      }
    } else {
      out[i].end_sample = std::min(n_samples, out[i].end_sample + pad);
    }
  }
  for (auto& s : out) {
    s.start = static_cast<double>(s.start_sample) / sr;
    s.end = static_cast<double>(s.end_sample) / sr;
  }
  return out;
}

}  // namespace hearth::perception
