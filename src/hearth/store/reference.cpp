#include "hearth/store/reference.h"

namespace hearth::store {
namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool is_valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (is_lower_alnum(ch)) continue;
    if (ch == '.' || ch == '_' || ch == '-') {
      // '.' alone, '_' or '__', or a run of '-'; separators never mix and never repeat (except
      // '__' and '--...').
      char next = c[i + 1];
      if (ch == '.' && !is_lower_alnum(next)) return false;
      if (ch == '_' && !(is_lower_alnum(next) || (next == '_' && is_lower_alnum(c[i + 2])))) return false;
      if (ch == '_' && next == '_') ++i;
      if (ch == '-' && !(is_lower_alnum(next) || next == '-')) return false;
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  size_t start = 0;
  for (;;) {
    size_t slash = name.find('/', start);
    std::string_view comp = name.substr(start, slash == std::string_view::npos ? name.npos : slash - start);
    if (!is_valid_component(comp)) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool is_valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  };
  if (tag.front() == '.' || tag.front() == '-') return false;
  for (char c : tag) {
    if (!ok(c)) return false;
  }
  return true;
}

std::string Reference::to_string() const {
  if (pinned()) return name + "@" + digest.str();
  return name + ":" + tag;
}

Result<Reference> parse_reference(std::string_view text) {
  Reference ref;
  std::string_view rest = text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    auto d = Digest::parse(rest.substr(at + 1));
    if (!d.ok()) return d.status().with_context("reference '" + std::string(text) + "'");
    ref.digest = *d;
    rest = rest.substr(0, at);
  }
  // A tag follows the last ':' that comes after the last '/'.
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!is_valid_tag(ref.tag)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "reference '{}': bad tag '{}' (use letters, digits, '_', '.', '-'; at most 128)", text,
                        ref.tag);
    }
  }
  if (!is_valid_name(rest)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "reference '{}': bad name '{}' (use lowercase path components like 'acme/stories', separated by '/')", text,
        rest);
  }
  ref.name = std::string(rest);
  if (ref.tag.empty() && !ref.pinned()) ref.tag = "latest";
  return ref;
}

bool name_matches(std::string_view pattern, std::string_view name) {
  if (pattern.empty()) return name.empty();
  if (pattern.substr(0, 2) == "**") {
    for (size_t i = 0; i <= name.size(); ++i) {
      if (name_matches(pattern.substr(2), name.substr(i))) return true;
    }
    return false;
  }
  if (pattern.front() == '*') {
    for (size_t i = 0; i <= name.size(); ++i) {
      if (name_matches(pattern.substr(1), name.substr(i))) return true;
      if (i < name.size() && name[i] == '/') break;
    }
    return false;
  }
  if (name.empty()) return false;
  if (pattern.front() == '?' || pattern.front() == name.front()) {
    return name_matches(pattern.substr(1), name.substr(1));
  }
  return false;
}

}  // namespace hearth::store
