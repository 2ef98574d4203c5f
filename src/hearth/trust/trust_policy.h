// The trust policy ($HEARTH_HOME/trust/policy.json): which publisher keys may publish which
// model names, which versions are acceptable, whether unsigned store models may load and
// whether plain file paths may load at all. Example:
//   {
//     "allow_unsigned": false,
//     "local_paths": "allow",                 // or "deny" on production nodes
//     "publishers": [
//       {"name": "acme", "key": "keys/acme.pub", "models": ["acme/*"], "min_version": 1}
//     ]
//   }
// Key paths are relative to the policy file's directory. A missing policy file means: no
// trusted publishers, unsigned refused, local paths allowed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/trust/signing_key.h"

namespace hearth::trust {

struct Publisher {
  std::string name;
  std::string key_path;  // as written in the file
  PublicKey key;
  std::vector<std::string> models;  // name patterns (see store::name_matches)
  uint64_t min_version = 0;
  uint64_t max_version = 0;  // 0: no upper bound

  bool may_publish(std::string_view model_name) const;
};

struct TrustPolicy {
  std::string path;  // where it was loaded from (empty: built-in default)
  bool allow_unsigned = false;
  bool local_paths_allowed = true;
  std::vector<Publisher> publishers;

  const Publisher* find_by_key_id(std::string_view key_id) const;
};

std::string default_policy_path(const std::string& home);
// Loads `path`; a missing file yields the default policy. Bad files are InvalidArgument.
Result<TrustPolicy> load_policy(const std::string& path);
Result<TrustPolicy> parse_policy(std::string_view json, const std::string& path);
std::string serialize_policy(const TrustPolicy& p);

}  // namespace hearth::trust
