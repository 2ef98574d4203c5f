#include "hearth/perception/audio.h"

#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace hearth::perception {

namespace {

// libsndfile's virtual I/O over a byte span.
struct MemFile {
  std::span<const std::byte> bytes;
  sf_count_t pos = 0;
};
sf_count_t mem_length(void* u) { return static_cast<sf_count_t>(static_cast<MemFile*>(u)->bytes.size()); }
sf_count_t mem_seek(sf_count_t off, int whence, void* u) {
  auto* m = static_cast<MemFile*>(u);
  const sf_count_t size = static_cast<sf_count_t>(m->bytes.size());
  sf_count_t base = whence == SEEK_CUR ? m->pos : whence == SEEK_END ? size : 0;
  if (off > size || off < -size) return -1;
  const sf_count_t p = base + off;
  if (p < 0 || p > size) return -1;
  m->pos = p;
  return p;
}
sf_count_t mem_read(void* ptr, sf_count_t count, void* u) {
  auto* m = static_cast<MemFile*>(u);
  const sf_count_t left = static_cast<sf_count_t>(m->bytes.size()) - m->pos;
  const sf_count_t n = std::max<sf_count_t>(0, std::min(count, left));
  if (n > 0) std::memcpy(ptr, m->bytes.data() + m->pos, static_cast<size_t>(n));
  m->pos += n;
  return n;
}
sf_count_t mem_write(const void*, sf_count_t, void*) { return 0; }
sf_count_t mem_tell(void* u) { return static_cast<MemFile*>(u)->pos; }

Result<Audio> read_all(SNDFILE* f, SF_INFO& info, const std::string& path);

}  // namespace

Result<Audio> decode_audio(std::span<const std::byte> bytes, const std::string& what) {
  SF_VIRTUAL_IO io{mem_length, mem_seek, mem_read, mem_write, mem_tell};
  MemFile mem{bytes, 0};
  SF_INFO info{};
  SNDFILE* f = sf_open_virtual(&io, SFM_READ, &info, &mem);
  if (!f) return make_error(ErrorCode::kInvalidArgument, "{}: not a readable audio file ({})", what, sf_strerror(nullptr));
  return read_all(f, info, what);
}

Result<Audio> load_audio(const std::string& path) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) return make_error(ErrorCode::kInvalidArgument, "{}: not a readable audio file ({})", path, sf_strerror(nullptr));
  return read_all(f, info, path);
}

namespace {

Result<Audio> read_all(SNDFILE* f, SF_INFO& info, const std::string& path) {
  struct Closer {
    SNDFILE* f;
    ~Closer() { sf_close(f); }
  } closer{f};
  if (info.channels < 1 || info.channels > kMaxAudioChannels) {
    return make_error(ErrorCode::kOutOfRange, "{}: {} channels (1..{} supported)", path, info.channels, kMaxAudioChannels);
  }
  if (info.samplerate < 1000 || info.samplerate > 768000) {
    return make_error(ErrorCode::kOutOfRange, "{}: sample rate {} Hz is outside 1000..768000", path, info.samplerate);
  }
  if (info.frames < 0 || info.frames > kMaxAudioFrames || info.frames * info.channels > kMaxAudioFrames) {
    return make_error(ErrorCode::kOutOfRange, "{}: {} frames of {} channels is more than hearth reads ({} samples)", path, info.frames,
                      info.channels, kMaxAudioFrames);
  }
  std::vector<float> inter(static_cast<size_t>(info.frames) * static_cast<size_t>(info.channels));
  const sf_count_t got = sf_readf_float(f, inter.data(), info.frames);
  if (got < 0) return make_error(ErrorCode::kInvalidArgument, "{}: reading samples failed", path);
  Audio a;
  a.sample_rate = info.samplerate;
  a.samples.resize(static_cast<size_t>(got));
  for (sf_count_t i = 0; i < got; ++i) {
    float s = 0;
    for (int c = 0; c < info.channels; ++c) s += inter[static_cast<size_t>(i) * static_cast<size_t>(info.channels) + static_cast<size_t>(c)];
    s /= static_cast<float>(info.channels);
    a.samples[static_cast<size_t>(i)] = std::isfinite(s) ? s : 0.0f;
  }
  return a;
}

}  // namespace

Result<Audio> resample(const Audio& in, int rate) {
  if (in.sample_rate == rate || in.samples.empty()) {
    Audio a = in;
    a.sample_rate = rate;
    return a;
  }
  const double ratio = static_cast<double>(rate) / in.sample_rate;
  Audio out;
  out.sample_rate = rate;
  out.samples.resize(static_cast<size_t>(std::ceil(static_cast<double>(in.samples.size()) * ratio)) + 16);
  SRC_DATA d{};
  d.data_in = in.samples.data();
  d.input_frames = static_cast<long>(in.samples.size());
  d.data_out = out.samples.data();
  d.output_frames = static_cast<long>(out.samples.size());
  d.src_ratio = ratio;
  const int err = src_simple(&d, SRC_SINC_MEDIUM_QUALITY, 1);
  if (err != 0) return make_error(ErrorCode::kInternal, "resampling {} Hz to {} Hz failed: {}", in.sample_rate, rate, src_strerror(err));
  out.samples.resize(static_cast<size_t>(d.output_frames_gen));
  return out;
}

}  // namespace hearth::perception
