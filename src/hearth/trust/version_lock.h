// Rollback protection: the highest model version seen per signed model name, kept in
// $HEARTH_HOME/trust/versions.json as {name: {key_id: highest version from that key}}. A
// verified model with a lower version than the highest already accepted for the same name is
// refused, whichever trusted key signed either of them: a second trusted publisher (or a
// rotated key) cannot bring back an old version.
#pragma once

#include <cstdint>
#include <string>

#include "hearth/core/status.h"

namespace hearth::trust {

class VersionLock {
 public:
  explicit VersionLock(std::string home) : home_(std::move(home)) {}

  // The highest version accepted for the name from any key; 0 when nothing was seen yet.
  Result<uint64_t> highest(const std::string& model_name) const;
  // PermissionDenied when `version` is below the highest seen for the name (any key);
  // otherwise records it under `key_id` (atomically, under trust/versions.lock) and succeeds.
  // As check_and_record, without recording.
  Status check(const std::string& model_name, uint64_t version) const;
  Status check_and_record(const std::string& model_name, const std::string& key_id, uint64_t version);

 private:
  std::string path() const;
  std::string home_;
};

}  // namespace hearth::trust
