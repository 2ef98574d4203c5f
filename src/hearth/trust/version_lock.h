// Rollback protection: the highest model version seen per (signed model name, publisher key),
// kept in $HEARTH_HOME/trust/versions.json. A verified model with a lower version than the
// highest already accepted for the same name and publisher is refused.
#pragma once

#include <cstdint>
#include <string>

#include "hearth/core/status.h"

namespace hearth::trust {

class VersionLock {
 public:
  explicit VersionLock(std::string home) : home_(std::move(home)) {}

  // 0 when nothing was seen yet.
  Result<uint64_t> highest(const std::string& model_name, const std::string& key_id) const;
  // PermissionDenied when `version` is below the highest seen; otherwise records it (atomically,
  // under trust/versions.lock) and succeeds.
  Status check_and_record(const std::string& model_name, const std::string& key_id, uint64_t version);

 private:
  std::string path() const;
  std::string home_;
};

}  // namespace hearth::trust
