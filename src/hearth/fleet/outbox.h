// Outbox: the node's events, kept on disk until the broker has them. An event is written
// (atomically) before it is published and removed when the broker acknowledges it, so events
// raised while the node is offline survive a crash or kill -9 and go out after the next
// connect. Entries are `<seq>.json` (seq zero-padded), read back in seq order; the controller
// drops the duplicates that a resend after a lost acknowledgement can make.
//
// The outbox is bounded: beyond `max_entries` the oldest are dropped (and counted), so a node
// offline for months cannot fill its disk with events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::fleet {

class Outbox {
 public:
  static constexpr size_t kMaxPayloadBytes = 64 * 1024;

  // Creates `dir` when missing. Files that are not `<seq>.json` (temp files of an interrupted
  // write, anything else) are ignored.
  static Result<Outbox> open(const std::string& dir, size_t max_entries = 10000);

  // Stores an event under its seq (which the caller makes strictly increasing).
  Status add(uint64_t seq, const std::string& payload);
  // Removes an event the broker acknowledged; a missing one is fine (acknowledged twice).
  void remove(uint64_t seq);
  // Every stored event, oldest first. Unreadable or oversized entries are skipped with a warning
  // and removed.
  std::vector<std::pair<uint64_t, std::string>> pending();
  size_t size() const;
  uint64_t dropped() const { return dropped_; }

 private:
  Outbox(std::string dir, size_t max_entries) : dir_(std::move(dir)), max_entries_(max_entries) {}
  std::string path(uint64_t seq) const;
  std::vector<uint64_t> seqs() const;

  std::string dir_;
  size_t max_entries_;
  uint64_t dropped_ = 0;
};

}  // namespace hearth::fleet
