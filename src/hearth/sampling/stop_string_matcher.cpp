#include "hearth/sampling/stop_string_matcher.h"

#include <algorithm>
#include <deque>

namespace hearth::sampling {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings, bool hold_incomplete_utf8)
    : stops_(std::move(stop_strings)), hold_utf8_(hold_incomplete_utf8) {
  build();
}

int32_t StopStringMatcher::child(int32_t node, unsigned char c) const {
  for (const auto& [byte, to] : nodes_[static_cast<size_t>(node)].next) {
    if (byte == c) return to;
  }
  return -1;
}

// The goto function: follow fail links until an edge for c exists (amortized O(1) per byte,
// since each fail step shortens the depth gained by earlier bytes).
int32_t StopStringMatcher::advance(int32_t node, unsigned char c) const {
  for (;;) {
    if (int32_t to = child(node, c); to >= 0) return to;
    if (node == 0) return 0;
    node = nodes_[static_cast<size_t>(node)].fail;
  }
}

void StopStringMatcher::build() {
  nodes_.assign(1, Node{});
  for (size_t i = 0; i < stops_.size(); ++i) {
    int32_t node = 0;
    for (char ch : stops_[i]) {
      const auto c = static_cast<unsigned char>(ch);
      int32_t to = child(node, c);
      if (to < 0) {
        to = static_cast<int32_t>(nodes_.size());
        Node n;
        n.depth = nodes_[static_cast<size_t>(node)].depth + 1;
        nodes_.push_back(std::move(n));
        nodes_[static_cast<size_t>(node)].next.emplace_back(c, to);
      }
      node = to;
    }
    if (node != 0 && nodes_[static_cast<size_t>(node)].stop < 0)
      nodes_[static_cast<size_t>(node)].stop = static_cast<int32_t>(i);
  }
  // Fail and dictionary links, breadth first so that shallower nodes are done first.
  std::deque<int32_t> queue;
  for (const auto& [c, to] : nodes_[0].next) queue.push_back(to);
  while (!queue.empty()) {
    const int32_t u = queue.front();
    queue.pop_front();
    for (const auto& [c, v] : nodes_[static_cast<size_t>(u)].next) {
      const int32_t f = u == 0 ? 0 : advance(nodes_[static_cast<size_t>(u)].fail, c);
      Node& nv = nodes_[static_cast<size_t>(v)];
      nv.fail = f == v ? 0 : f;
      const Node& nf = nodes_[static_cast<size_t>(nv.fail)];
      nv.dict = nf.stop >= 0 ? nv.fail : nf.dict;
      queue.push_back(v);
    }
  }
}

StopStringMatcher::Step StopStringMatcher::push(std::string_view piece) {
  Step step;
  if (stopped_) {
    step.stopped = true;
    step.stop_index = stop_index_;
    step.stop_offset = stop_offset_;
    return step;
  }
  const size_t base = buffer_.size();
  buffer_.append(piece);

  // Every stop ending inside this piece; the earliest start wins, then the lowest index. A stop
  // that started before the piece started in buffer_: the state's depth is always held back.
  size_t best_pos = std::string::npos;
  size_t best_index = 0;
  for (size_t i = 0; i < piece.size(); ++i) {
    state_ = advance(state_, static_cast<unsigned char>(piece[i]));
    const Node& at = nodes_[static_cast<size_t>(state_)];
    for (int32_t u = at.stop >= 0 ? state_ : at.dict; u >= 0; u = nodes_[static_cast<size_t>(u)].dict) {
      const Node& m = nodes_[static_cast<size_t>(u)];
      const size_t pos = base + i + 1 - static_cast<size_t>(m.depth);
      const auto index = static_cast<size_t>(m.stop);
      if (pos < best_pos || (pos == best_pos && index < best_index)) {
        best_pos = pos;
        best_index = index;
      }
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

  const size_t hold =
      std::max(static_cast<size_t>(nodes_[static_cast<size_t>(state_)].depth), hold_utf8_ ? utf8_holdback() : 0);
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
  state_ = 0;
  emitted_ = 0;
  stopped_ = false;
  stop_index_ = 0;
  stop_offset_ = 0;
}

// The length of a trailing UTF-8 sequence whose lead byte announces more bytes than are present
// (RFC 3629, section 3). Malformed tails are not held: they cannot become valid.
size_t StopStringMatcher::utf8_holdback() const {
  const size_t n = buffer_.size();
  size_t cont = 0;
  while (cont < 3 && cont < n && (static_cast<unsigned char>(buffer_[n - 1 - cont]) & 0xC0) == 0x80) {
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
