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
    return make_error(
        ErrorCode::kDataLoss,
        "{}: version lock state is corrupt (refusing to guess; restore it or delete it to reset rollback protection)",
        path);
  }
  return j;
}

// The highest version of `name` from any key, and the key that signed it.
std::pair<uint64_t, std::string> lookup(const json& j, const std::string& name) {
  std::pair<uint64_t, std::string> best{0, ""};
  auto n = j.find(name);
  if (n == j.end() || !n->is_object()) return best;
  for (auto k = n->begin(); k != n->end(); ++k) {
    if (k->is_number_unsigned() && k->get<uint64_t>() > best.first) best = {k->get<uint64_t>(), k.key()};
  }
  return best;
}

Status rollback(const std::string& name, uint64_t version, const std::pair<uint64_t, std::string>& seen) {
  return make_error(ErrorCode::kPermissionDenied,
                    "rollback refused: '{}' version {} is older than version {} already accepted (signed by key {}); a "
                    "lower version is refused whichever trusted key signed it",
                    name, version, seen.first, seen.second.substr(0, 16));
}

}  // namespace

std::string VersionLock::path() const { return home_ + "/trust/versions.json"; }

Result<uint64_t> VersionLock::highest(const std::string& model_name) const {
  HEARTH_ASSIGN_OR_RETURN(json j, load(path()));
  return lookup(j, model_name).first;
}

Status VersionLock::check(const std::string& model_name, uint64_t version) const {
  HEARTH_ASSIGN_OR_RETURN(json j, load(path()));
  auto seen = lookup(j, model_name);
  return version < seen.first ? rollback(model_name, version, seen) : ok_status();
}

Status VersionLock::check_and_record(const std::string& model_name, const std::string& key_id, uint64_t version) {
  std::error_code ec;
  std::filesystem::create_directories(home_ + "/trust", ec);
  HEARTH_ASSIGN_OR_RETURN(store::FileLock lock,
                          store::FileLock::acquire(home_ + "/trust/versions.lock", store::FileLock::Mode::kExclusive));
  HEARTH_ASSIGN_OR_RETURN(json j, load(path()));
  auto seen = lookup(j, model_name);
  if (version < seen.first) return rollback(model_name, version, seen);
  auto n = j.find(model_name);
  if (n != j.end() && n->is_object()) {
    auto k = n->find(key_id);
    if (k != n->end() && k->is_number_unsigned() && k->get<uint64_t>() >= version) return ok_status();
  }
  if (!j[model_name].is_object()) j[model_name] = json::object();
  j[model_name][key_id] = version;
  return write_file_atomic(path(), j.dump(2) + "\n");
}

}  // namespace hearth::trust
