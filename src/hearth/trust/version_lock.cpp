#include "hearth/trust/version_lock.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "hearth/core/atomic_file.h"
#include "hearth/store/file_lock.h"

namespace hearth::trust {
namespace {

using json = nlohmann::json;

Result<json> load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return json::object();
  HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(path, 64u << 20));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::kDataLoss, path, ": version lock state is corrupt (refusing to guess; restore it or",
                      " delete it to reset rollback protection)");
  }
  return j;
}

uint64_t lookup(const json& j, const std::string& name, const std::string& key) {
  auto n = j.find(name);
  if (n == j.end() || !n->is_object()) return 0;
  auto k = n->find(key);
  return (k != n->end() && k->is_number_unsigned()) ? k->get<uint64_t>() : 0;
}

}  // namespace

std::string VersionLock::path() const { return home_ + "/trust/versions.json"; }

Result<uint64_t> VersionLock::highest(const std::string& model_name, const std::string& key_id) const {
  HEARTH_ASSIGN_OR_RETURN(json j, load(path()));
  return lookup(j, model_name, key_id);
}

Status VersionLock::check_and_record(const std::string& model_name, const std::string& key_id, uint64_t version) {
  std::error_code ec;
  std::filesystem::create_directories(home_ + "/trust", ec);
  HEARTH_ASSIGN_OR_RETURN(store::FileLock lock,
                          store::FileLock::acquire(home_ + "/trust/versions.lock", store::FileLock::Mode::kExclusive));
  HEARTH_ASSIGN_OR_RETURN(json j, load(path()));
  uint64_t seen = lookup(j, model_name, key_id);
  if (version < seen) {
    return make_error(ErrorCode::kPermissionDenied, "rollback refused: '", model_name, "' version ",
                      std::to_string(version), " is older than version ", std::to_string(seen),
                      " already accepted from this publisher");
  }
  if (version == seen && j.contains(model_name)) return ok_status();
  j[model_name][key_id] = version;
  return write_file_atomic(path(), j.dump(2) + "\n");
}

}  // namespace hearth::trust
