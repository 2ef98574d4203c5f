// Tool-call syntaxes. Every call is JSON somewhere in the reply; what differs is the marker
// around it. The JSON is found by bracket matching (bounded by kMaxJsonDepth) and then parsed by
// nlohmann::json; anything that does not parse leaves the reply as plain content.
#include "hearth/server/tool_calls.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

namespace hearth::server {
namespace {

using ordered = nlohmann::ordered_json;
using engine::ToolCallSyntax;

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kMistralOpen = "[TOOL_CALLS]";
constexpr std::string_view kMistralArgs = "[ARGS]";
constexpr std::string_view kMistralCallId = "[CALL_ID]";
constexpr std::string_view kPythonTag = "<|python_tag|>";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// The end (one past the closing bracket) of the JSON object or array that opens at s[i], or npos
// when it does not close or nests deeper than kMaxJsonDepth.
size_t json_end(std::string_view s, size_t i) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return std::string_view::npos;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

std::string compact(const ordered& j) { return j.dump(-1, ' ', false, ordered::error_handler_t::replace); }

// Arguments as the wire sends them: a JSON object's text. A string holding an object is unwrapped.
bool arguments_text(const ordered& args, std::string& out) {
  if (args.is_object()) {
    out = compact(args);
    return true;
  }
  if (args.is_string()) {
    ordered inner = ordered::parse(args.get<std::string>(), nullptr, /*allow_exceptions=*/false);
    if (inner.is_discarded() || !inner.is_object()) return false;
    out = compact(inner);
    return true;
  }
  return false;
}

// {"name": ..., "arguments"|"parameters": {...}}.
bool call_from_object(const ordered& o, ToolCall& call) {
  if (!o.is_object()) return false;
  auto name = o.find("name");
  if (name == o.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) return false;
  call.name = name->get<std::string>();
  auto args = o.find("arguments");
  if (args == o.end()) args = o.find("parameters");
  if (args == o.end() || args->is_null()) {
    call.arguments = "{}";
    return true;
  }
  return arguments_text(*args, call.arguments);
}

// One JSON value at s[i] (an object, or an array of call objects): appends its calls and returns
// the end, or npos.
size_t take_json_calls(std::string_view s, size_t i, std::vector<ToolCall>& calls) {
  if (i >= s.size() || (s[i] != '{' && s[i] != '[')) return std::string_view::npos;
  const size_t end = json_end(s, i);
  if (end == std::string_view::npos) return end;
  ordered j = ordered::parse(s.substr(i, end - i), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::string_view::npos;
  const ordered items = j.is_array() ? j : ordered::array({j});
  if (items.empty()) return std::string_view::npos;
  for (const ordered& item : items) {
    ToolCall call;
    if (!call_from_object(item, call)) return std::string_view::npos;
    calls.push_back(std::move(call));
  }
  return end;
}

ParsedReply no_calls(std::string_view text) { return {std::string(text), {}}; }

ParsedReply with_calls(std::string content, std::vector<ToolCall> calls) {
  if (calls.size() > kMaxToolCallsPerMessage) calls.resize(kMaxToolCallsPerMessage);
  content.resize(trim_right(content).size());
  return {std::move(content), std::move(calls)};
}

// <tool_call>{json}</tool_call> blocks anywhere in the text (the closing tag may be missing at the end).
ParsedReply parse_hermes(std::string_view text) {
  std::string content;
  std::vector<ToolCall> calls;
  size_t pos = 0;
  while (true) {
    const size_t open = text.find(kHermesOpen, pos);
    if (open == std::string_view::npos) break;
    content.append(text.substr(pos, open - pos));
    const size_t end = take_json_calls(text, skip_space(text, open + kHermesOpen.size()), calls);
    if (end == std::string_view::npos) return no_calls(text);
    pos = skip_space(text, end);
    if (text.substr(pos).starts_with(kHermesClose)) {
      pos += kHermesClose.size();
    } else if (pos < text.size()) {
      return no_calls(text);
    }
  }
  if (calls.empty()) return no_calls(text);
  content.append(text.substr(pos));
  return with_calls(std::move(content), std::move(calls));
}

// [TOOL_CALLS][{...}, ...]  or  [TOOL_CALLS]name[CALL_ID]id[ARGS]{...}[TOOL_CALLS]... (the id optional)
ParsedReply parse_mistral(std::string_view text) {
  const size_t open = text.find(kMistralOpen);
  if (open == std::string_view::npos) return no_calls(text);
  std::vector<ToolCall> calls;
  size_t pos = skip_space(text, open + kMistralOpen.size());
  if (pos < text.size() && text[pos] == '[') {
    pos = take_json_calls(text, pos, calls);
    if (pos == std::string_view::npos) return no_calls(text);
  } else {
    while (true) {
      const size_t args = text.find(kMistralArgs, pos);
      if (args == std::string_view::npos) return no_calls(text);
      ToolCall call;
      std::string_view head = text.substr(pos, args - pos);
      head = head.substr(0, head.find(kMistralCallId));
      call.name = std::string(head);
      if (call.name.empty() || call.name.size() > 64) return no_calls(text);
      const size_t start = skip_space(text, args + kMistralArgs.size());
      if (start >= text.size() || text[start] != '{') return no_calls(text);
      const size_t end = json_end(text, start);
      if (end == std::string_view::npos) return no_calls(text);
      ordered j = ordered::parse(text.substr(start, end - start), nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !arguments_text(j, call.arguments)) return no_calls(text);
      calls.push_back(std::move(call));
      pos = skip_space(text, end);
      if (!text.substr(pos).starts_with(kMistralOpen)) break;
      pos += kMistralOpen.size();
    }
  }
  if (skip_space(text, pos) != text.size()) return no_calls(text);
  return with_calls(std::string(text.substr(0, open)), std::move(calls));
}

// The whole reply is one or more call objects (or an array of them), after an optional
// <|python_tag|>, separated by ';' or whitespace.
ParsedReply parse_bare_json(std::string_view text) {
  size_t pos = skip_space(text, 0);
  if (text.substr(pos).starts_with(kPythonTag)) pos = skip_space(text, pos + kPythonTag.size());
  std::vector<ToolCall> calls;
  while (pos < text.size()) {
    pos = take_json_calls(text, pos, calls);
    if (pos == std::string_view::npos) return no_calls(text);
    pos = skip_space(text, pos);
    if (pos < text.size() && text[pos] == ';') pos = skip_space(text, pos + 1);
  }
  if (calls.empty()) return no_calls(text);
  return with_calls("", std::move(calls));
}

// The markers after which a reply is held back, per syntax.
std::vector<std::string_view> markers(ToolCallSyntax syntax) {
  switch (syntax) {
    case ToolCallSyntax::kHermes: return {kHermesOpen};
    case ToolCallSyntax::kMistral: return {kMistralOpen};
    case ToolCallSyntax::kLlama3: return {kPythonTag};
    case ToolCallSyntax::kJson: break;
  }
  return {kHermesOpen, kMistralOpen, kPythonTag};
}

// Whether a reply that opens with JSON may be a call.
bool leading_json(ToolCallSyntax syntax) {
  return syntax == ToolCallSyntax::kLlama3 || syntax == ToolCallSyntax::kJson;
}

}  // namespace

ParsedReply parse_tool_calls(std::string_view text, ToolCallSyntax syntax) {
  switch (syntax) {
    case ToolCallSyntax::kHermes: return parse_hermes(text);
    case ToolCallSyntax::kMistral: return parse_mistral(text);
    case ToolCallSyntax::kLlama3: return parse_bare_json(text);
    case ToolCallSyntax::kJson: break;
  }
  if (text.find(kHermesOpen) != std::string_view::npos) return parse_hermes(text);
  if (text.find(kMistralOpen) != std::string_view::npos) return parse_mistral(text);
  return parse_bare_json(text);
}

ToolCallStream::ToolCallStream(ToolCallSyntax syntax, std::string forced_prefix)
    : syntax_(syntax), prefix_(std::move(forced_prefix)), held_(!prefix_.empty()) {}

std::string ToolCallStream::feed(std::string_view delta) {
  text_.append(delta);
  if (held_) return {};
  if (sent_ == 0 && leading_json(syntax_)) {
    const size_t first = skip_space(text_, 0);
    if (first == text_.size()) return {};  // only whitespace so far: undecided
    if (text_[first] == '{' || text_[first] == '[') {
      held_ = true;
      return {};
    }
  }
  const std::vector<std::string_view> ms = markers(syntax_);
  size_t longest = 0;
  for (std::string_view m : ms) longest = std::max(longest, m.size());
  const size_t from = sent_ > longest ? sent_ - longest : 0;
  size_t end = text_.size();
  for (std::string_view m : ms) {
    const size_t at = text_.find(m, from);
    if (at != std::string::npos && at < end) {
      end = at;
      held_ = true;
    }
  }
  if (!held_) {
    // Hold back a tail that may be the start of a marker.
    for (std::string_view m : ms) {
      for (size_t k = std::min(m.size() - 1, text_.size()); k > 0; --k) {
        if (std::string_view(text_).substr(text_.size() - k) == m.substr(0, k)) {
          end = std::min(end, text_.size() - k);
          break;
        }
      }
    }
  }
  end = std::max(end, sent_);
  std::string out = text_.substr(sent_, end - sent_);
  sent_ = end;
  return out;
}

ParsedReply ToolCallStream::finish() {
  ParsedReply r = parse_tool_calls(prefix_ + text_, syntax_);
  if (r.calls.empty()) {
    r.content = text_.substr(std::min(sent_, text_.size()));
    return r;
  }
  // What was sent is a prefix of the content (it all came before the first marker).
  r.content = r.content.size() > sent_ ? r.content.substr(sent_) : std::string();
  return r;
}

ForcedToolCall forced_tool_call(const CompletionRequest& r, ToolCallSyntax syntax) {
  const char* arg_key = syntax == ToolCallSyntax::kLlama3 ? "parameters" : "arguments";
  ordered alternatives = ordered::array();
  for (const ToolSpec& t : r.tools) {
    if (r.tool_choice == ToolChoice::kNamed && t.name != r.tool_choice_name) continue;
    ordered params = t.parameters_json.empty() ? ordered{{"type", "object"}} : ordered::parse(t.parameters_json);
    ordered call = {{"type", "object"},
                    {"properties", {{"name", {{"const", t.name}}}, {arg_key, std::move(params)}}},
                    {"required", {"name", arg_key}},
                    {"additionalProperties", false}};
    alternatives.push_back(std::move(call));
  }
  ordered one = alternatives.size() == 1 ? alternatives[0] : ordered{{"anyOf", alternatives}};
  ForcedToolCall f;
  switch (syntax) {
    case ToolCallSyntax::kHermes: f.prompt_suffix = std::string(kHermesOpen) + "\n"; break;
    case ToolCallSyntax::kMistral: f.prompt_suffix = std::string(kMistralOpen); break;
    case ToolCallSyntax::kLlama3:
    case ToolCallSyntax::kJson: break;
  }
  if (syntax == ToolCallSyntax::kMistral) {
    const bool many = r.parallel_tool_calls && r.tool_choice == ToolChoice::kRequired;
    f.schema_json = compact(ordered{{"type", "array"},
                                    {"items", std::move(one)},
                                    {"minItems", 1},
                                    {"maxItems", many ? static_cast<int64_t>(kMaxToolCallsPerMessage) : 1}});
  } else {
    f.schema_json = compact(one);
  }
  return f;
}

}  // namespace hearth::server
