// Audio for the speech tasks: any file libsndfile reads (WAV, FLAC, ...), mixed down to mono
// float, and resampled with libsamplerate. Hostile-input limits: channels, rate and length are
// checked before the samples are read.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::perception {

struct Audio {
  int sample_rate = 0;
  std::vector<float> samples;  // mono, in [-1, 1]
  double seconds() const { return sample_rate ? static_cast<double>(samples.size()) / sample_rate : 0.0; }
};

inline constexpr int64_t kMaxAudioFrames = int64_t{4} << 30 >> 2;  // 2^30 frames: ~18.6 h at 16 kHz
inline constexpr int kMaxAudioChannels = 64;

Result<Audio> load_audio(const std::string& path);
// The same from bytes in memory (an upload); `what` names them in errors.
Result<Audio> decode_audio(std::span<const std::byte> bytes, const std::string& what);
// Resamples to `rate` (libsamplerate's medium-quality sinc converter); the same audio if already there.
Result<Audio> resample(const Audio& in, int rate);

}  // namespace hearth::perception
