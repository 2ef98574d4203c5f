#include "hearth/sampling/stop_string_matcher.h"

#include <algorithm>

namespace hearth::sampling {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings, bool hold_incomplete_utf8)
    : stops_(std::move(stop_strings)), hold_utf8_(hold_incomplete_utf8) {}

StopStringMatcher::Step StopStringMatcher::push(std::string_view piece) {
  Step step;
  if (stopped_) {
    step.stopped = true;
    step.stop_index = stop_index_;
    step.stop_offset = stop_offset_;
    return step;
  }
  buffer_.append(piece);

  // Everything before buffer_ was already emitted and cannot start a stop string: any suffix of
  // it that began a stop would have been held back. So searching buffer_ alone is complete.
  size_t best_pos = std::string::npos;
  size_t best_index = 0;
  for (size_t i = 0; i < stops_.size(); ++i) {
    if (stops_[i].empty()) continue;
    size_t pos = buffer_.find(stops_[i]);
    if (pos < best_pos) {
      best_pos = pos;
      best_index = i;
    }
  }
  if (best_pos != std::string::npos) {
    step.text = buffer_.substr(0, best_pos);
    emitted_ += best_pos;
    stopped_ = true;
    stop_index_ = best_index;
    stop_offset_ = emitted_;
    buffer_.clear();
    step.stopped = true;
    step.stop_index = stop_index_;
    step.stop_offset = stop_offset_;
    return step;
  }

  const size_t hold = std::max(stop_prefix_holdback(), hold_utf8_ ? utf8_holdback() : 0);
  const size_t emit = buffer_.size() - hold;
  step.text = buffer_.substr(0, emit);
  buffer_.erase(0, emit);
  emitted_ += emit;
  return step;
}

std::string StopStringMatcher::finish() {
  std::string rest;
  rest.swap(buffer_);
  emitted_ += rest.size();
  return rest;
}

void StopStringMatcher::reset() {
  buffer_.clear();
  emitted_ = 0;
  stopped_ = false;
  stop_index_ = 0;
  stop_offset_ = 0;
}

// The length of the longest suffix of buffer_ that is a proper prefix of some stop string.
size_t StopStringMatcher::stop_prefix_holdback() const {
  const std::string_view buf = buffer_;
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    const size_t longest = std::min(stop.size() - (stop.empty() ? 0 : 1), buf.size());
    for (size_t k = longest; k > hold; --k) {
      if (buf.substr(buf.size() - k) == std::string_view(stop).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

// The length of a trailing UTF-8 sequence whose lead byte announces more bytes than are present
// (RFC 3629, section 3). Malformed tails are not held: they cannot become valid.
size_t StopStringMatcher::utf8_holdback() const {
  const size_t n = buffer_.size();
  size_t cont = 0;
  while (cont < 3 && cont < n &&
         (static_cast<unsigned char>(buffer_[n - 1 - cont]) & 0xC0) == 0x80) {
    ++cont;
  }
  if (cont == n) return 0;
  const unsigned char lead = static_cast<unsigned char>(buffer_[n - 1 - cont]);
  size_t need = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 3;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 4;
  } else {
    return 0;
  }
  const size_t have = cont + 1;
  return have < need ? have : 0;
}

}  // namespace hearth::sampling
