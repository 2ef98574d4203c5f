// Formatters for the chat template families. Each follows the family's reference Jinja
// template (as published with the models) for the common case: system, user and assistant
// turns, then the generation prompt.
#include "hearth/engine/chat_template.h"

#include <array>
#include <utility>

#include "hearth/gguf/gguf.h"
#include "hearth/jinja/json_value.h"
#include "hearth/jinja/template.h"
#include "hearth/jinja/value.h"

namespace hearth::engine {
namespace {

constexpr std::array<std::pair<ChatTemplateFamily, std::string_view>, 8> kNames{{
    {ChatTemplateFamily::kPlain, "plain"},
    {ChatTemplateFamily::kLlama2, "llama2"},
    {ChatTemplateFamily::kLlama3, "llama3"},
    {ChatTemplateFamily::kChatMl, "chatml"},
    {ChatTemplateFamily::kMistral, "mistral"},
    {ChatTemplateFamily::kZephyr, "zephyr"},
    {ChatTemplateFamily::kGemma, "gemma"},
    {ChatTemplateFamily::kPhi3, "phi3"},
}};

bool contains(std::string_view s, std::string_view needle) { return s.find(needle) != std::string_view::npos; }

std::string_view trim(std::string_view s) {
  const std::string_view ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::string capitalized(std::string_view role) {
  std::string r(role);
  if (!r.empty() && r[0] >= 'a' && r[0] <= 'z') r[0] = static_cast<char>(r[0] - 'a' + 'A');
  return r;
}

// Families without a system role fold the system messages into the first user turn.
std::vector<ChatMessage> fold_system(const std::vector<ChatMessage>& messages, std::string_view sep) {
  std::string system;
  std::vector<ChatMessage> out;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      if (!system.empty()) system += sep;
      system += m.content;
    } else {
      out.push_back(m);
    }
  }
  if (!system.empty()) {
    auto it = out.begin();
    while (it != out.end() && it->role != "user") ++it;
    if (it == out.end()) {
      out.insert(out.begin(), ChatMessage{"user", system});
    } else {
      it->content = system + std::string(sep) + it->content;
    }
  }
  return out;
}

std::string render_llama2(const std::vector<ChatMessage>& messages, std::string_view bos, std::string_view eos) {
  // <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST]
  std::string out, system;
  bool first = true;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      system = m.content;
    } else if (m.role == "assistant") {
      out += " " + std::string(trim(m.content)) + " " + std::string(eos);
    } else {
      if (!first) out += bos;
      out += "[INST] ";
      if (!system.empty()) {
        out += "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
        system.clear();
      }
      out += std::string(trim(m.content)) + " [/INST]";
      first = false;
    }
  }
  return out;
}

std::string render_mistral(const std::vector<ChatMessage>& messages, std::string_view eos) {
  // <s>[INST] {user} [/INST]{assistant}</s>[INST] {user} [/INST]
  std::string out;
  for (const ChatMessage& m : fold_system(messages, "\n\n")) {
    if (m.role == "assistant") {
      out += std::string(trim(m.content)) + std::string(eos);
    } else {
      out += "[INST] " + std::string(trim(m.content)) + " [/INST]";
    }
  }
  return out;
}

}  // namespace

std::string_view chat_template_name(ChatTemplateFamily family) {
  for (const auto& [f, n] : kNames) {
    if (f == family) return n;
  }
  return "plain";
}

Result<ChatTemplateFamily> parse_chat_template_name(std::string_view name) {
  if (name == "qwen" || name == "qwen2") return ChatTemplateFamily::kChatMl;
  if (name == "phi-3") return ChatTemplateFamily::kPhi3;
  for (const auto& [f, n] : kNames) {
    if (n == name) return f;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown chat template '{}' (known: plain, llama2, llama3, chatml, mistral, zephyr, gemma, phi3)",
                    name);
}

std::string_view tool_call_syntax_name(ToolCallSyntax syntax) {
  switch (syntax) {
    case ToolCallSyntax::kHermes: return "hermes";
    case ToolCallSyntax::kLlama3: return "llama3";
    case ToolCallSyntax::kMistral: return "mistral";
    case ToolCallSyntax::kJson: break;
  }
  return "json";
}

ToolCallSyntax detect_tool_call_syntax(std::string_view t, ChatTemplateFamily family) {
  if (t.empty()) {
    switch (family) {
      case ChatTemplateFamily::kChatMl: return ToolCallSyntax::kHermes;
      case ChatTemplateFamily::kLlama3: return ToolCallSyntax::kLlama3;
      case ChatTemplateFamily::kMistral: return ToolCallSyntax::kMistral;
      default: return ToolCallSyntax::kJson;
    }
  }
  if (contains(t, "[TOOL_CALLS]")) return ToolCallSyntax::kMistral;
  if (contains(t, "<tool_call>")) return ToolCallSyntax::kHermes;
  if (contains(t, "<|python_tag|>") || (contains(t, "<|start_header_id|>") && contains(t, "\"parameters\""))) {
    return ToolCallSyntax::kLlama3;
  }
  return ToolCallSyntax::kJson;
}

std::optional<ChatTemplateFamily> detect_chat_template(std::string_view t) {
  if (contains(t, "<|start_header_id|>")) return ChatTemplateFamily::kLlama3;
  if (contains(t, "<|im_start|>")) return ChatTemplateFamily::kChatMl;
  if (contains(t, "<start_of_turn>")) return ChatTemplateFamily::kGemma;
  if (contains(t, "<|user|>") && contains(t, "<|end|>")) return ChatTemplateFamily::kPhi3;
  if (contains(t, "<|user|>")) return ChatTemplateFamily::kZephyr;
  if (contains(t, "[INST]") && contains(t, "<<SYS>>")) return ChatTemplateFamily::kLlama2;
  if (contains(t, "[INST]")) return ChatTemplateFamily::kMistral;
  return std::nullopt;
}

