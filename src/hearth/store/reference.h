// Model references: "name:tag", "name@sha256:<hex>" (a digest pin), or "name" (tag "latest").
// Names follow the OCI distribution grammar: lowercase path components of [a-z0-9] joined by
// '.', '_', '__' or runs of '-', separated by '/'. Tags are [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
#pragma once

#include <string>
#include <string_view>

#include "hearth/core/status.h"
#include "hearth/store/digest.h"

namespace hearth::store {

struct Reference {
  std::string name;
  std::string tag;  // empty when pinned by digest only
  Digest digest;    // valid() when pinned

  bool pinned() const { return digest.valid(); }
  // "name@sha256:..." when pinned, else "name:tag".
  std::string to_string() const;
};

Result<Reference> parse_reference(std::string_view text);
bool is_valid_name(std::string_view name);
bool is_valid_tag(std::string_view tag);

// Shell-style pattern match used by trust policies: '*' matches any run of characters except
// '/', "**" matches anything, '?' one character. Exact otherwise.
bool name_matches(std::string_view pattern, std::string_view name);

}  // namespace hearth::store
