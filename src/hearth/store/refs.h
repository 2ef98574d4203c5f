// The store's reference table (refs.json): per repository name its tags and the manifests it
// holds (digest pins), and per subject manifest its referrers (signatures). The file is
// replaced atomically under refs.lock, so readers never see a half-written table.
#pragma once

#include <map>
#include <set>
#include <string>

#include "hearth/core/status.h"
#include "hearth/store/digest.h"

namespace hearth::store {

struct RepoRefs {
  std::map<std::string, Digest> tags;
  std::set<Digest> manifests;  // every manifest held under this name (tags point into it)
};

struct RefsTable {
  std::map<std::string, RepoRefs> repos;
  std::map<Digest, std::set<Digest>> referrers;  // subject manifest -> referrer manifests
};

// Parses refs.json; every name, tag and digest is validated.
Result<RefsTable> parse_refs(std::string_view json, std::string_view path);
std::string serialize_refs(const RefsTable& table);

}  // namespace hearth::store