Result<RenderedChat> render_chat(ChatTemplateFamily family, const std::vector<ChatMessage>& messages,
                                 std::string_view bos_text, std::string_view eos_text) {
  if (messages.empty()) return make_error(ErrorCode::kInvalidArgument, "messages: the list is empty");
  RenderedChat r;
  std::string& out = r.prompt;
  switch (family) {
    case ChatTemplateFamily::kPlain:
      for (const ChatMessage& m : messages) out += capitalized(m.role) + ": " + m.content + "\n\n";
      out += "Assistant:";
      r.stop_strings.push_back("\n\nUser:");
      break;
    case ChatTemplateFamily::kLlama2: out = render_llama2(messages, bos_text, eos_text); break;
    case ChatTemplateFamily::kLlama3:
      for (const ChatMessage& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + std::string(trim(m.content)) + "<|eot_id|>";
      }
      out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case ChatTemplateFamily::kChatMl:
      for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      out += "<|im_start|>assistant\n";
      break;
    case ChatTemplateFamily::kMistral: out = render_mistral(messages, eos_text); break;
    case ChatTemplateFamily::kZephyr:
      for (const ChatMessage& m : messages) out += "<|" + m.role + "|>\n" + m.content + std::string(eos_text) + "\n";
      out += "<|assistant|>\n";
      break;
    case ChatTemplateFamily::kGemma:
      for (const ChatMessage& m : fold_system(messages, "\n\n")) {
        const std::string role = m.role == "assistant" ? "model" : m.role;
        out += "<start_of_turn>" + role + "\n" + std::string(trim(m.content)) + "<end_of_turn>\n";
      }
      out += "<start_of_turn>model\n";
      break;
    case ChatTemplateFamily::kPhi3:
      for (const ChatMessage& m : messages) out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
      out += "<|assistant|>\n";
      break;
  }
  return r;
}

struct ChatFormat::Jinja {
  jinja::Template tmpl;
};

Result<ChatFormat> ChatFormat::for_model(std::string_view source, std::string_view override_name,
                                         std::string* warning) {
  if (!override_name.empty()) {
    HEARTH_ASSIGN_OR_RETURN(ChatTemplateFamily f, parse_chat_template_name(override_name));
    return ChatFormat(f);
  }
  if (source.empty()) return ChatFormat();
  auto parsed = jinja::Template::parse(source);
  if (parsed.ok()) {
    ChatFormat out;
    out.jinja_ = std::make_shared<const Jinja>(Jinja{std::move(*parsed)});
    out.tool_syntax_ = detect_tool_call_syntax(source, ChatTemplateFamily::kPlain);
    return out;
  }
  const ChatTemplateFamily family = detect_chat_template(source).value_or(ChatTemplateFamily::kPlain);
  if (warning != nullptr)
    *warning = fmt::format("the model's chat template does not parse ({}); using the built-in '{}' format",
                           parsed.status().message(), chat_template_name(family));
  ChatFormat out(family);
  out.tool_syntax_ = detect_tool_call_syntax(source, family);
  return out;
}

Result<ChatFormat> ChatFormat::for_gguf(const gguf::GgufFile& file, std::string_view override_name,
                                        std::string* warning) {
  auto source = file.get_string("tokenizer.chat_template");
  return for_model(source.ok() ? *source : std::string_view(), override_name, warning);
}

std::string ChatFormat::name() const { return jinja_ ? "jinja" : std::string(chat_template_name(family_)); }

Result<RenderedChat> ChatFormat::render(const std::vector<ChatMessage>& messages, std::string_view bos_text,
                                        std::string_view eos_text, const ChatRenderOptions& options) const {
  if (!jinja_) return render_chat(family_, messages, bos_text, eos_text);
  if (messages.empty()) return make_error(ErrorCode::kInvalidArgument, "messages: the list is empty");
  jinja::List list;
  list.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (!m.json.empty()) {
      auto v = jinja::parse_json_value(m.json);
      if (!v.ok()) return make_error(ErrorCode::kInvalidArgument, "messages[{}]: {}", i, v.status().message());
      list.push_back(std::move(*v));
      continue;
    }
    jinja::Dict d;
    d.set("role", jinja::Value::string(m.role));
    d.set("content", jinja::Value::string(m.content));
    list.push_back(jinja::Value::dict(std::move(d)));
  }
  jinja::Context ctx;
  ctx.messages = jinja::Value::list(std::move(list));
  if (!options.tools_json.empty()) {
    auto tools = jinja::parse_json_value(options.tools_json);
    if (!tools.ok()) return make_error(ErrorCode::kInvalidArgument, "tools: {}", tools.status().message());
    ctx.tools = std::move(*tools);
  }
  ctx.add_generation_prompt = options.add_generation_prompt;
  ctx.bos_token = std::string(bos_text);
  ctx.eos_token = std::string(eos_text);
  if (options.now != nullptr) ctx.now = *options.now;
  auto text = jinja_->tmpl.render(ctx);
  if (!text.ok()) {
    Status st = text.status();
    // The template's own refusal (raise_exception) is the caller's request that it refuses.
    const ErrorCode code =
        st.code() == ErrorCode::kResourceExhausted ? ErrorCode::kResourceExhausted : ErrorCode::kInvalidArgument;
    return make_error(code, "chat template: {}", st.message());
  }
  RenderedChat r;
  r.prompt = std::move(*text);
  r.add_bos = bos_text.empty() || !std::string_view(r.prompt).starts_with(bos_text);
  return r;
}

}  // namespace hearth::engine
