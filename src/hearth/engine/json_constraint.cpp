// The JSON grammar (RFC 8259) as a byte-level pushdown matcher, with the JsonSchema subset
// layered on top. See json_constraint.h.
#include "hearth/engine/json_constraint.h"

#include <string>

namespace hearth::engine {
namespace {

using Frame = JsonConstraint::Frame;
using Path = JsonConstraint::Path;
using Kind = Frame::Kind;
using Phase = Frame::Phase;

constexpr std::string_view kKeywords[3] = {"true", "false", "null"};

bool is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Literal candidates: >= 0 index a node's literals; -1, -2, -3 are true, false, null.
std::string_view literal_text(const JsonSchemaNode& n, int idx) {
  return idx >= 0 ? std::string_view(n.literals[static_cast<size_t>(idx)]) : kKeywords[-idx - 1];
}

bool literal_complete(const JsonSchema& s, const Frame& f) {
  for (int c : f.candidates) {
    if (literal_text(s.nodes[static_cast<size_t>(f.node)], c).size() == static_cast<size_t>(f.sub)) return true;
  }
  return false;
}

bool literal_extendable(const JsonSchema& s, const Frame& f) {
  for (int c : f.candidates) {
    if (literal_text(s.nodes[static_cast<size_t>(f.node)], c).size() > static_cast<size_t>(f.sub)) return true;
  }
  return false;
}

// Number grammar states: 0 start, 1 after '-', 2 after a leading 0, 3 integer digits, 4 after
// '.', 5 fraction digits, 6 after 'e', 7 after the exponent sign, 8 exponent digits.
bool number_accepting(int s) { return s == 2 || s == 3 || s == 5 || s == 8; }

// Returns the next state, or -1.
int number_next(Frame& f, unsigned char c) {
  const int s = f.sub;
  auto digit = [&](int next, bool new_part) {
    f.count = new_part ? 1 : f.count + 1;
    return f.count > JsonConstraint::kMaxDigits ? -1 : next;
  };
  switch (s) {
    case 0:
      if (c == '-') return 1;
      [[fallthrough]];
    case 1:
      if (c == '0') return digit(2, true);
      if (c >= '1' && c <= '9') return digit(3, true);
      return -1;
    case 2:
    case 3:
      if (s == 3 && is_digit(c)) return digit(3, false);
      if (f.integer_only) return -1;
      if (c == '.') return 4;
      if (c == 'e' || c == 'E') return 6;
      return -1;
    case 4: return is_digit(c) ? digit(5, true) : -1;
    case 5:
      if (is_digit(c)) return digit(5, false);
      if (c == 'e' || c == 'E') return 6;
      return -1;
    case 6:
      if (c == '+' || c == '-') return 7;
      [[fallthrough]];
    case 7: return is_digit(c) ? digit(8, true) : -1;
    case 8: return is_digit(c) ? digit(8, false) : -1;
  }
  return -1;
}

bool required_satisfied(const JsonSchemaNode& n, const Frame& f) {
  for (const std::string& r : n.required) {
    for (size_t i = 0; i < n.properties.size(); ++i) {
      if (n.properties[i].first == r && !f.used[i]) return false;
    }
  }
  return true;
}

bool restricts_keys(const JsonSchemaNode& n) { return !n.properties.empty() && !n.additional_properties; }

bool any_key_left(const JsonSchemaNode& n, const Frame& f) {
  if (!restricts_keys(n)) return true;
  for (uint8_t u : f.used) {
    if (!u) return true;
  }
  return false;
}

// Unused declared property whose name starts with (or, with exact, equals) the key so far.
int match_key(const JsonSchemaNode& n, const Frame& f, bool exact) {
  for (size_t i = 0; i < n.properties.size(); ++i) {
    if (f.used[i]) continue;
    const std::string& k = n.properties[i].first;
    if (exact ? k == f.key : k.compare(0, f.key.size(), f.key) == 0 && k.size() >= f.key.size()) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// The concrete alternatives of `node`: its anyOf (and $ref) entries expanded, depth first, each
// node once. A node already on the way (a union that loops back to itself) adds nothing, since
// a union containing itself means the same as the union without it. Stops past `cap`.
void flatten(const JsonSchema& s, int node, std::vector<char>& seen, std::vector<int>& out, size_t cap) {
  if (seen[static_cast<size_t>(node)] || out.size() > cap) return;
  seen[static_cast<size_t>(node)] = 1;
  const JsonSchemaNode& n = s.nodes[static_cast<size_t>(node)];
  if (n.any_of.empty()) {
    out.push_back(node);
    return;
  }
  for (int a : n.any_of) flatten(s, a, seen, out, cap);
}

Frame value_frame(int node) {
  Frame f;
  f.kind = Kind::kValue;
  f.node = node;
  return f;
}

// The value on top of the stack is complete: pop it and let the parent move on.
void complete_value(Path& p) {
  p.pop_back();
  Frame& parent = p.back();
  parent.ws = 0;
  if (parent.kind == Kind::kTop) parent.phase = Phase::kDone;
}

}  // namespace

Result<JsonConstraint> JsonConstraint::create(std::shared_ptr<const JsonSchema> schema) {
  if (!schema || schema->nodes.empty()) return make_error(ErrorCode::kInvalidArgument, "json schema: no nodes");
  const int n = static_cast<int>(schema->nodes.size());
  auto bad = [n](int i) { return i < 0 || i >= n; };
  if (bad(schema->root)) return make_error(ErrorCode::kInvalidArgument, "json schema: root node out of range");
  for (const JsonSchemaNode& node : schema->nodes) {
    for (int a : node.any_of) {
      if (bad(a)) return make_error(ErrorCode::kInvalidArgument, "json schema: anyOf node out of range");
    }
    for (const auto& pr : node.properties) {
      if (bad(pr.second)) return make_error(ErrorCode::kInvalidArgument, "json schema: property node out of range");
    }
    if (bad(node.items) || bad(node.additional_schema)) {
      return make_error(ErrorCode::kInvalidArgument, "json schema: items node out of range");
    }
    for (const std::string& l : node.literals) {
      if (l.empty()) return make_error(ErrorCode::kInvalidArgument, "json schema: empty enum value");
    }
  }
  // Each union is flattened once here, not at every byte: O(nodes * (nodes + edges)) once,
  // with nodes and $ref uses capped by the schema parser.
  auto alternatives = std::make_shared<std::vector<std::vector<int>>>(static_cast<size_t>(n));
  std::vector<char> seen(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto& alts = (*alternatives)[static_cast<size_t>(i)];
    if (schema->nodes[static_cast<size_t>(i)].any_of.empty()) {
      alts.push_back(i);
      continue;
    }
    std::fill(seen.begin(), seen.end(), 0);
    flatten(*schema, i, seen, alts, kMaxAlternatives);
    if (alts.size() > kMaxAlternatives) {
      return make_error(ErrorCode::kInvalidArgument,
                        "json schema: a value has more than {} alternatives once anyOf/oneOf and $ref are expanded "
                        "(hearth's budget per value); merge or remove alternatives",
                        kMaxAlternatives);
    }
    if (alts.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "json schema: an anyOf/oneOf/$ref cycle matches no value (every alternative leads back to "
                        "itself); give it a concrete alternative");
    }
  }
  JsonConstraint c;
  c.schema_ = std::move(schema);
  c.alternatives_ = std::move(alternatives);
  c.budget_ = c.schema_->budget;
  Frame top;
  top.kind = Kind::kTop;
  c.paths_.push_back(Path{top, value_frame(c.schema_->root)});
  return c;
}

bool JsonConstraint::step(const Path& path, unsigned char c, std::vector<Path>& out) const {
  const JsonSchema& s = *schema_;
  Path p = path;
  Frame& f = p.back();
  const JsonSchemaNode& n = s.nodes[static_cast<size_t>(f.node)];
  charge(1);
  auto push = [&](Path&& q) {
    if (out.size() < kMaxPaths) out.push_back(std::move(q));
    return true;
  };
  auto whitespace = [&]() {
    if (f.ws >= kMaxWhitespace) return false;
    ++f.ws;
    return push(std::move(p));
  };

  switch (f.kind) {
    case Kind::kTop: return f.phase == Phase::kDone && is_ws(c) && whitespace();

    case Kind::kValue: {
      if (is_ws(c)) return whitespace();
      const std::vector<int>& alts = (*alternatives_)[static_cast<size_t>(f.node)];
      charge(alts.size());
      bool any = false;
      for (int a : alts) {
        const JsonSchemaNode& an = s.nodes[static_cast<size_t>(a)];
        Path q = p;
        Frame& g = q.back();
        g = Frame{};
        g.node = a;
        if (!an.literals.empty()) {
          g.kind = Kind::kLiteral;
          charge(an.literals.size());
          for (size_t i = 0; i < an.literals.size(); ++i) {
            if (static_cast<unsigned char>(an.literals[i][0]) == c) g.candidates.push_back(static_cast<int>(i));
          }
          if (g.candidates.empty()) continue;
          g.sub = 1;
          any = push(std::move(q));
        } else if (c == '{' && (an.types & json_type::kObject)) {
          g.kind = Kind::kObject;
          g.used.assign(an.properties.size(), 0);
          any = push(std::move(q));
        } else if (c == '[' && (an.types & json_type::kArray)) {
          g.kind = Kind::kArray;
          any = push(std::move(q));
        } else if (c == '"' && (an.types & json_type::kString)) {
          g.kind = Kind::kString;
          any = push(std::move(q));
        } else if ((c == '-' || is_digit(c)) && (an.types & (json_type::kNumber | json_type::kInteger))) {
          g.kind = Kind::kNumber;
          g.integer_only = (an.types & json_type::kNumber) == 0;
          int next = number_next(g, c);
          if (next < 0) continue;
          g.sub = next;
          any = push(std::move(q));
        } else if ((c == 't' || c == 'f') && (an.types & json_type::kBoolean)) {
          g.kind = Kind::kLiteral;
          g.candidates = {c == 't' ? -1 : -2};
          g.sub = 1;
          any = push(std::move(q));
        } else if (c == 'n' && (an.types & json_type::kNull)) {
          g.kind = Kind::kLiteral;
          g.candidates = {-3};
          g.sub = 1;
          any = push(std::move(q));
        }
      }
      return any;
    }

    case Kind::kLiteral: {
      charge(f.candidates.size());
      std::vector<int> next;
      for (int cand : f.candidates) {
        std::string_view t = literal_text(n, cand);
        if (t.size() > static_cast<size_t>(f.sub) && static_cast<unsigned char>(t[static_cast<size_t>(f.sub)]) == c) {
          next.push_back(cand);
        }
      }
      if (!next.empty()) {
        Path q = p;
        q.back().candidates = std::move(next);
        ++q.back().sub;
        push(std::move(q));
      }
      bool ok = !next.empty();
      if (literal_complete(s, f)) {
        complete_value(p);
        ok = step(p, c, out) || ok;
      }
      return ok;
    }

    case Kind::kNumber: {
      Frame g = f;
      int next = number_next(g, c);
      if (next >= 0) {
        g.sub = next;
        f = std::move(g);
        return push(std::move(p));
      }
      if (!number_accepting(f.sub)) return false;
      complete_value(p);
      return step(p, c, out);
    }

    case Kind::kString: {
      if (f.sub == 1) {
        if (c == 'u') {
          f.sub = 2;
        } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
          f.sub = 0;
          ++f.count;
        } else {
          return false;
        }
        return push(std::move(p));
      }
      if (f.sub >= 2) {
        if (!is_hex(c)) return false;
        if (++f.sub == 6) {
          f.sub = 0;
          ++f.count;
        }
        return push(std::move(p));
      }
      const bool full = n.max_length >= 0 && f.count >= n.max_length;
      if (c == '"') {
        if (f.count < n.min_length) return false;
        complete_value(p);
        return push(std::move(p));
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (full) return false;
        f.sub = 1;
        return push(std::move(p));
      }
      if ((c & 0xC0) != 0x80) {
        if (full) return false;
        ++f.count;
      }
      return push(std::move(p));
    }

    case Kind::kObject: {
      switch (f.phase) {
        case Phase::kStart:
        case Phase::kNeedKey:
        case Phase::kAfterValue:
          if (is_ws(c)) return whitespace();
          if (f.phase != Phase::kAfterValue && c == '"') {
            if (!any_key_left(n, f)) return false;
            f.phase = Phase::kKey;
            f.key.clear();
            f.ws = 0;
            return push(std::move(p));
          }
          if (f.phase == Phase::kAfterValue && c == ',') {
            if (!any_key_left(n, f)) return false;
            f.phase = Phase::kNeedKey;
            f.ws = 0;
            return push(std::move(p));
          }
          if (f.phase != Phase::kNeedKey && c == '}') {
            if (!required_satisfied(n, f)) return false;
            complete_value(p);
            return push(std::move(p));
          }
          return false;
        case Phase::kKey: {
          if (c == '"') {
            int idx = match_key(n, f, true);
            if (idx < 0 && restricts_keys(n)) return false;
            f.sub = idx;
            f.phase = Phase::kColon;
            return push(std::move(p));
          }
          if (c < 0x20 || c == '\\') return false;
          f.key.push_back(static_cast<char>(c));
          if (f.key.size() > static_cast<size_t>(kMaxKeyLength)) return false;
          if (restricts_keys(n) && match_key(n, f, false) < 0) return false;
          return push(std::move(p));
        }
        case Phase::kColon: {
          if (is_ws(c)) return whitespace();
          if (c != ':') return false;
          int child = n.additional_schema;
          if (f.sub >= 0) {
            f.used[static_cast<size_t>(f.sub)] = 1;
            child = n.properties[static_cast<size_t>(f.sub)].second;
          }
          f.phase = Phase::kAfterValue;
          f.ws = 0;
          p.push_back(value_frame(child));
          return push(std::move(p));
        }
        case Phase::kDone: return false;
      }
      return false;
    }

    case Kind::kArray: {
      if (is_ws(c)) return whitespace();
      if (c == ']') {
        if (f.phase == Phase::kStart ? n.min_items > 0 : f.count < n.min_items) return false;
        if (f.phase == Phase::kNeedKey) return false;  // after ','
        complete_value(p);
        return push(std::move(p));
      }
      if (f.phase == Phase::kAfterValue) {
        if (c != ',' || (n.max_items >= 0 && f.count >= n.max_items)) return false;
        f.phase = Phase::kNeedKey;  // reused: "after ','", a value must follow
        f.ws = 0;
        return push(std::move(p));
      }
      // kStart or after ',': the first byte of an item.
      if (f.phase == Phase::kStart && n.max_items == 0) return false;
      ++f.count;
      f.phase = Phase::kAfterValue;
      f.ws = 0;
      p.push_back(value_frame(n.items));
      return step(p, c, out);
    }
  }
  return false;
}

bool JsonConstraint::feed_all(std::vector<Path>& paths, std::string_view bytes) const {
  std::vector<Path> next;
  for (char ch : bytes) {
    if (over_budget()) return false;
    next.clear();
    for (const Path& p : paths) step(p, static_cast<unsigned char>(ch), next);
    if (next.empty() || over_budget()) return false;
    paths.swap(next);
  }
  return true;
}

bool JsonConstraint::accepts(std::string_view bytes) const {
  std::vector<Path> copy = paths_;
  return feed_all(copy, bytes);
}

bool JsonConstraint::advance(std::string_view bytes) {
  std::vector<Path> copy = paths_;
  if (!feed_all(copy, bytes)) return false;
  paths_ = std::move(copy);
  return true;
}

bool JsonConstraint::can_end() const {
  for (const Path& p : paths_) {
    if (p.size() == 1 && p[0].phase == Phase::kDone) return true;
    if (p.size() == 2) {
      const Frame& f = p[1];
      if (f.kind == Kind::kNumber && number_accepting(f.sub)) return true;
      if (f.kind == Kind::kLiteral && literal_complete(*schema_, f)) return true;
    }
  }
  return false;
}

bool JsonConstraint::must_end() const {
  if (paths_.empty()) return false;
  for (const Path& p : paths_) {
    if (p.size() == 1 && p[0].phase == Phase::kDone) continue;
    if (p.size() == 2 && p[1].kind == Kind::kLiteral && literal_complete(*schema_, p[1]) &&
        !literal_extendable(*schema_, p[1])) {
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace hearth::engine
