#include "hearth/fleet/outbox.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <system_error>

#include "hearth/core/atomic_file.h"
#include "hearth/core/log.h"

namespace hearth::fleet {

namespace fs = std::filesystem;

Result<Outbox> Outbox::open(const std::string& dir, size_t max_entries) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "outbox {}: {}", dir, ec.message());
  if (max_entries == 0) return make_error(ErrorCode::kInvalidArgument, "outbox {}: max_entries is 0", dir);
  return Outbox(dir, max_entries);
}

std::string Outbox::path(uint64_t seq) const { return fmt::format("{}/{:020}.json", dir_, seq); }

std::vector<uint64_t> Outbox::seqs() const {
  std::vector<uint64_t> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // Exactly 20 digits then ".json": anything else is not ours.
    if (name.size() != 25 || name.compare(20, 5, ".json") != 0) continue;
    uint64_t seq = 0;
    auto [p, err] = std::from_chars(name.data(), name.data() + 20, seq);
    if (err != std::errc() || p != name.data() + 20) continue;
    out.push_back(seq);
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t Outbox::size() const { return seqs().size(); }

Status Outbox::add(uint64_t seq, const std::string& payload) {
  if (payload.size() > kMaxPayloadBytes)
    return make_error(ErrorCode::kInvalidArgument, "outbox: event {} is {} bytes (limit {})", seq, payload.size(),
                      kMaxPayloadBytes);
  if (auto st = write_file_atomic(path(seq), payload); !st.ok()) return st.with_context("outbox");
  std::vector<uint64_t> all = seqs();
  if (all.size() > max_entries_) {
    const size_t excess = all.size() - max_entries_;
    for (size_t i = 0; i < excess; ++i) remove(all[i]);
    dropped_ += excess;
    log::warn("outbox {}: full ({} events); dropped the {} oldest", dir_, max_entries_, excess);
  }
  return ok_status();
}

void Outbox::remove(uint64_t seq) {
  std::error_code ec;
  fs::remove(path(seq), ec);
}

std::vector<std::pair<uint64_t, std::string>> Outbox::pending() {
  std::vector<std::pair<uint64_t, std::string>> out;
  for (uint64_t seq : seqs()) {
    auto text = read_file(path(seq), kMaxPayloadBytes + 1);
    if (!text.ok() || text->size() > kMaxPayloadBytes || text->empty()) {
      log::warn("outbox {}: dropped unreadable event {}", dir_, seq);
      remove(seq);
      continue;
    }
    out.emplace_back(seq, std::move(*text));
  }
  return out;
}

}  // namespace hearth::fleet
